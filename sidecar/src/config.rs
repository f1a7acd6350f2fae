//! Command-line flags (each also read from the environment) and their validation into a `Config`.
//!
//! Parsing is clap's job; everything clap cannot check (the database URL's syntax, the secret's
//! strength) is checked here once, so the rest of the program receives values that are known good.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::auth::accounts::hooks::{AccessTokenHook, BadHookUri};
use crate::auth::accounts::mailer::{MailError, Mailer};
use crate::auth::accounts::settings::{AuthArgs, AuthSettings};
use crate::auth::accounts::tokens::{AccessTokens, IssueError, DEFAULT_AUDIENCE};
use crate::auth::jwt::keys::ISSUER;
use crate::auth::jwt::keys::{JwtSecret, SecretError};
use crate::auth::jwt::keyset::{
    keys_from_jwks, keys_from_pem, read_key_file, KeyFileError, JWKS_FILE_FLAG,
    PUBLIC_KEY_FILE_FLAG,
};
use crate::auth::jwt::signing::{is_jwk_file, signing_keys_from_json};
use crate::auth::jwt::verify::{Verifier, VerifierOptions};
use crate::db::shared::PipelineSettings;
use crate::error::describe;
use crate::rest::parse::QueryLimits;
use crate::schema::{ExposedSchemas, ExposedSchemasError};

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "The Sluice sidecar: REST, auth and realtime over Postgres"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(Box<ServeArgs>),
    /// Print the anon and service_role API keys signed with the JWT secret.
    Keys(KeysArgs),
    /// Create, apply and list migrations (Supabase's supabase/migrations layout and history).
    Migration(crate::cli::migration::MigrationArgs),
    /// Reset a local database from the migrations and seed; dump and restore a database.
    Db(crate::cli::db::DbArgs),
    /// Start a local cluster with the project's supabase/ applied, and serve the API until
    /// Ctrl-C (what `make run` does, for an installed binary).
    Start(crate::cli::start::StartArgs),
    /// Generate code from the database: `gen types typescript` prints the `Database` type for
    /// supabase-js, as `supabase gen types typescript` does.
    Gen(crate::cli::gen_types::GenArgs),
}

