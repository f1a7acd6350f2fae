//! Starting sessions: sign-up, sign-in with a password, refresh-token rotation and verification of
//! a mailed token, each ending in a `Session` (GoTrue's access-token response).

use serde_json::{json, Value};
use uuid::Uuid;

use super::flow_state::Pkce;
use super::password;
use super::settings::ONE_TIME_TOKEN_VALIDITY;
use super::store::{self, StoreError};
use super::tokens::{random_token, token_hash, AccessToken, IssueError};
use super::{normalize_email, user_id_of, AccountError, Accounts, Client};

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

impl Accounts {
    pub async fn signup(
        &self,
        client: &Client,
        email: &str,
        password: &str,
        data: Option<Value>,
        redirect_to: Option<&str>,
        pkce: Option<Pkce>,
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
            // which is how clients tell a repeated sign-up. Nothing is changed or sent. As the
            // empty `identities` tells on purpose (supabase-js apps rely on it), this answer
            // is not made to take as long as a real sign-up: its time tells nothing more.
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
            .send_link(&email, "signup", redirect_to, pkce.as_ref())
            .await?
            .unwrap_or(user);
        Ok(SignedUp::AwaitingConfirmation(user))
    }

    /// What a new, unconfirmed user looks like, for an email that is taken.
    async fn stand_in_user(&self, email: &str) -> Result<Value, AccountError> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|err| IssueError::Random(err.to_string()))?;
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
        // Per address, and per account from this address only: see `ratelimit`.
        self.limiter.check_sign_in(&client.ip, &email)?;
        let row = store::password_of(&self.pool, &email).await?;
        self.sign_in_with(client, row, password).await
    }

    /// Checks `password` against the password row of the account (if any) and starts its
    /// session: password sign-in by email or by phone.
    pub(super) async fn sign_in_with(
        &self,
        client: &Client,
        row: Option<store::PasswordRow>,
        password: &str,
    ) -> Result<Session, AccountError> {
        let hash = row.as_ref().map(|row| row.hash.clone());
        // The hash is checked whether or not the account exists (see `password`), and before
        // anything else about the account is revealed.
        if !self.passwords.verify(password.to_owned(), hash).await? {
            return Err(AccountError::InvalidCredentials);
        }
        let row = row.ok_or(AccountError::InvalidCredentials)?;
        if password::needs_rehash(&row.hash) {
            // An imported bcrypt hash, verified once: from now on the password is Argon2id.
            let fresh = self.passwords.hash(password.to_owned()).await?;
            store::rehash_password(&self.pool, row.user_id, &row.hash, &fresh).await?;
        }
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
        let user = self.with_factors(outcome["user"].clone()).await?;
        // An aal2 session keeps saying how it got there (`totp` and its first method).
        let amr = if aal == "aal1" {
            None
        } else {
            store::call_json(
                &self.pool,
                "SELECT auth.sluice_session_amr($1)",
                &[&session_id],
            )
            .await?
        };
        let access = self
            .issue(&user, session_id, aal, "token_refresh", amr)
            .await?;
        Ok(Session {
            access,
            refresh_token: next,
            user,
        })
    }

    /// Starts a session for a user whose credentials were checked; `method` is the session's
    /// `amr` entry (GoTrue's authentication method: password, otp, magiclink, anonymous...).
    pub(super) async fn start(
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
        let user = self.with_factors(started.user).await?;
        let access = match self
            .issue(&user, started.session_id, "aal1", method, None)
            .await
        {
            Ok(access) => access,
            Err(err) => {
                // No token (the access token hook refused, say): the session must not outlive
                // the refusal, as GoTrue's transaction would not have kept it.
                let ended = store::logout(&self.pool, user_id, Some(started.session_id), "local");
                if let Err(cleanup) = ended.await {
                    tracing::warn!("could not end a session left without a token: {cleanup}");
                }
                return Err(err);
            }
        };
        Ok(Session {
            access,
            refresh_token,
            user,
        })
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
        let user_id = self.consume_token(kind, &hash).await?;
        self.start(client, user_id, "otp").await
    }

    /// Uses up a mailed token of `kind` by its hash: the user's id.
    pub(super) async fn consume_token(&self, kind: &str, hash: &str) -> Result<Uuid, AccountError> {
        store::consume_one_time_token(
            &self.pool,
            kind,
            hash,
            ONE_TIME_TOKEN_VALIDITY.as_secs_f64(),
        )
        .await?
        .ok_or(AccountError::OtpExpired)
    }
}
