//! Manual identity linking, as GoTrue's `linkIdentity` / `unlinkIdentity` (off unless
//! `SLUICE_AUTH_MANUAL_LINKING_ENABLED`): a signed-in user adds a provider identity to their own
//! account (through the OAuth flow or an ID token), never by email and never to another user, or
//! removes one of theirs (`auth.sluice_link_identity`, `auth.sluice_unlink_identity`). An anonymous
//! user who links an identity with a verified email takes that email and stops being anonymous,
//! keeping their id.

use uuid::Uuid;

use super::external::OAUTH_METHOD;
use super::session::Session;
use super::store;
use super::{AccountError, Accounts, Caller, Client};
use crate::auth::oauth::ExternalUser;

impl Accounts {
    /// Refused while manual linking is off (GoTrue's 404 `manual_linking_disabled`).
    pub fn require_manual_linking(&self) -> Result<(), AccountError> {
        if self.settings.manual_linking {
            Ok(())
        } else {
            Err(AccountError::ManualLinkingDisabled)
        }
    }

    /// Adds `external` to `user_id`'s identities.
    pub async fn link_external(
        &self,
        user_id: Uuid,
        external: &ExternalUser,
    ) -> Result<(), AccountError> {
        let linked = store::call_json(
            &self.pool,
            "SELECT auth.sluice_link_identity($1, $2, $3, $4, $5, $6)",
            &[
                &user_id,
                &external.provider,
                &external.provider_id,
                &external.claims,
                &external.email,
                &external.email_verified,
            ],
        )
        .await?
        .unwrap_or_default();
        match linked["error"].as_str() {
            None => {}
            Some("identity_already_exists") if linked["same_user"] == true => {
                return Err(AccountError::IdentityAlreadyExists(
                    "Identity is already linked",
                ))
            }
            Some("identity_already_exists") => {
                return Err(AccountError::IdentityAlreadyExists(
                    "Identity is already linked to another user",
                ))
            }
            Some("email_not_verified") => {
                return Err(AccountError::LinkedEmailNotVerified(
                    external.provider.clone(),
                ))
            }
            Some("email_exists") => return Err(AccountError::EmailExists),
            Some(_) => return Err(AccountError::UserFromTokenNotFound),
        }
        if linked["converted"] == true {
            tracing::info!(
                "auth: anonymous user {user_id} converted by linking {}",
                external.provider
            );
        }
        Ok(())
    }

    /// A session for `user_id` at the end of a linking flow through a provider.
    pub async fn start_oauth_session(
        &self,
        client: &Client,
        user_id: Uuid,
    ) -> Result<Session, AccountError> {
        self.start(client, user_id, OAUTH_METHOD).await
    }

    /// `POST /token?grant_type=id_token` with `link_identity: true` (`linkIdentity({provider,
    /// token})`): the ID token's identity is added to the caller's user, who gets a new session
    /// (GoTrue's answer), whose token says `is_anonymous: false` once converted.
    pub async fn link_with_id_token(
        &self,
        client: &Client,
        caller: &Caller,
        provider: &str,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<Session, AccountError> {
        self.require_manual_linking()?;
        self.user(caller).await?;
        let external = self
            .id_token_user(client, provider, id_token, nonce)
            .await?;
        self.link_external(caller.user_id, &external).await?;
        self.start(client, caller.user_id, OAUTH_METHOD).await
    }

    /// `DELETE /user/identities/{identity_id}` (`unlinkIdentity`).
    pub async fn unlink_identity(
        &self,
        caller: &Caller,
        identity_id: &str,
    ) -> Result<(), AccountError> {
        self.require_manual_linking()?;
        let identity_id: Uuid = identity_id
            .parse()
            .map_err(|_| AccountError::IdentityIdNotUuid)?;
        self.user(caller).await?;
        let removed = store::call_json(
            &self.pool,
            "SELECT auth.sluice_unlink_identity($1, $2)",
            &[&caller.user_id, &identity_id],
        )
        .await?
        .unwrap_or_default();
        match removed["error"].as_str() {
            None => Ok(()),
            Some("single_identity_not_deletable") => Err(AccountError::SingleIdentityNotDeletable),
            Some("identity_not_found") => Err(AccountError::IdentityNotFound),
            Some("email_conflict_identity_not_deletable") => {
                Err(AccountError::EmailConflictIdentityNotDeletable)
            }
            Some(_) => Err(AccountError::UserFromTokenNotFound),
        }
    }
}
