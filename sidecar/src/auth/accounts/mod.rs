//! The GoTrue accounts domain: the steps behind each `/auth/v1/` endpoint, independent of HTTP.
//! `http::auth_api` parses requests, calls these, and shapes the answers and `AccountError`s as
//! GoTrue does.
//!
//! - `session`: sign-up, sign-in, refresh and verification of mailed tokens, each ending in a
//!   `Session`; `user`: the signed-in user reads and changes their account and logs out;
//!   `links`: confirmation, recovery and email-change mail; `admin`: the service key's user admin.
//! - Their parts: `store` (the `auth` tables, through the extension's functions), `password`
//!   (Argon2id), `tokens` (issuing access, refresh and one-time tokens), `mailer`, `ratelimit`,
//!   `input` (checking what clients send), `settings`, and `background` (work done after
//!   answering).
//! - `error`: `AccountError`, the domain's one error.

pub(crate) mod admin;
pub(crate) mod background;
pub(crate) mod error;
pub mod external;
pub mod flow_state;
pub mod flows;
pub mod hooks;
pub(crate) mod input;
pub mod link;
mod links;
pub mod mailer;
pub mod mfa;
pub mod otp;
pub(crate) mod password;
pub mod ratelimit;
pub(crate) mod session;
pub mod settings;
pub mod sms;
pub(crate) mod store;
pub(crate) mod store_flow;
pub(crate) mod store_otp;
pub mod tokens;
pub(crate) mod user;

use serde_json::Value;
use uuid::Uuid;

pub use admin::NewUser;
pub use error::AccountError;
pub use input::{encode_redirect, normalize_email, parse_ban_duration, percent_encode};
pub use session::{Session, SignedUp};
pub use user::{Caller, Changes};

use crate::db::Pool;
use background::Background;
use mailer::Mailer;
use password::Passwords;
use ratelimit::RateLimiter;
use settings::AuthSettings;
use sms::SmsSender;
use tokens::AccessTokens;

/// Where a request came from, for rate limits and the session record.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: String,
    pub user_agent: Option<String>,
}
/// The accounts service: what every auth handler reaches.
#[derive(Debug)]
pub struct Accounts {
    pub pool: Pool,
    pub settings: AuthSettings,
    pub passwords: Passwords,
    pub tokens: AccessTokens,
    pub limiter: RateLimiter,
    pub mailer: Mailer,
    /// Texting phone codes (`SLUICE_AUTH_SMS_*`).
    pub sms: SmsSender,
    /// Mailing links after the answer; `serve` drains it at shutdown.
    pub background: Background,
    /// External providers (`SLUICE_AUTH_EXTERNAL_<NAME>_*`).
    pub oauth: crate::auth::oauth::OAuth,
}

impl Accounts {
    pub fn new(pool: Pool, settings: AuthSettings, tokens: AccessTokens, mailer: Mailer) -> Self {
        let limiter = RateLimiter::new(settings.per_ip, settings.per_email);
        let sms = SmsSender::from_settings(&settings.sms);
        let oauth = crate::auth::oauth::OAuth::from_env(&settings.external_url);
        Accounts {
            oauth,
            sms,
            pool,
            settings,
            passwords: Passwords::default(),
            tokens,
            limiter,
            mailer,
            background: Background::default(),
        }
    }

    fn check_password(&self, password: &str) -> Result<(), AccountError> {
        if password.chars().count() < self.settings.password_min_length {
            return Err(AccountError::WeakPassword(
                self.settings.password_min_length,
            ));
        }
        Ok(())
    }
}

impl Accounts {
    /// The access token of `user` in a session: Supabase's claims, passed through the custom
    /// access token hook when one is configured, then signed.
    pub(crate) async fn issue(
        &self,
        user: &Value,
        session_id: Uuid,
        aal: &str,
        method: &str,
        amr: Option<Value>,
    ) -> Result<tokens::AccessToken, AccountError> {
        let now = std::time::SystemTime::now();
        let claims = self
            .tokens
            .claims(user, session_id, aal, method, amr, now)?;
        let Some(hook) = &self.settings.access_token_hook else {
            return Ok(self.tokens.sign(&claims)?);
        };
        let expires_at = claims["exp"].as_u64().unwrap_or_default();
        let changed = hook
            .run(&self.pool, user_id_of(user)?, claims, method)
            .await?;
        let mut access = self.tokens.sign(&Value::Object(changed))?;
        access.expires_at = expires_at;
        Ok(access)
    }
}

fn user_id_of(user: &Value) -> Result<Uuid, AccountError> {
    user["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .ok_or(AccountError::UserNotFound)
}