// Secrets and URLs with passwords are read from the environment in production; `hide_env_values`
// keeps `--help` from printing them.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Postgres connection URL, e.g. postgres://authenticator:pw@127.0.0.1:5432/app
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,

    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "SLUICE_LISTEN", default_value = "127.0.0.1:54321")]
    pub listen: SocketAddr,

    /// Secret that signs and verifies JWTs (HS256); at least 32 bytes.
    #[arg(long, env = "SLUICE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,

    /// Maximum number of pooled database connections.
    #[arg(long, env = "SLUICE_POOL_SIZE", default_value_t = 10,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub pool_size: u16,

    /// Shared connections on which concurrent single-statement reads (GET, HEAD) are pipelined,
    /// besides the pool; 0 turns pipelining off (every read takes a pooled connection). One
    /// backend working through a deep queue costs least per read (bench/README.md); reads beyond
    /// its depth, or behind a slow one, take the pool.
    #[arg(long, env = "SLUICE_DB_PIPELINE_CONNECTIONS", default_value_t = 1)]
    pub db_pipeline_connections: u16,

    /// The most unanswered reads queued on one shared connection; further reads take the pool.
    #[arg(long, env = "SLUICE_DB_PIPELINE_DEPTH", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub db_pipeline_depth: u16,

    /// Threads that serve requests; 0 (the default) is one per core. 1 runs the server on one
    /// thread (Tokio's current-thread scheduler): reads that arrive together then reach the shared
    /// connection together and go to Postgres in one write, which costs least per request where
    /// the sidecar shares a small machine with Postgres (bench/README.md). Password hashing and
    /// image transforms run on their own blocking threads either way.
    #[arg(long, env = "SLUICE_WORKER_THREADS", default_value_t = 0)]
    pub worker_threads: u16,

    /// How long start-up waits for an unreachable database before giving up.
    #[arg(
        long,
        env = "SLUICE_STARTUP_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 10
    )]
    pub startup_timeout: u64,

    /// PEM file of RS256 (RSA) or ES256 (EC P-256) public keys that also verify request JWTs; it
    /// may hold several `PUBLIC KEY` blocks.
    #[arg(long, env = "SLUICE_JWT_PUBLIC_KEY_FILE", value_name = "PATH")]
    pub jwt_public_key_file: Option<PathBuf>,

    /// JSON Web Key Set file (RSA, EC P-256 or oct keys) that also verifies request JWTs; a token's
    /// `kid` picks the key.
    #[arg(long, env = "SLUICE_JWT_JWKS_FILE", value_name = "PATH")]
    pub jwt_jwks_file: Option<PathBuf>,

    /// Audience that tokens must carry in their `aud` claim; unset, `aud` is not checked.
    #[arg(long, env = "SLUICE_JWT_AUD")]
    pub jwt_aud: Option<String>,

    /// Clock skew tolerated when checking a token's `exp`, `nbf` and `iat` (at most 600).
    #[arg(long, env = "SLUICE_JWT_LEEWAY", value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=600))]
    pub jwt_leeway: u64,

    /// Database roles a token's `role` claim may name, comma-separated. A request without a token
    /// runs as `anon`, and is refused unless `anon` is listed.
    #[arg(
        long,
        env = "SLUICE_JWT_ROLES",
        value_delimiter = ',',
        default_value = "anon,authenticated,service_role"
    )]
    pub jwt_roles: Vec<String>,

    /// Schemas the REST API exposes, comma-separated; the first is the default, the others are
    /// reached with the `Accept-Profile`/`Content-Profile` headers. Internal schemas are refused.
    #[arg(long, env = "SLUICE_DB_SCHEMAS", default_value = "public")]
    pub db_schemas: String,

    /// Most rows one REST response returns (a cap on `limit`); unset, no cap.
    #[arg(long, env = "SLUICE_MAX_ROWS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_rows: Option<u64>,

    /// Largest request body (a REST write's JSON) accepted, in bytes; longer ones get 413.
    #[arg(long, env = "SLUICE_MAX_BODY_BYTES", default_value_t = 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_body_bytes: u64,

    /// Let PATCH and DELETE without any filter change every row the role may reach; off, they
    /// are refused (400) as a guard against a forgotten filter.
    #[arg(long, env = "SLUICE_ALLOW_UNFILTERED_WRITES")]
    pub allow_unfiltered_writes: bool,

    /// Allow aggregates in REST `select` (`amount.sum()`, `count()`, `rel(count)`), as
    /// PostgREST's `db-aggregates-enabled`; off, they are refused (PGRST123). The database may
    /// also turn them on: `ALTER ROLE <login role> SET pgrst.db_aggregates_enabled = 'true'`.
    #[arg(long, env = "SLUICE_REST_AGGREGATES_ENABLED")]
    pub rest_aggregates_enabled: bool,
    /// Answer `Accept: application/vnd.pgrst.plan…` (postgrest-js `explain()`) with the
    /// statement's EXPLAIN, as PostgREST's `db-plan-enabled`; off, such requests are 406.
    #[arg(long, env = "SLUICE_DB_PLAN_ENABLED")]
    pub db_plan_enabled: bool,

    /// A realtime WebSocket that sends nothing (not even a heartbeat) for this long is closed and
    /// its channels and presences dropped; realtime-js heartbeats every 25 seconds.
    #[arg(long, env = "SLUICE_REALTIME_HEARTBEAT_TIMEOUT", value_name = "SECONDS",
          default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub realtime_heartbeat_timeout: u64,

    /// Do not deliver webhooks from this instance (other sidecars on the database still do).
    #[arg(long, env = "SLUICE_NO_WEBHOOKS")]
    pub no_webhooks: bool,

    /// Do not run scheduled jobs from this instance (other sidecars on the database still do).
    #[arg(long, env = "SLUICE_NO_JOBS")]
    pub no_jobs: bool,

    /// Bounds on one REST request's complexity.
    #[command(flatten)]
    pub query_limits: QueryLimitArgs,

    /// The auth API (`/auth/v1/`).
    #[command(flatten)]
    pub auth: AuthArgs,

    /// Storage (`/storage/v1/`).
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// Where storage keeps the bytes of files, and its bounds.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// `file` (a local directory, --storage-root) or `s3` (--storage-s3-bucket; endpoint, region
    /// and credentials from AWS_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_ALLOW_HTTP).
    #[arg(long, env = "SLUICE_STORAGE_BACKEND", default_value = "file",
          value_parser = ["file", "s3"])]
    pub storage_backend: String,
    /// The directory of the `file` backend.
    #[arg(long, env = "SLUICE_STORAGE_ROOT", default_value = ".sluice/storage")]
    pub storage_root: std::path::PathBuf,
    /// The bucket of the `s3` backend.
    #[arg(long, env = "SLUICE_STORAGE_S3_BUCKET")]
    pub storage_s3_bucket: Option<String>,
    /// The largest file accepted (a bucket's file_size_limit may set less).
    #[arg(long, env = "SLUICE_STORAGE_MAX_FILE_BYTES", default_value_t = 50 * 1024 * 1024 * 1024)]
    pub storage_max_file_bytes: u64,
    /// The sweep removes bytes no row names once they are this old (younger ones may belong to an
    /// upload in progress).
    #[arg(
        long,
        env = "SLUICE_STORAGE_SWEEP_GRACE",
        value_name = "SECONDS",
        default_value_t = 3600
    )]
    pub storage_sweep_grace: u64,
    /// How often the sweep runs (and it runs once at start-up).
    #[arg(long, env = "SLUICE_STORAGE_SWEEP_INTERVAL", value_name = "SECONDS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub storage_sweep_interval: u64,
    /// How many backend keys one pass of the sweep lists and checks (each pass reads only the rows
    /// of the keys it listed).
    #[arg(long, env = "SLUICE_STORAGE_SWEEP_PAGE", value_name = "KEYS", default_value_t = 1000,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..100_000))]
    pub storage_sweep_page: usize,
}

