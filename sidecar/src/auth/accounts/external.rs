//! Sign-in through an external provider (OAuth / OpenID Connect): the user behind a checked
//! provider account, found or created as GoTrue does (`auth.sluice_oauth_user`): a known identity's
//! user; else the user with the same email when the provider verified it and the account's email is
//! confirmed (the identity is linked to it); else a new user, its email confirmed when the provider
//! verified it.

use uuid::Uuid;

use super::session::Session;
use super::store;
use super::{AccountError, Accounts, Client};
use crate::auth::oauth::ExternalUser;

/// The `amr` method of sessions started through a provider (GoTrue's).
pub const OAUTH_METHOD: &str = "oauth";

impl Accounts {
    /// The user of `external`, created or linked if need be.
    pub async fn external_user_id(&self, external: &ExternalUser) -> Result<Uuid, AccountError> {
        let found = store::call_json(
            &self.pool,
            "SELECT auth.sluice_oauth_user($1, $2, $3, $4, $5, $6)",
            &[
                &external.provider,
                &external.provider_id,
                &external.claims,
                &external.email,
                &external.email_verified,
                &!self.settings.disable_signup,
            ],
        )
        .await?
        .unwrap_or_default();
        match found["error"].as_str() {
            Some("email_exists") => return Err(AccountError::EmailExists),
            Some("signup_disabled") => return Err(AccountError::SignupDisabled),
            _ => {}
        }
        if found["created"].as_bool() == Some(true) {
            tracing::info!(
                "auth: new user through {} ({})",
                external.provider,
                external.provider_id
            );
        }
        found["user_id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .ok_or(AccountError::UserNotFound)
    }

    /// A session for the user of `external` (the implicit flow, `grant_type=id_token`).
    pub async fn external_sign_in(
        &self,
        client: &Client,
        external: &ExternalUser,
    ) -> Result<Session, AccountError> {
        let user_id = self.external_user_id(external).await?;
        self.start(client, user_id, OAUTH_METHOD).await
    }

    /// `POST /token?grant_type=id_token` (supabase-js's `signInWithIdToken`): an ID token of a
    /// configured OpenID Connect provider, verified against its issuer's keys.
    pub async fn sign_in_with_id_token(
        &self,
        client: &Client,
        provider: &str,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<Session, AccountError> {
        let external = self
            .id_token_user(client, provider, id_token, nonce)
            .await?;
        self.external_sign_in(client, &external).await
    }

    /// The provider account of an ID token of a configured OpenID Connect provider, verified
    /// against its issuer's keys (`grant_type=id_token`, to sign in or to link).
    pub(super) async fn id_token_user(
        &self,
        client: &Client,
        provider: &str,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<ExternalUser, AccountError> {
        self.limiter.check("id_token", &client.ip, None)?;
        let provider = self
            .oauth
            .providers
            .get(provider)
            .map_err(|reason| match well_known_issuer(provider) {
                Some(issuer) => AccountError::ProviderDisabled(issuer),
                None => AccountError::UnsupportedProvider(reason),
            })?
            .clone();
        Ok(self
            .oauth
            .verify_id_token(&provider, id_token, nonce.filter(|n| !n.is_empty()))
            .await?)
    }
}

/// The fixed issuers of the ID-token providers GoTrue knows by name; for these, an ID token while
/// the provider is not configured is answered with the issuer, as GoTrue does.
fn well_known_issuer(provider: &str) -> Option<&'static str> {
    match provider.to_ascii_lowercase().as_str() {
        "google" => Some("https://accounts.google.com"),
        "apple" => Some("https://appleid.apple.com"),
        "facebook" => Some("https://www.facebook.com"),
        "kakao" => Some("https://kauth.kakao.com"),
        _ => None,
    }
}
