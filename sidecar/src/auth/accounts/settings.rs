//! The auth API's settings: command-line flags (each also an environment variable) validated into
//! `AuthSettings`.

use std::time::Duration;

use clap::Args;

use super::hooks::AccessTokenHook;
use super::ratelimit::Limit;
use super::sms::{SmsProvider, SmsSettings};

/// How long a confirmation or recovery link stays valid (GoTrue's default).
pub const ONE_TIME_TOKEN_VALIDITY: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// Lifetime of access tokens issued by /auth/v1.
    #[arg(long, env = "SLUICE_AUTH_JWT_EXPIRY", value_name = "SECONDS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(30..=7 * 24 * 3600))]
    pub auth_jwt_expiry: u64,

    /// Grace window for refresh-token reuse: a refresh token presented again within this many
    /// seconds of its first use (two tabs refreshing at once) gets a new token; later, reuse
    /// revokes the whole session.
    #[arg(long, env = "SLUICE_AUTH_REFRESH_REUSE_INTERVAL", value_name = "SECONDS",
          default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub auth_refresh_reuse_interval: u64,

    /// Shortest password accepted (in characters).
    #[arg(long, env = "SLUICE_AUTH_PASSWORD_MIN_LENGTH", default_value_t = 6,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub auth_password_min_length: u32,

    /// Sign-ups are confirmed at once and get a session (no confirmation email). Off by default;
    /// `make run` turns it on, as Supabase's local development does.
    #[arg(long, env = "SLUICE_AUTH_AUTOCONFIRM")]
    pub auth_autoconfirm: bool,

    /// Refuse new sign-ups (admins can still create users).
    #[arg(long, env = "SLUICE_AUTH_DISABLE_SIGNUP")]
    pub auth_disable_signup: bool,

    /// The API's public URL, used in the links of confirmation and recovery mail.
    #[arg(
        long,
        env = "SLUICE_AUTH_EXTERNAL_URL",
        default_value = "http://127.0.0.1:54321"
    )]
    pub auth_external_url: String,

    /// Where confirmation and recovery links send the browser when no redirect_to is given.
    #[arg(
        long,
        env = "SLUICE_AUTH_SITE_URL",
        default_value = "http://127.0.0.1:3000"
    )]
    pub auth_site_url: String,

    /// Other URLs (comma-separated prefixes) that `redirect_to` may name besides the site URL's
    /// origin; any other redirect goes to the site URL, so links cannot hand a session to a
    /// stranger's site.
    #[arg(
        long,
        env = "SLUICE_AUTH_ADDITIONAL_REDIRECT_URLS",
        value_delimiter = ','
    )]
    pub auth_additional_redirect_urls: Vec<String>,

    /// Header that holds the client's address when the sidecar runs behind a trusted proxy (e.g.
    /// `x-forwarded-for`); its last entry, the one the nearest proxy added, is used. Unset, the
    /// TCP peer address is the client's and the header is ignored. Set it only behind a proxy
    /// that sets the header, or clients can choose their own address and escape the limits.
    #[arg(long, env = "SLUICE_AUTH_CLIENT_IP_HEADER")]
    pub auth_client_ip_header: Option<String>,

    /// Sign-in, sign-up and recovery attempts allowed per client address in each window (an
    /// IPv6 client is counted by its /64).
    #[arg(long, env = "SLUICE_AUTH_RATE_LIMIT_IP", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_rate_limit_ip: u32,

    /// Attempts allowed per email address in each window: password sign-ins per email *and
    /// client address* (guesses from one address never lock the owner out on another), sign-ups
    /// and recoveries per email from every address together (each may send that address mail).
    #[arg(long, env = "SLUICE_AUTH_RATE_LIMIT_EMAIL", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_rate_limit_email: u32,

    /// The rate-limit window.
    #[arg(long, env = "SLUICE_AUTH_RATE_LIMIT_WINDOW", value_name = "SECONDS",
          default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub auth_rate_limit_window: u64,

    /// Keys that sign access tokens with RS256/ES256 instead of the JWT secret (HS256, whose
    /// tokens stay valid): a JWK file with private keys, as Supabase's signing_keys.json (a JSON
    /// array; the key whose key_ops names "sign" signs, every key verifies, all public halves are
    /// published at /auth/v1/.well-known/jwks.json), or one PEM private key (RSA or EC P-256),
    /// whose public key must then be given to --jwt-public-key-file.
    #[arg(long, env = "SLUICE_AUTH_JWT_SIGNING_KEY_FILE", value_name = "PATH")]
    pub auth_jwt_signing_key_file: Option<std::path::PathBuf>,

    /// `kid` header of tokens signed with a PEM --auth-jwt-signing-key-file (a JWK file names
    /// its own).
    #[arg(long, env = "SLUICE_AUTH_JWT_SIGNING_KID")]
    pub auth_jwt_signing_kid: Option<String>,

    /// GoTrue's custom access token hook: a SQL function called with {user_id, claims,
    /// authentication_method} before each access token is signed, returning {claims} (or
    /// {error: {http_code, message}}), named as pg-functions://postgres/<schema>/<function>. It
    /// runs as service_role: grant it EXECUTE on the function.
    #[arg(long, env = "SLUICE_AUTH_HOOK_CUSTOM_ACCESS_TOKEN_URI")]
    pub auth_hook_custom_access_token_uri: Option<String>,

    /// Turns the hook off while keeping its URI (GoTrue's _ENABLED); set, the URI alone turns
    /// it on.
    #[arg(
        long,
        env = "SLUICE_AUTH_HOOK_CUSTOM_ACCESS_TOKEN_ENABLED",
        value_name = "BOOL"
    )]
    pub auth_hook_custom_access_token_enabled: Option<bool>,

    /// SMTP server for auth mail, as a URL: smtps://user:pass@host:465, or
    /// smtp://user:pass@host:587?tls=required for STARTTLS. Unset, mail goes to the log and to
    /// the table auth.mail_outbox.
    #[arg(long, env = "SLUICE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// How long a magic link or an email or phone code stays valid.
    #[arg(long, env = "SLUICE_AUTH_OTP_EXPIRY", value_name = "SECONDS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(30..=86400))]
    pub auth_otp_expiry: u64,

    /// Allow anonymous sign-ins (`signInAnonymously()`), off by default as in GoTrue.
    #[arg(long, env = "SLUICE_AUTH_ANONYMOUS_USERS")]
    pub auth_anonymous_users: bool,

    /// Allow users to link and unlink identities by hand (`linkIdentity`, `unlinkIdentity`), off
    /// by default as in GoTrue (GOTRUE_SECURITY_MANUAL_LINKING_ENABLED).
    #[arg(long, env = "SLUICE_AUTH_MANUAL_LINKING_ENABLED")]
    pub auth_manual_linking_enabled: bool,
    /// A password change (`PUT /user`) from a session older than a day needs the nonce of
    /// `GET /reauthenticate` (GoTrue's GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION).
    #[arg(long, env = "SLUICE_AUTH_SECURE_PASSWORD_CHANGE")]
    pub auth_secure_password_change: bool,

    /// Who texts phone codes: `outbox` (the log and the table auth.sms_outbox) or `twilio`
    /// (Twilio's Messages API, with the SLUICE_AUTH_SMS_TWILIO_* settings).
    #[arg(long, env = "SLUICE_AUTH_SMS_PROVIDER", default_value = "outbox",
          value_parser = ["outbox", "twilio"])]
    pub auth_sms_provider: String,

    /// Twilio account SID.
    #[arg(long, env = "SLUICE_AUTH_SMS_TWILIO_ACCOUNT_SID", default_value = "")]
    pub auth_sms_twilio_account_sid: String,

    /// Twilio auth token.
    #[arg(
        long,
        env = "SLUICE_AUTH_SMS_TWILIO_AUTH_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    pub auth_sms_twilio_auth_token: String,

    /// Twilio messaging service SID (`MG...`), or the sending phone number.
    #[arg(
        long,
        env = "SLUICE_AUTH_SMS_TWILIO_MESSAGE_SERVICE_SID",
        default_value = ""
    )]
    pub auth_sms_twilio_message_service_sid: String,

    /// Base URL of Twilio's API (another service with the same API, or a test receiver).
    #[arg(
        long,
        env = "SLUICE_AUTH_SMS_TWILIO_API_URL",
        default_value = "https://api.twilio.com"
    )]
    pub auth_sms_twilio_api_url: String,

    /// Test phone numbers with fixed codes, never texted (as the Supabase CLI's
    /// `[auth.sms.test_otp]`): comma-separated `number=code`, e.g. `4152127777=123456`.
    #[arg(long, env = "SLUICE_AUTH_SMS_TEST_OTP", value_delimiter = ',', value_parser = parse_test_otp)]
    pub auth_sms_test_otp: Vec<(String, String)>,

    /// Sender of auth mail.
    #[arg(
        long,
        env = "SLUICE_SMTP_FROM",
        default_value = "Sluice <noreply@localhost>"
    )]
    pub smtp_from: String,
}

