//! Accounts and sessions: the steps behind each auth endpoint (sign-up, sign-in, refresh, user
//! updates, logout, recovery, admin), independent of HTTP. `http::auth_api` parses requests, calls
//! these, and shapes the answers and `AccountError`s as GoTrue does.

use std::time::SystemTime;

use serde_json::{json, Map, Value};
use uuid::Uuid;

pub use super::account_error::AccountError;
pub use super::admin::NewUser;
pub use super::input::{normalize_email, parse_ban_duration, percent_encode};
use super::mailer::{Mail, Mailer};
use super::password::Passwords;
use super::ratelimit::RateLimiter;
use super::settings::{AuthSettings, ONE_TIME_TOKEN_VALIDITY};
use super::store::{self, StoreError, UserChanges};
use super::tokens::{random_token, token_hash, AccessToken, AccessTokens, TokenError};
use crate::db::Pool;

/// Who is calling, from a verified access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Uuid,
    pub session_id: Option<Uuid>,
}

impl Caller {
    /// `None` when the token has no user (an API key, say) or its `sub` is not a UUID.
    pub fn from_claims(claims: &Map<String, Value>) -> Option<Caller> {
        let user_id = claims.get("sub")?.as_str()?.parse().ok()?;
        let session_id = claims
            .get("session_id")
            .and_then(Value::as_str)
            .and_then(|id| id.parse().ok());
        Some(Caller {
            user_id,
            session_id,
        })
    }
}

/// Where a request came from, for rate limits and the session record.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: String,
    pub user_agent: Option<String>,
}

/// A signed-in session as the client receives it.
#[derive(Debug, Clone)]
pub struct Session {
    pub access: AccessToken,
    pub refresh_token: String,
    pub user: Value,
}

impl Session {
    /// GoTrue's `AccessTokenResponse`.
    pub fn to_json(&self) -> Value {
        json!({
            "access_token": self.access.token,
            "token_type": "bearer",
            "expires_in": self.access.expires_in,
            "expires_at": self.access.expires_at,
            "refresh_token": self.refresh_token,
            "user": self.user,
        })
    }
}

/// The result of a sign-up: a session at once (autoconfirm), or the unconfirmed user.
#[derive(Debug)]
pub enum SignedUp {
    Session(Session),
    AwaitingConfirmation(Value),
}

/// Changes to a user, by the user (PUT /user) or an admin.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub email: Option<String>,
    pub password: Option<String>,
    pub user_metadata: Option<Value>,
    pub app_metadata: Option<Value>,
    pub ban_seconds: Option<f64>,
    pub email_confirm: bool,
}

#[derive(Debug)]
pub struct Accounts {
    pub pool: Pool,
    pub settings: AuthSettings,
    pub passwords: Passwords,
    pub tokens: AccessTokens,
    pub limiter: RateLimiter,
    pub mailer: Mailer,
}

impl Accounts {
    pub fn new(pool: Pool, settings: AuthSettings, tokens: AccessTokens, mailer: Mailer) -> Self {
        let limiter = RateLimiter::new(settings.per_ip, settings.per_email);
        Accounts {
            pool,
            settings,
            passwords: Passwords::default(),
            tokens,
            limiter,
            mailer,
        }
    }

    pub(super) fn check_password(&self, password: &str) -> Result<(), AccountError> {
        if password.chars().count() < self.settings.password_min_length {
            return Err(AccountError::WeakPassword(
                self.settings.password_min_length,
            ));
        }
        Ok(())
    }

