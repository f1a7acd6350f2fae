//! `sluice serve`: start-up, serving, and graceful shutdown.

use std::future::IntoFuture;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::auth::accounts::Accounts;
use crate::changelog::ChangeReader;
use crate::config::{Config, ConfigError, ServeArgs};
use crate::db::listen::Listener;
use crate::db::pool::{self, Pool, PoolBuildError};
use crate::db::startup::{self, StartupError};
use crate::http::auth_api::AuthState;
use crate::http::storage::{routes as storage_routes, StorageState};
use crate::http::{app_with_auth, AppState, WriteLimits};
use crate::jobs;
use crate::realtime::Realtime;
use crate::schema::{self, SchemaError};
use crate::shutdown::Signals;
use crate::storage::{Backend, Storage};
use crate::webhooks;
use crate::VERSION;

/// How long in-flight requests may run after a stop signal. Orchestrators send SIGKILL some time
/// after SIGTERM (Kubernetes: 30 s), so we finish well before that and exit cleanly ourselves.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("could not start the async runtime: {0}")]
    Runtime(#[source] io::Error),
    #[error("could not install the SIGTERM/SIGINT handlers: {0}")]
    Signals(#[source] io::Error),
    #[error(transparent)]
    Pool(#[from] PoolBuildError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("could not listen on {addr}: {source}. Choose another address with --listen (or SLUICE_LISTEN)")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("could not open the storage backend: {0}")]
    Storage(String),
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] io::Error),
}

/// Validates the flags and runs the server until a stop signal.
pub fn run(args: ServeArgs) -> Result<(), ServeError> {
    let config = Config::try_from(args)?;
    let mut builder = match config.worker_threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        threads => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if threads > 1 {
                builder.worker_threads(threads);
            }
            builder
        }
    };
    let runtime = builder.enable_all().build().map_err(ServeError::Runtime)?;
    let threads = runtime.metrics().num_workers();
    runtime.block_on(async move {
        tracing::info!(
            "serving requests on {threads} worker thread{}",
            if threads == 1 { "" } else { "s" }
        );
        serve(config).await
    })
}