/// Validated auth settings.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub jwt_expiry: Duration,
    pub refresh_reuse_interval: Duration,
    pub password_min_length: usize,
    pub autoconfirm: bool,
    pub disable_signup: bool,
    pub external_url: String,
    pub site_url: String,
    pub additional_redirect_urls: Vec<String>,
    /// Lower-cased header name; see `AuthArgs::auth_client_ip_header`.
    pub client_ip_header: Option<String>,
    pub per_ip: Limit,
    pub per_email: Limit,
    /// Validity of magic links and email and phone codes.
    pub otp_expiry: Duration,
    pub anonymous_users: bool,
    /// `linkIdentity` / `unlinkIdentity` allowed (`SLUICE_AUTH_MANUAL_LINKING_ENABLED`).
    pub manual_linking: bool,
    /// `SLUICE_AUTH_SECURE_PASSWORD_CHANGE`.
    pub secure_password_change: bool,
    pub sms: SmsSettings,
    /// The custom access token hook (`hooks`), when configured.
    pub access_token_hook: Option<AccessTokenHook>,
}

/// `number=code` of `SLUICE_AUTH_SMS_TEST_OTP`.
fn parse_test_otp(entry: &str) -> Result<(String, String), String> {
    let (number, code) = entry
        .split_once('=')
        .ok_or_else(|| format!("{entry:?} is not number=code"))?;
    let number = super::otp::normalize_phone(number)
        .map_err(|_| format!("{number:?} is not a phone number"))?;
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the code of {number} must be 6 digits"));
    }
    Ok((number, code.to_owned()))
}