    pub async fn signup(
        &self,
        client: &Client,
        email: &str,
        password: &str,
        data: Option<Value>,
        redirect_to: Option<&str>,
    ) -> Result<SignedUp, AccountError> {
        if self.settings.disable_signup {
            return Err(AccountError::SignupDisabled);
        }
        let email = normalize_email(email)?;
        self.limiter.check("signup", &client.ip, Some(&email))?;
        if password.is_empty() {
            return Err(AccountError::Validation("Signup requires a valid password"));
        }
        self.check_password(password)?;
        let hash = self.passwords.hash(password.to_owned()).await?;
        let created = store::create_user(
            &self.pool,
            &email,
            Some(&hash),
            &data.unwrap_or_else(|| json!({})),
            &json!({}),
            self.settings.autoconfirm,
            None,
        )
        .await;
        let user = match created {
            // With confirmation on, a taken email gets the answer a new one gets (as GoTrue's
            // email enumeration protection does): a user with a made-up id and no identities,
            // which is how clients tell a repeated sign-up. Nothing is changed or sent.
            Err(StoreError::EmailTaken) if !self.settings.autoconfirm => {
                return Ok(SignedUp::AwaitingConfirmation(
                    self.stand_in_user(&email).await?,
                ));
            }
            created => created?,
        };
        if self.settings.autoconfirm {
            let user_id = user_id_of(&user)?;
            return Ok(SignedUp::Session(
                self.start(client, user_id, "password").await?,
            ));
        }
        let user = self
            .send_link(&email, "signup", redirect_to)
            .await?
            .unwrap_or(user);
        Ok(SignedUp::AwaitingConfirmation(user))
    }