pub async fn serve(config: Config) -> Result<(), ServeError> {
    let mut signals = Signals::install().map_err(ServeError::Signals)?;
    let target = startup::describe_target(&config.database);
    tracing::info!("sluice {VERSION} starting; database {target}");

    let pool = pool::build(&config.database, config.pool_size)?;
    let extension_version = tokio::select! {
        checked = startup::check(&pool, &target, config.startup_timeout, VERSION) => checked?,
        signal = signals.recv() => {
            tracing::info!("received {signal} during start-up; sluice stopped");
            return Ok(());
        }
    };
    tracing::info!("database {target} is up with the sluice extension {extension_version}");
    // Reads get their shared connections once the database is known to be up.
    let pool = pool.pipelined(&config.database, config.pipeline);
    // The one LISTEN connection: the schema cache, the change-log reader and realtime subscribe.
    let notices = Listener::start(&config.database);
    let schema = tokio::select! {
        started = schema::start(pool.clone(), &notices, config.exposed_schemas.clone()) => started?,
        signal = signals.recv() => {
            tracing::info!("received {signal} during start-up; sluice stopped");
            return Ok(());
        }
    };

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServeError::Serve)?;
    let verifier = Arc::new(config.verifier);
    let accounts = Arc::new(Accounts::new(
        pool.clone(),
        config.auth,
        config.auth_tokens,
        config.mailer,
    ));
    let auth = AuthState {
        accounts: Arc::clone(&accounts),
        verifier: Arc::clone(&verifier),
    };
    let pool_for_storage = pool.clone();
    let verifier_for_storage = Arc::clone(&verifier);
    let changes = ChangeReader::start(pool.clone(), &notices);
    if config.webhooks {
        webhooks::start(&config.database, pool.clone(), changes.clone(), &notices);
    } else {
        tracing::info!("webhooks: not delivered by this instance (--no-webhooks)");
    }
    if config.jobs {
        jobs::start(pool.clone());
    } else {
        tracing::info!("jobs: not run by this instance (--no-jobs)");
    }
    let mut realtime = Realtime::start(pool.clone(), changes, &notices);
    realtime.heartbeat_timeout = config.realtime_heartbeat_timeout;
    let state = AppState {
        extension_version: Arc::from(extension_version),
        max_rows: config.max_rows,
        query_limits: config.query_limits,
        aggregates_enabled: config.rest_aggregates_enabled,
        writes: WriteLimits {
            max_body_bytes: config.max_body_bytes,
            allow_unfiltered: config.allow_unfiltered_writes,
        },
        plan_enabled: config.db_plan_enabled,
        ..AppState::new(pool, verifier, schema, realtime)
    };

    // The signal future tells axum to stop accepting and to drain; `draining` starts our own clock
    // so that a request that never finishes cannot hold the process forever.
    let (draining_tx, draining_rx) = oneshot::channel::<()>();
    // Realtime frames are small and latency-bound: send each at once rather than wait for an ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!("could not set TCP_NODELAY: {err}");
        }
    });
    let storage = start_storage(
        &config.storage,
        config.jwt_secret.as_bytes(),
        pool_for_storage,
    )?;
    let storage = StorageState {
        storage,
        verifier: Arc::clone(&verifier_for_storage),
    };
    // Connect info: the auth API's rate limits are per client IP.
    let service = app_with_auth(state, auth)
        .merge(storage_routes(storage))
        .into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            let signal = signals.recv().await;
            tracing::info!(
                "received {signal}; shutting down (finishing in-flight requests for up to {}s)",
                DRAIN_TIMEOUT.as_secs()
            );
            let _ = draining_tx.send(());
        })
        .into_future();
    tracing::info!("listening on http://{addr}");

    let drain_deadline = async {
        match draining_rx.await {
            Ok(()) => tokio::time::sleep(DRAIN_TIMEOUT).await,
            // The server ended without a signal; its own result decides.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        served = server => served.map_err(ServeError::Serve)?,
        () = drain_deadline => tracing::warn!(
            "requests still running after {}s; closing them", DRAIN_TIMEOUT.as_secs()
        ),
    }
    // Links promised to clients (recovery mail) are still sent.
    if !accounts.background.drain(DRAIN_TIMEOUT).await {
        tracing::warn!(
            "auth mail still being sent after {}s; stopping anyway",
            DRAIN_TIMEOUT.as_secs()
        );
    }
    tracing::info!("sluice stopped");
    Ok(())
}

/// The storage service over the configured backend, and its sweep: once at start-up, then every
/// `--storage-sweep-interval`.
fn start_storage(
    args: &crate::config::StorageArgs,
    jwt_secret: &[u8],
    pool: Pool,
) -> Result<Arc<Storage>, ServeError> {
    let backend = match args.storage_s3_bucket.as_deref() {
        Some(bucket) if args.storage_backend == "s3" => {
            Backend::s3(bucket).map_err(|err| ServeError::Storage(err.to_string()))?
        }
        _ => Backend::local(&args.storage_root).map_err(|err| {
            ServeError::Storage(format!("{}: {err}", args.storage_root.display()))
        })?,
    };
    tracing::info!("storage backend: {backend:?}");
    let mut storage = Storage::new(backend, jwt_secret, pool);
    storage.max_file_bytes = args.storage_max_file_bytes;
    storage.sweep_page = args.storage_sweep_page;
    let storage = Arc::new(storage);
    let grace = Duration::from_secs(args.storage_sweep_grace);
    let interval = Duration::from_secs(args.storage_sweep_interval);
    let sweeper = Arc::clone(&storage);
    tokio::spawn(async move {
        loop {
            let started = std::time::Instant::now();
            match sweeper.sweep_now(grace).await {
                Ok(swept) if swept.removed == 0 && swept.aborted == 0 => {}
                Ok(swept) => tracing::info!(
                    "storage sweep removed {} unreferenced objects and aborted {} interrupted \
                     multipart uploads in {} ms, {} passes",
                    swept.removed,
                    swept.aborted,
                    started.elapsed().as_millis(),
                    swept.passes
                ),
                Err(err) => {
                    tracing::warn!("storage sweep failed: {}", crate::error::describe(&err))
                }
            }
            tokio::time::sleep(interval).await;
        }
    });
    Ok(storage)
}