impl Default for AuthSettings {
    fn default() -> Self {
        let window = Duration::from_secs(300);
        AuthSettings {
            jwt_expiry: Duration::from_secs(3600),
            refresh_reuse_interval: Duration::from_secs(10),
            password_min_length: 6,
            autoconfirm: false,
            disable_signup: false,
            external_url: "http://127.0.0.1:54321".into(),
            site_url: "http://127.0.0.1:3000".into(),
            additional_redirect_urls: Vec::new(),
            client_ip_header: None,
            per_ip: Limit { limit: 30, window },
            per_email: Limit { limit: 10, window },
            otp_expiry: Duration::from_secs(3600),
            anonymous_users: false,
            manual_linking: false,
            secure_password_change: false,
            sms: SmsSettings::default(),
            access_token_hook: None,
        }
    }
}

impl AuthSettings {
    /// Where a link may send the browser: `requested` if it is on the site URL's origin or under
    /// one of the additional URLs, else the site URL.
    pub fn redirect_target(&self, requested: Option<&str>) -> String {
        let allowed = |url: &str| {
            origin(url).is_some_and(|origin| Some(origin) == self::origin(&self.site_url))
                || self
                    .additional_redirect_urls
                    .iter()
                    .any(|prefix| url.starts_with(prefix.as_str()))
        };
        match requested {
            Some(url) if !url.is_empty() && allowed(url) => url.to_owned(),
            _ => self.site_url.clone(),
        }
    }
}

/// `scheme://authority` of an absolute http(s) URL, lower-cased.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') || authority.contains('\\') {
        return None;
    }
    Some(format!("{scheme}://{authority}").to_lowercase())
}