/// How much one REST request may ask for; more is refused with 400 `SLUICE115` before it reaches
/// the database (see `rest::parse::QueryLimits` for what each counts). The depths stop at 16,
/// where the parser itself refuses.
#[derive(Debug, Args)]
pub struct QueryLimitArgs {
    /// Most filter parameters in one request (at every embed path together).
    #[arg(long, env = "SLUICE_MAX_QUERY_FILTERS", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_query_filters: u32,

    /// Most conditions and groups inside all `or=`/`and=` trees of one request.
    #[arg(long, env = "SLUICE_MAX_QUERY_LOGIC_BRANCHES", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_query_logic_branches: u32,

    /// Deepest nesting of `or`/`and` groups (`or=(a.eq.1)` is 1).
    #[arg(long, env = "SLUICE_MAX_QUERY_LOGIC_DEPTH", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=16))]
    pub max_query_logic_depth: u32,

    /// Most columns, `*` and embeddings in `select=`, at every level together.
    #[arg(long, env = "SLUICE_MAX_QUERY_SELECT_ITEMS", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_query_select_items: u32,

    /// Deepest nesting of embeddings (`select=*,author(*)` is 1).
    #[arg(long, env = "SLUICE_MAX_QUERY_EMBED_DEPTH", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=16))]
    pub max_query_embed_depth: u32,

    /// Most terms in all `order=` parameters of one request together.
    #[arg(long, env = "SLUICE_MAX_QUERY_ORDER_TERMS", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_query_order_terms: u32,
}

impl From<&QueryLimitArgs> for QueryLimits {
    fn from(args: &QueryLimitArgs) -> Self {
        let count = |value: u32| usize::try_from(value).unwrap_or(usize::MAX);
        QueryLimits {
            filters: count(args.max_query_filters),
            logic_branches: count(args.max_query_logic_branches),
            logic_depth: count(args.max_query_logic_depth),
            select_items: count(args.max_query_select_items),
            embed_depth: count(args.max_query_embed_depth),
            order_terms: count(args.max_query_order_terms),
        }
    }
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    /// Secret that signs the keys (HS256); at least 32 bytes.
    #[arg(long, env = "SLUICE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
}