    /// What a new, unconfirmed user looks like, for an email that is taken.
    async fn stand_in_user(&self, email: &str) -> Result<Value, AccountError> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|err| TokenError::Random(err.to_string()))?;
        let id = uuid::Builder::from_random_bytes(id).into_uuid();
        let now = store::now(&self.pool).await?;
        Ok(json!({
            "id": id.to_string(),
            "aud": self.tokens.audience,
            "role": "authenticated",
            "email": email,
            "phone": "",
            "confirmation_sent_at": now,
            "app_metadata": {"provider": "email", "providers": ["email"]},
            "user_metadata": {},
            "identities": [],
            "created_at": now,
            "updated_at": now,
            "is_anonymous": false,
        }))
    }

    /// grant_type=password.
    pub async fn sign_in(
        &self,
        client: &Client,
        email: &str,
        password: &str,
    ) -> Result<Session, AccountError> {
        let email = email.trim().to_lowercase();
        self.limiter.check("token", &client.ip, Some(&email))?;
        let row = store::password_of(&self.pool, &email).await?;
        let hash = row.as_ref().map(|row| row.hash.clone());
        // The hash is checked whether or not the account exists (see `password`), and before
        // anything else about the account is revealed.
        if !self.passwords.verify(password.to_owned(), hash).await? {
            return Err(AccountError::InvalidCredentials);
        }
        let row = row.ok_or(AccountError::InvalidCredentials)?;
        if row.banned {
            return Err(AccountError::UserBanned);
        }
        if !row.confirmed && !self.settings.autoconfirm {
            return Err(AccountError::EmailNotConfirmed);
        }
        self.start(client, row.user_id, "password").await
    }

    /// grant_type=refresh_token: rotate the token, with reuse detection (see
    /// `auth.sluice_refresh`).
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session, AccountError> {
        if refresh_token.is_empty() {
            return Err(AccountError::RefreshTokenNotFound);
        }
        let next = random_token()?;
        let outcome = store::refresh(
            &self.pool,
            &token_hash(refresh_token),
            &token_hash(&next),
            self.settings.refresh_reuse_interval.as_secs_f64(),
        )
        .await?;
        match outcome["error"].as_str() {
            None => {}
            Some("refresh_token_already_used") => {
                tracing::warn!("refresh token reused; its session is revoked");
                return Err(AccountError::RefreshTokenAlreadyUsed);
            }
            Some("user_banned") => return Err(AccountError::UserBanned),
            Some(_) => return Err(AccountError::RefreshTokenNotFound),
        }
        let session_id = outcome["session_id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .ok_or(AccountError::RefreshTokenNotFound)?;
        let aal = outcome["aal"].as_str().unwrap_or("aal1");
        let user = outcome["user"].clone();
        let access =
            self.tokens
                .issue(&user, session_id, aal, "token_refresh", SystemTime::now())?;
        Ok(Session {
            access,
            refresh_token: next,
            user,
        })
    }

    /// Starts a session for a user whose credentials were checked.
    async fn start(
        &self,
        client: &Client,
        user_id: Uuid,
        method: &str,
    ) -> Result<Session, AccountError> {
        let refresh_token = random_token()?;
        let started = store::start_session(
            &self.pool,
            user_id,
            &token_hash(&refresh_token),
            client.user_agent.as_deref(),
            &client.ip,
        )
        .await?
        // Gone or banned in between.
        .ok_or(AccountError::UserBanned)?;
        let access = self.tokens.issue(
            &started.user,
            started.session_id,
            "aal1",
            method,
            SystemTime::now(),
        )?;
        Ok(Session {
            access,
            refresh_token,
            user: started.user,
        })
    }

    /// The caller's user; refused when their session has ended or the user is gone.
    pub async fn user(&self, caller: &Caller) -> Result<Value, AccountError> {
        let user = store::user_of(&self.pool, caller.user_id, caller.session_id)
            .await?
            .ok_or(AccountError::UserFromTokenNotFound)?;
        if user["error"] == "session_not_found" {
            return Err(AccountError::SessionNotFound);
        }
        Ok(user)
    }

    /// PUT /user: email, password, metadata (`data`). A new password ends the user's other sessions.
    /// A new email is applied at once with autoconfirm; otherwise it is pending (`new_email`) until
    /// the link mailed to the new address is followed.
    pub async fn update_self(
        &self,
        caller: &Caller,
        changes: Changes,
        redirect_to: Option<&str>,
    ) -> Result<Value, AccountError> {
        let current = self.user(caller).await?;
        let new_email = changes
            .email
            .as_deref()
            .map(normalize_email)
            .transpose()?
            .filter(|email| current["email"].as_str() != Some(email.as_str()));
        let pending = new_email.filter(|_| !self.settings.autoconfirm);
        let changes = Changes {
            email: if pending.is_some() {
                None
            } else {
                changes.email
            },
            app_metadata: None,
            ban_seconds: None,
            email_confirm: false,
            ..changes
        };
        let user = self
            .apply(caller.user_id, changes, caller.session_id)
            .await?
            .ok_or(AccountError::UserFromTokenNotFound)?;
        match pending {
            Some(email) => {
                self.request_email_change(caller.user_id, &email, redirect_to)
                    .await
            }
            None => Ok(user),
        }
    }

    async fn request_email_change(
        &self,
        user_id: Uuid,
        email: &str,
        redirect_to: Option<&str>,
    ) -> Result<Value, AccountError> {
        let token = random_token()?;
        let user = store::request_email_change(&self.pool, user_id, email, &token_hash(&token))
            .await?
            .ok_or(AccountError::UserFromTokenNotFound)?;
        self.mail_link(email, "email_change", &token, redirect_to)
            .await?;
        Ok(user)
    }

    pub(super) async fn apply(
        &self,
        user_id: Uuid,
        changes: Changes,
        keep_session: Option<Uuid>,
    ) -> Result<Option<Value>, AccountError> {
        let email = changes.email.as_deref().map(normalize_email).transpose()?;
        let password_hash = match changes.password {
            Some(password) => {
                self.check_password(&password)?;
                Some(self.passwords.hash(password).await?)
            }
            None => None,
        };
        let changes = UserChanges {
            email,
            password_hash,
            user_metadata: changes.user_metadata,
            app_metadata: changes.app_metadata,
            ban_seconds: changes.ban_seconds,
            confirm_email: changes.email_confirm,
            keep_session,
        };
        Ok(store::update_user(&self.pool, user_id, &changes).await?)
    }

    /// POST /logout: `local` ends this session, `others` the user's other sessions, `global` all.
    pub async fn logout(&self, caller: &Caller, scope: &str) -> Result<(), AccountError> {
        store::logout(&self.pool, caller.user_id, caller.session_id, scope).await?;
        Ok(())
    }

    /// POST /recover: mails a recovery link if the email has an account. The answer is the same
    /// either way, so it does not reveal which emails have accounts.
    pub async fn recover(
        &self,
        client: &Client,
        email: &str,
        redirect_to: Option<&str>,
    ) -> Result<(), AccountError> {
        let email = normalize_email(email)?;
        self.limiter.check("recover", &client.ip, Some(&email))?;
        self.send_link(&email, "recovery", redirect_to).await?;
        Ok(())
    }

    /// Stores a one-time token for `email` and mails its link; the user, if there is one.
    async fn send_link(
        &self,
        email: &str,
        kind: &'static str,
        redirect_to: Option<&str>,
    ) -> Result<Option<Value>, AccountError> {
        let token = random_token()?;
        let Some(user) =
            store::issue_one_time_token(&self.pool, email, kind, &token_hash(&token)).await?
        else {
            return Ok(None);
        };
        self.mail_link(email, kind, &token, redirect_to).await?;
        Ok(Some(user))
    }

    /// Mails `to` the link (and code) of a one-time token.
    async fn mail_link(
        &self,
        to: &str,
        kind: &'static str,
        token: &str,
        redirect_to: Option<&str>,
    ) -> Result<(), AccountError> {
        let link = format!(
            "{}/auth/v1/verify?token={token}&type={kind}&redirect_to={}",
            self.settings.external_url,
            percent_encode(&self.settings.redirect_target(redirect_to))
        );
        let (subject, intro) = match kind {
            "signup" => (
                "Confirm your signup",
                "Follow this link to confirm your email:",
            ),
            "email_change" => (
                "Confirm your new email",
                "Follow this link to confirm the change of your email to this address:",
            ),
            _ => (
                "Reset your password",
                "Follow this link to reset your password:",
            ),
        };
        let mail = Mail {
            kind,
            to: to.to_owned(),
            subject: subject.to_owned(),
            body: format!("{intro}\n\n{link}\n\nOr enter this code: {token}\n"),
        };
        self.mailer.send(&self.pool, mail).await?;
        Ok(())
    }

    /// POST/GET /verify: uses up a signup or recovery token and signs the user in.
    /// `token` is the token from the mail; `hashed` says it is already its hash (`token_hash`).
    pub async fn verify(
        &self,
        client: &Client,
        kind: &str,
        token: &str,
        hashed: bool,
    ) -> Result<Session, AccountError> {
        let kind = match kind {
            "signup" | "email" => "signup",
            "recovery" => "recovery",
            "email_change" => "email_change",
            _ => {
                return Err(AccountError::Validation(
                    "Verify requires a verification type",
                ))
            }
        };
        let hash = if hashed {
            token.to_lowercase()
        } else {
            token_hash(token)
        };
        let user_id = store::consume_one_time_token(
            &self.pool,
            kind,
            &hash,
            ONE_TIME_TOKEN_VALIDITY.as_secs_f64(),
        )
        .await?
        .ok_or(AccountError::OtpExpired)?;
        self.start(client, user_id, "otp").await
    }
}

pub(super) fn user_id_of(user: &Value) -> Result<Uuid, AccountError> {
    user["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .ok_or(AccountError::UserNotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_come_from_sub_and_session_id() {
        let claims =
            json!({"sub": "6f1d0d8e-2c3b-4b59-9a9e-1f5c7d2b8a10", "session_id": "not-a-uuid"});
        let caller = Caller::from_claims(claims.as_object().unwrap()).unwrap();
        assert_eq!(caller.session_id, None);
        assert!(Caller::from_claims(json!({"role": "anon"}).as_object().unwrap()).is_none());
        assert!(Caller::from_claims(json!({"sub": "x"}).as_object().unwrap()).is_none());
    }
}