impl From<&AuthArgs> for AuthSettings {
    fn from(args: &AuthArgs) -> Self {
        let window = Duration::from_secs(args.auth_rate_limit_window);
        AuthSettings {
            jwt_expiry: Duration::from_secs(args.auth_jwt_expiry),
            refresh_reuse_interval: Duration::from_secs(args.auth_refresh_reuse_interval),
            password_min_length: args.auth_password_min_length as usize,
            autoconfirm: args.auth_autoconfirm,
            disable_signup: args.auth_disable_signup,
            external_url: args.auth_external_url.trim_end_matches('/').to_owned(),
            site_url: args.auth_site_url.clone(),
            additional_redirect_urls: args
                .auth_additional_redirect_urls
                .iter()
                .map(|url| url.trim().to_owned())
                .filter(|url| !url.is_empty())
                .collect(),
            client_ip_header: args
                .auth_client_ip_header
                .as_deref()
                .map(|name| name.trim().to_ascii_lowercase())
                .filter(|name| !name.is_empty()),
            per_ip: Limit {
                limit: args.auth_rate_limit_ip,
                window,
            },
            per_email: Limit {
                limit: args.auth_rate_limit_email,
                window,
            },
            otp_expiry: Duration::from_secs(args.auth_otp_expiry),
            anonymous_users: args.auth_anonymous_users,
            manual_linking: args.auth_manual_linking_enabled,
            secure_password_change: args.auth_secure_password_change,
            sms: SmsSettings {
                provider: match args.auth_sms_provider.as_str() {
                    "twilio" => SmsProvider::Twilio {
                        api_url: args.auth_sms_twilio_api_url.clone(),
                        account_sid: args.auth_sms_twilio_account_sid.clone(),
                        auth_token: args.auth_sms_twilio_auth_token.clone(),
                        message_service_sid: args.auth_sms_twilio_message_service_sid.clone(),
                    },
                    _ => SmsProvider::Outbox,
                },
                test_otp: args.auth_sms_test_otp.iter().cloned().collect(),
            },
            // Read by `config`, which can refuse a bad URI.
            access_token_hook: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_the_site_or_the_allowed_urls() {
        let settings = AuthSettings {
            site_url: "https://app.example".into(),
            additional_redirect_urls: vec!["http://localhost:5173/".into()],
            ..AuthSettings::default()
        };
        let target = |url| settings.redirect_target(Some(url));
        assert_eq!(
            target("https://app.example/welcome?x=1"),
            "https://app.example/welcome?x=1"
        );
        assert_eq!(target("HTTPS://APP.EXAMPLE/a"), "HTTPS://APP.EXAMPLE/a");
        assert_eq!(
            target("http://localhost:5173/cb"),
            "http://localhost:5173/cb"
        );
        for refused in [
            "https://evil.example/",
            "https://app.example.evil.example/",
            "https://app.example@evil.example/",
            "//evil.example",
            "javascript:alert(1)",
            "http://localhost:5174/",
        ] {
            assert_eq!(target(refused), "https://app.example", "{refused}");
        }
        assert_eq!(settings.redirect_target(None), "https://app.example");
    }

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        auth: AuthArgs,
    }

    fn parse(argv: &[&str]) -> Result<AuthSettings, clap::Error> {
        use clap::Parser;
        let mut all = vec!["sluice"];
        all.extend_from_slice(argv);
        Ok(AuthSettings::from(&Flags::try_parse_from(all)?.auth))
    }

    #[test]
    fn sms_settings_are_checked() {
        let settings =
            parse(&["--auth-sms-test-otp=+1 415 212 7777=123456,4915112345678=000111"]).unwrap();
        assert_eq!(settings.sms.test_otp["14152127777"], "123456");
        assert_eq!(settings.sms.test_otp["4915112345678"], "000111");
        assert!(settings.sms.is_complete());
        for bad in [
            "4152127777",
            "4152127777=12345",
            "abc=123456",
            "4152127777=12345a",
        ] {
            assert!(
                parse(&[&format!("--auth-sms-test-otp={bad}")]).is_err(),
                "{bad}"
            );
        }
        assert!(parse(&["--auth-sms-provider=carrier-pigeon"]).is_err());
        let partial = parse(&[
            "--auth-sms-provider=twilio",
            "--auth-sms-twilio-account-sid=AC1",
        ])
        .unwrap();
        assert!(!partial.sms.is_complete());
        let twilio = parse(&[
            "--auth-sms-provider=twilio",
            "--auth-sms-twilio-account-sid=AC1",
            "--auth-sms-twilio-auth-token=secret",
            "--auth-sms-twilio-message-service-sid=MG1",
        ])
        .unwrap();
        assert!(twilio.sms.is_complete());
        assert!(
            !format!("{:?}", twilio.sms).contains("secret"),
            "the token stays out of logs"
        );
    }
}