/// Validated configuration of `sluice serve`.
#[derive(Debug)]
pub struct Config {
    pub database: tokio_postgres::Config,
    pub listen: SocketAddr,
    pub jwt_secret: JwtSecret,
    /// Verifies request JWTs: the secret plus any keys from the key files, read once here.
    pub verifier: Verifier,
    pub pool_size: usize,
    /// `--db-pipeline-connections` and `--db-pipeline-depth`.
    pub pipeline: PipelineSettings,
    /// `--worker-threads`: 0 for one per core.
    pub worker_threads: usize,
    pub startup_timeout: Duration,
    pub exposed_schemas: ExposedSchemas,
    pub max_rows: Option<u64>,
    /// `--max-query-*`: how complex one REST request may be.
    pub query_limits: QueryLimits,
    pub max_body_bytes: usize,
    pub allow_unfiltered_writes: bool,
    /// `--rest-aggregates-enabled`.
    pub rest_aggregates_enabled: bool,
    /// `--db-plan-enabled`: whether plan media types are answered.
    pub db_plan_enabled: bool,
    /// `--realtime-heartbeat-timeout`: how long a silent realtime socket stays open.
    pub realtime_heartbeat_timeout: Duration,
    /// Whether this instance delivers webhooks (`--no-webhooks` turns it off).
    pub webhooks: bool,
    /// Whether this instance runs scheduled jobs (`--no-jobs` turns it off).
    pub jobs: bool,
    pub auth: AuthSettings,
    /// Signs the access tokens /auth/v1 issues (audience `--jwt-aud`, else `authenticated`).
    pub auth_tokens: AccessTokens,
    pub mailer: Mailer,
    pub storage: StorageArgs,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // The URL itself is not echoed: it usually carries a password. tokio-postgres's causes name the
    // bad option, not its value.
    #[error("DATABASE_URL (--database-url) is not a valid Postgres connection string: {}", describe(.0))]
    DatabaseUrl(#[source] tokio_postgres::Error),
    #[error(transparent)]
    JwtSecret(#[from] SecretError),
    #[error(transparent)]
    JwtKeys(#[from] KeyFileError),
    #[error(
        "SLUICE_JWT_ROLES (--jwt-roles) lists no role; give at least one, e.g. \
         anon,authenticated,service_role"
    )]
    NoJwtRoles,
    #[error("SLUICE_DB_SCHEMAS (--db-schemas): {0}")]
    DbSchemas(#[from] ExposedSchemasError),
    #[error(transparent)]
    Mailer(#[from] MailError),
    #[error(
        "SLUICE_AUTH_JWT_SIGNING_KEY_FILE (--auth-jwt-signing-key-file) {}: {reason}",
        path.display()
    )]
    SigningKey { path: PathBuf, reason: String },
    #[error("SLUICE_AUTH_HOOK_CUSTOM_ACCESS_TOKEN_URI: {0}")]
    Hook(#[from] BadHookUri),
    #[error("SLUICE_STORAGE_BACKEND=s3 needs SLUICE_STORAGE_S3_BUCKET (--storage-s3-bucket)")]
    StorageBucket,
    #[error(
        "SLUICE_AUTH_SMS_PROVIDER=twilio needs SLUICE_AUTH_SMS_TWILIO_ACCOUNT_SID, \
         SLUICE_AUTH_SMS_TWILIO_AUTH_TOKEN and SLUICE_AUTH_SMS_TWILIO_MESSAGE_SERVICE_SID"
    )]
    SmsTwilio,
}

impl TryFrom<ServeArgs> for Config {
    type Error = ConfigError;

