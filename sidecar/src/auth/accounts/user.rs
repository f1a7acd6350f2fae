//! The signed-in user: reading and changing their account (`/user`), and logging out.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::store::{self, UserChanges};
use super::tokens::{random_token, token_hash};
use super::{normalize_email, AccountError, Accounts};

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

impl Accounts {
    /// The caller's user; refused when their session has ended or the user is gone.
    pub async fn user(&self, caller: &Caller) -> Result<Value, AccountError> {
        let user = store::user_of(&self.pool, caller.user_id, caller.session_id)
            .await?
            .ok_or(AccountError::UserFromTokenNotFound)?;
        if user["error"] == "session_not_found" {
            return Err(AccountError::SessionNotFound);
        }
        self.with_factors(user).await
    }

    /// PUT /user: email, password, metadata (`data`). A new password ends the user's other sessions.
    /// A new email is applied at once with autoconfirm; otherwise it is pending (`new_email`) until
    /// the link mailed to the new address is followed. A password change may need the `nonce`
    /// of `GET /reauthenticate` (`flows::check_reauthentication`).
    pub async fn update_self(
        &self,
        caller: &Caller,
        changes: Changes,
        redirect_to: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<Value, AccountError> {
        let current = self.user(caller).await?;
        if changes.password.is_some() {
            self.check_reauthentication(caller, nonce).await?;
        }
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

    pub(super) async fn request_email_change(
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
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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