    fn try_from(args: ServeArgs) -> Result<Self, ConfigError> {
        let database = tokio_postgres::Config::from_str(&args.database_url)
            .map_err(ConfigError::DatabaseUrl)?;
        let jwt_secret = JwtSecret::new(args.jwt_secret)?;
        let roles: Vec<String> = args
            .jwt_roles
            .iter()
            .map(|role| role.trim().to_owned())
            .filter(|role| !role.is_empty())
            .collect();
        if roles.is_empty() {
            return Err(ConfigError::NoJwtRoles);
        }
        let mut auth = AuthSettings::from(&args.auth);
        if !auth.sms.is_complete() {
            return Err(ConfigError::SmsTwilio);
        }
        if let Some(uri) = args
            .auth
            .auth_hook_custom_access_token_uri
            .as_deref()
            .filter(|uri| !uri.is_empty())
        {
            if args.auth.auth_hook_custom_access_token_enabled != Some(false) {
                auth.access_token_hook = Some(AccessTokenHook::from_uri(uri)?);
            }
        }
        let mailer = Mailer::from_settings(args.auth.smtp_url.as_deref(), &args.auth.smtp_from)?;
        let auth_audience = args
            .jwt_aud
            .clone()
            .filter(|aud| !aud.is_empty())
            .unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned());
        // A JWK file's keys (Supabase's signing_keys.json) also verify, on REST, realtime and
        // storage alike, so a rotation needs no second file.
        let mut signing_public_keys = Vec::new();
        let auth_tokens = match &args.auth.auth_jwt_signing_key_file {
            None => AccessTokens::hs256(
                &jwt_secret,
                auth.jwt_expiry,
                auth_audience,
                ISSUER.to_owned(),
            ),
            Some(path) => {
                let failed = |reason: String| ConfigError::SigningKey {
                    path: path.clone(),
                    reason,
                };
                let pem = std::fs::read(path).map_err(|err| failed(err.to_string()))?;
                let text = String::from_utf8_lossy(&pem);
                if is_jwk_file(&text) {
                    let keys =
                        signing_keys_from_json(&text).map_err(|err| failed(err.to_string()))?;
                    signing_public_keys = keys.verifying.clone();
                    AccessTokens::from_signing_keys(
                        &keys,
                        auth.jwt_expiry,
                        auth_audience,
                        ISSUER.to_owned(),
                    )
                } else {
                    let tokens = AccessTokens::from_pem(
                        &pem,
                        args.auth.auth_jwt_signing_kid.clone(),
                        auth.jwt_expiry,
                        auth_audience,
                        ISSUER.to_owned(),
                    )
                    .map_err(|err: IssueError| failed(err.to_string()))?;
                    // A PEM key's public half (the JWK it publishes) verifies on every API too.
                    signing_public_keys = keys_from_jwks(&tokens.jwks.to_string())
                        .map_err(|err| failed(err.to_string()))?;
                    tokens
                }
            }
        };
        let options = VerifierOptions {
            leeway: Duration::from_secs(args.jwt_leeway),
            audience: args.jwt_aud.filter(|aud| !aud.is_empty()),
            roles,
        };
        let mut verifier = Verifier::new(&jwt_secret, options);
        verifier.add_keys(signing_public_keys);
        if let Some(path) = &args.jwt_public_key_file {
            verifier.add_keys(read_key_file(path, PUBLIC_KEY_FILE_FLAG, keys_from_pem)?);
        }
        if let Some(path) = &args.jwt_jwks_file {
            verifier.add_keys(read_key_file(path, JWKS_FILE_FLAG, keys_from_jwks)?);
        }
        let exposed_schemas = ExposedSchemas::new(args.db_schemas.split(',').map(str::trim))?;
        if args.storage.storage_backend == "s3" && args.storage.storage_s3_bucket.is_none() {
            return Err(ConfigError::StorageBucket);
        }
        Ok(Config {
            database,
            listen: args.listen,
            jwt_secret,
            verifier,
            pool_size: usize::from(args.pool_size),
            pipeline: PipelineSettings {
                connections: usize::from(args.db_pipeline_connections),
                depth: usize::from(args.db_pipeline_depth),
            },
            worker_threads: usize::from(args.worker_threads),
            startup_timeout: Duration::from_secs(args.startup_timeout),
            exposed_schemas,
            max_rows: args.max_rows,
            query_limits: QueryLimits::from(&args.query_limits),
            max_body_bytes: usize::try_from(args.max_body_bytes).unwrap_or(usize::MAX),
            allow_unfiltered_writes: args.allow_unfiltered_writes,
            rest_aggregates_enabled: args.rest_aggregates_enabled,
            db_plan_enabled: args.db_plan_enabled,
            realtime_heartbeat_timeout: Duration::from_secs(args.realtime_heartbeat_timeout),
            webhooks: !args.no_webhooks,
            jobs: !args.no_jobs,
            auth,
            auth_tokens,
            mailer,
            storage: args.storage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD_SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn serve_args(extra: &[&str]) -> Result<ServeArgs, clap::Error> {
        let mut argv = vec!["sluice", "serve"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv)?.command {
            Command::Serve(args) => Ok(*args),
            _ => unreachable!("parsed `serve`"),
        }
    }

    #[test]
    fn valid_flags_become_a_config() {
        let args = serve_args(&[
            "--database-url=postgres://u:p@127.0.0.1:5432/app",
            "--jwt-secret",
            GOOD_SECRET,
            "--listen=0.0.0.0:8000",
            "--pool-size=3",
        ])
        .unwrap();
        let config = Config::try_from(args).unwrap();
        assert_eq!(config.listen, "0.0.0.0:8000".parse().unwrap());
        assert_eq!(config.pool_size, 3);
        assert_eq!(
            config.pipeline,
            PipelineSettings {
                connections: 1,
                depth: 64
            }
        );
        assert_eq!(config.startup_timeout, Duration::from_secs(10));
        assert_eq!(config.database.get_dbname(), Some("app"));
    }

    #[test]
    fn short_secret_is_refused_with_the_fix() {
        let args = serve_args(&[
            "--database-url=postgres://u@127.0.0.1/app",
            "--jwt-secret=too-short",
        ])
        .unwrap();
        let err = Config::try_from(args).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::JwtSecret(SecretError::TooShort { len: 9 })
        ));
        let message = err.to_string();
        assert!(message.contains("SLUICE_JWT_SECRET"), "{message}");
        assert!(message.contains("32"), "{message}");
    }

    #[test]
    fn malformed_database_url_is_refused_without_echoing_it() {
        let args = serve_args(&[
            "--database-url=postgres://u:hunter2@[bad",
            "--jwt-secret",
            GOOD_SECRET,
        ])
        .unwrap();
        let err = Config::try_from(args).unwrap_err();
        assert!(matches!(err, ConfigError::DatabaseUrl(_)));
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn jwt_settings_have_documented_defaults() {
        let args = serve_args(&[
            "--database-url=postgres://u@127.0.0.1/app",
            "--jwt-secret",
            GOOD_SECRET,
        ])
        .unwrap();
        assert_eq!(args.jwt_leeway, 30);
        assert_eq!(args.jwt_roles, ["anon", "authenticated", "service_role"]);
        assert_eq!(args.jwt_aud, None);
        let config = Config::try_from(args).unwrap();
        assert_eq!(config.verifier.keys().len(), 1, "the secret only");
    }

    #[test]
    fn key_files_add_verifying_keys() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwt");
        let args = serve_args(&[
            "--database-url=postgres://u@127.0.0.1/app",
            "--jwt-secret",
            GOOD_SECRET,
            &format!("--jwt-public-key-file={fixtures}/ec-public.pem"),
            "--jwt-roles=anon, authenticated",
            "--jwt-aud=my-app",
        ])
        .unwrap();
        assert_eq!(args.jwt_roles, ["anon", " authenticated"]);
        let config = Config::try_from(args).unwrap();
        assert_eq!(config.verifier.keys().len(), 2);
    }

    #[test]
    fn a_bad_key_file_is_refused_naming_the_flag() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwt");
        let args = serve_args(&[
            "--database-url=postgres://u@127.0.0.1/app",
            "--jwt-secret",
            GOOD_SECRET,
            &format!("--jwt-jwks-file={fixtures}/rsa-public.pem"),
        ])
        .unwrap();
        let err = Config::try_from(args).unwrap_err();
        assert!(matches!(err, ConfigError::JwtKeys(_)));
        let message = err.to_string();
        assert!(message.contains("SLUICE_JWT_JWKS_FILE"), "{message}");
        assert!(message.contains("rsa-public.pem"), "{message}");
    }

    #[test]
    fn empty_roles_and_excessive_leeway_are_refused() {
        let args = serve_args(&[
            "--database-url=postgres://u@127.0.0.1/app",
            "--jwt-secret",
            GOOD_SECRET,
            "--jwt-roles=,",
        ])
        .unwrap();
        assert!(matches!(
            Config::try_from(args),
            Err(ConfigError::NoJwtRoles)
        ));
        let err = serve_args(&[
            "--database-url=postgres://u@127.0.0.1/app",
            "--jwt-secret",
            GOOD_SECRET,
            "--jwt-leeway=3600",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn pool_size_zero_is_a_usage_error() {
        let err = serve_args(&[
            "--database-url=postgres://u@127.0.0.1/app",
            "--jwt-secret",
            GOOD_SECRET,
            "--pool-size=0",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn pipelining_is_sized_by_flags_and_zero_turns_it_off() {
        let config = |extra: &[&str]| {
            let mut argv = vec![
                "--database-url=postgres://u@127.0.0.1/app",
                "--jwt-secret",
                GOOD_SECRET,
            ];
            argv.extend_from_slice(extra);
            serve_args(&argv).map(|args| Config::try_from(args).unwrap().pipeline)
        };
        assert_eq!(
            config(&["--db-pipeline-connections=0"]).unwrap(),
            PipelineSettings {
                connections: 0,
                depth: 64
            }
        );
        assert_eq!(
            config(&["--db-pipeline-connections=4", "--db-pipeline-depth=8"]).unwrap(),
            PipelineSettings {
                connections: 4,
                depth: 8
            }
        );
        let err = config(&["--db-pipeline-depth=0"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn exposed_schemas_and_max_rows_are_validated() {
        let base = [
            "--database-url=postgres://u@127.0.0.1/app",
            "--jwt-secret",
            GOOD_SECRET,
        ];
        let config = Config::try_from(serve_args(&base).unwrap()).unwrap();
        assert_eq!(config.exposed_schemas.names(), ["public"]);
        assert_eq!(config.max_rows, None);
        assert_eq!(config.max_body_bytes, 1024 * 1024);
        assert!(!config.allow_unfiltered_writes);
        assert_eq!(config.realtime_heartbeat_timeout, Duration::from_secs(60));

        let mut args = base.to_vec();
        args.extend(["--db-schemas=api, public", "--max-rows=50"]);
        let config = Config::try_from(serve_args(&args).unwrap()).unwrap();
        assert_eq!(config.exposed_schemas.names(), ["api", "public"]);
        assert_eq!(config.max_rows, Some(50));

        let mut args = base.to_vec();
        args.push("--db-schemas=public,auth");
        let err = Config::try_from(serve_args(&args).unwrap()).unwrap_err();
        assert!(matches!(err, ConfigError::DbSchemas(_)), "{err}");
        assert!(err
            .to_string()
            .starts_with("SLUICE_DB_SCHEMAS (--db-schemas): "));

        let mut args = base.to_vec();
        args.push("--max-rows=0");
        assert!(serve_args(&args).is_err());
    }

    #[test]
    fn auth_flags_have_defaults_and_read_a_signing_key() {
        let base = [
            "--database-url=postgres://u@127.0.0.1/app",
            "--jwt-secret",
            GOOD_SECRET,
        ];
        let config = Config::try_from(serve_args(&base).unwrap()).unwrap();
        assert_eq!(config.auth.jwt_expiry, Duration::from_secs(3600));
        assert_eq!(config.auth.refresh_reuse_interval, Duration::from_secs(10));
        assert_eq!(config.auth.password_min_length, 6);
        assert!(!config.auth.autoconfirm);
        assert_eq!(config.auth_tokens.audience, "authenticated");
        assert_eq!(
            config.auth_tokens.algorithm(),
            jsonwebtoken::Algorithm::HS256
        );

        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwt");
        let mut args = base.to_vec();
        let key = format!("--auth-jwt-signing-key-file={fixtures}/ec-private.pem");
        args.extend([key.as_str(), "--jwt-aud=my-app", "--auth-jwt-expiry=600"]);
        let config = Config::try_from(serve_args(&args).unwrap()).unwrap();
        assert_eq!(
            config.auth_tokens.algorithm(),
            jsonwebtoken::Algorithm::ES256
        );
        assert_eq!(config.auth_tokens.audience, "my-app");
        assert_eq!(config.auth_tokens.lifetime, Duration::from_secs(600));

        let mut args = base.to_vec();
        let key = format!("--auth-jwt-signing-key-file={fixtures}/rsa-public.pem");
        args.push(key.as_str());
        let err = Config::try_from(serve_args(&args).unwrap()).unwrap_err();
        assert!(matches!(err, ConfigError::SigningKey { .. }), "{err}");
        assert!(err.to_string().contains("rsa-public.pem"), "{err}");

        let mut args = base.to_vec();
        args.push("--auth-jwt-expiry=5");
        assert!(serve_args(&args).is_err());
    }

    #[test]
    fn a_jwk_signing_key_file_signs_and_its_keys_verify_for_every_api() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwt");
        let key = format!("--auth-jwt-signing-key-file={fixtures}/signing_keys.json");
        let args = [
            "--database-url=postgres://u@127.0.0.1/app",
            "--jwt-secret",
            GOOD_SECRET,
            key.as_str(),
        ];
        let config = Config::try_from(serve_args(&args).unwrap()).unwrap();
        assert_eq!(
            config.auth_tokens.algorithm(),
            jsonwebtoken::Algorithm::RS256
        );
        // The secret, then the file's two keys: the one verifier REST, realtime and storage share
        // (`serve` hands the same `Arc<Verifier>` to each).
        assert_eq!(config.verifier.keys().len(), 3);
        let user = serde_json::json!({"id": "6f1d0d8e-2c3b-4b59-9a9e-1f5c7d2b8a10", "role": "authenticated"});
        let issued = config
            .auth_tokens
            .issue(
                &user,
                uuid::Uuid::nil(),
                "aal1",
                "password",
                std::time::SystemTime::now(),
            )
            .unwrap();
        assert_eq!(
            config.verifier.verify(&issued.token).unwrap().role,
            "authenticated"
        );
        assert_eq!(config.auth_tokens.jwks["keys"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_pem_signing_key_signs_and_its_public_half_verifies_for_every_api() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwt");
        let key = format!("--auth-jwt-signing-key-file={fixtures}/ec-private.pem");
        let args = [
            "--database-url=postgres://u@127.0.0.1/app",
            "--jwt-secret",
            GOOD_SECRET,
            key.as_str(),
            "--auth-jwt-signing-kid=pem-es256",
        ];
        let config = Config::try_from(serve_args(&args).unwrap()).unwrap();
        assert_eq!(
            config.auth_tokens.algorithm(),
            jsonwebtoken::Algorithm::ES256
        );
        // The secret, then the PEM key's public half: no SLUICE_JWT_PUBLIC_KEY_FILE needed.
        assert_eq!(config.verifier.keys().len(), 2);
        let user = serde_json::json!({"id": "6f1d0d8e-2c3b-4b59-9a9e-1f5c7d2b8a10", "role": "authenticated"});
        let issued = config
            .auth_tokens
            .issue(
                &user,
                uuid::Uuid::nil(),
                "aal1",
                "password",
                std::time::SystemTime::now(),
            )
            .unwrap();
        assert_eq!(
            config.verifier.verify(&issued.token).unwrap().role,
            "authenticated"
        );
        // A token signed by another key (an RSA PEM) is refused by this verifier.
        let other_key = format!("--auth-jwt-signing-key-file={fixtures}/rsa-private.pem");
        let other_args = [args[0], args[1], args[2], other_key.as_str()];
        let other = Config::try_from(serve_args(&other_args).unwrap()).unwrap();
        let foreign = other
            .auth_tokens
            .issue(
                &user,
                uuid::Uuid::nil(),
                "aal1",
                "password",
                std::time::SystemTime::now(),
            )
            .unwrap();
        assert!(config.verifier.verify(&foreign.token).is_err());
        assert!(other.verifier.verify(&foreign.token).is_ok());
    }

    #[test]
    fn the_custom_access_token_hook_is_read_from_its_uri() {
        let base = [
            "--database-url=postgres://u@127.0.0.1/app",
            "--jwt-secret",
            GOOD_SECRET,
        ];
        let mut args = base.to_vec();
        args.push("--auth-hook-custom-access-token-uri=pg-functions://postgres/public/hook");
        let config = Config::try_from(serve_args(&args).unwrap()).unwrap();
        assert_eq!(
            config.auth.access_token_hook.unwrap().uri,
            "pg-functions://postgres/public/hook"
        );
        args.push("--auth-hook-custom-access-token-enabled=false");
        let config = Config::try_from(serve_args(&args).unwrap()).unwrap();
        assert!(config.auth.access_token_hook.is_none());
        let mut args = base.to_vec();
        args.push("--auth-hook-custom-access-token-uri=https://example.com/hook");
        let err = Config::try_from(serve_args(&args).unwrap()).unwrap_err();
        assert!(err.to_string().contains("pg-functions://"), "{err}");
    }

    #[test]
    fn query_limits_have_defaults_and_flags() {
        let base = [
            "--database-url=postgres://u@127.0.0.1/app",
            "--jwt-secret",
            GOOD_SECRET,
        ];
        let config = Config::try_from(serve_args(&base).unwrap()).unwrap();
        assert_eq!(config.query_limits, QueryLimits::default());

        let mut args = base.to_vec();
        args.extend([
            "--max-query-filters=7",
            "--max-query-logic-branches=6",
            "--max-query-logic-depth=5",
            "--max-query-select-items=4",
            "--max-query-embed-depth=3",
            "--max-query-order-terms=2",
        ]);
        let config = Config::try_from(serve_args(&args).unwrap()).unwrap();
        assert_eq!(
            config.query_limits,
            QueryLimits {
                filters: 7,
                logic_branches: 6,
                logic_depth: 5,
                select_items: 4,
                embed_depth: 3,
                order_terms: 2,
            }
        );
        for bad in ["--max-query-filters=0", "--max-query-embed-depth=17"] {
            let mut args = base.to_vec();
            args.push(bad);
            assert!(serve_args(&args).is_err(), "{bad}");
        }
    }

    #[test]
    fn write_limits_are_flags() {
        let args = [
            "--database-url=postgres://u@127.0.0.1/app",
            "--jwt-secret",
            GOOD_SECRET,
            "--max-body-bytes=2048",
            "--allow-unfiltered-writes",
        ];
        let config = Config::try_from(serve_args(&args).unwrap()).unwrap();
        assert_eq!(config.max_body_bytes, 2048);
        assert!(config.allow_unfiltered_writes);
        let mut args = args[..3].to_vec();
        args.push("--max-body-bytes=0");
        assert!(serve_args(&args).is_err());
    }

    #[test]
    fn aggregates_are_off_unless_enabled() {
        let base = [
            "--database-url=postgres://u@127.0.0.1/app",
            "--jwt-secret",
            GOOD_SECRET,
        ];
        let config = Config::try_from(serve_args(&base).unwrap()).unwrap();
        assert!(!config.rest_aggregates_enabled);
        let mut args = base.to_vec();
        args.push("--rest-aggregates-enabled");
        let config = Config::try_from(serve_args(&args).unwrap()).unwrap();
        assert!(config.rest_aggregates_enabled);
    }
}
