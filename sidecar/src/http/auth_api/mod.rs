//! `/auth/v1/`: the auth API in GoTrue's shapes, so that `@supabase/auth-js` (inside supabase-js)
//! works against it unchanged. Handlers parse and shape; `crate::auth::accounts` does the work, and
//! `error` turns its `AccountError`s into GoTrue's error responses.

mod admin_users;
pub(crate) mod error;
mod factors;
mod flows;
mod jwks;
mod link;
mod oauth;
mod otp;
mod session;
mod user;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::routing::{any, delete, get, post};
use axum::Router;
use serde::de::DeserializeOwned;

use crate::auth::accounts::{AccountError, Accounts, Caller, Client};
use crate::auth::{Identity, Verifier};

/// `?redirect_to=`: where a mailed link sends the browser (supabase-js's `emailRedirectTo` and
/// `redirectTo`), if the settings allow it.
#[derive(serde::Deserialize)]
pub struct Redirect {
    redirect_to: Option<String>,
}

/// What the auth handlers reach: the accounts service and the verifier of access tokens.
#[derive(Clone)]
pub struct AuthState {
    pub accounts: Arc<Accounts>,
    pub verifier: Arc<Verifier>,
}

pub fn routes(state: AuthState) -> Router {
    Router::new()
        .route("/auth/v1/signup", post(session::signup))
        .route("/auth/v1/token", post(session::token))
        .route("/auth/v1/logout", post(session::logout))
        .route(
            "/auth/v1/verify",
            get(session::verify_link).post(session::verify),
        )
        .route("/auth/v1/recover", post(session::recover))
        .route("/auth/v1/authorize", get(oauth::authorize))
        .route("/auth/v1/callback", get(oauth::callback))
        .route("/auth/v1/otp", post(otp::otp))
        .route("/auth/v1/invite", post(otp::invite))
        .route("/auth/v1/resend", post(flows::resend))
        .route("/auth/v1/reauthenticate", get(flows::reauthenticate))
        .route("/auth/v1/admin/generate_link", post(otp::generate_link))
        .route("/auth/v1/settings", get(session::settings))
        .route("/auth/v1/sso", any(session::sso_disabled))
        .route("/auth/v1/sso/{*rest}", any(session::sso_disabled))
        .route("/auth/v1/.well-known/jwks.json", get(jwks::get))
        .route("/auth/v1/factors", post(factors::enroll))
        .route("/auth/v1/factors/{id}", delete(factors::unenroll))
        .route("/auth/v1/factors/{id}/challenge", post(factors::challenge))
        .route("/auth/v1/factors/{id}/verify", post(factors::verify))
        .route(
            "/auth/v1/admin/users/{id}/factors",
            get(factors::admin_list),
        )
        .route(
            "/auth/v1/admin/users/{id}/factors/{factor}",
            delete(factors::admin_delete),
        )
        .route("/auth/v1/user", get(user::get).put(user::update))
        .route("/auth/v1/user/identities/authorize", get(link::authorize))
        .route("/auth/v1/user/identities/{id}", delete(link::unlink))
        .route(
            "/auth/v1/admin/users",
            get(admin_users::list).post(admin_users::create),
        )
        .route(
            "/auth/v1/admin/users/{id}",
            get(admin_users::get)
                .put(admin_users::update)
                .delete(admin_users::delete),
        )
        .with_state(state)
}

/// The client's address and user agent. The address is the last entry of the configured client-IP
/// header when there is one (behind a proxy), else the TCP peer (`unknown` when the server was not
/// started with connect info, as in router tests).
impl FromRequestParts<AuthState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AuthState,
    ) -> Result<Self, Self::Rejection> {
        let forwarded = state
            .accounts
            .settings
            .client_ip_header
            .as_deref()
            .and_then(|name| last_header_entry(&parts.headers, name));
        let ip = forwarded.unwrap_or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_owned(), |info| info.0.ip().to_string())
        });
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Ok(Client { ip, user_agent })
    }
}

/// The last comma-separated entry of the last `name` header: the one the nearest proxy appended.
fn last_header_entry(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
    let entry = value.rsplit(',').next()?.trim();
    (!entry.is_empty()).then(|| entry.to_owned())
}

/// The signed-in user behind `Authorization: Bearer <access token>`.
fn caller(headers: &HeaderMap, verifier: &Verifier) -> Result<Caller, AccountError> {
    caller_with_claims(headers, verifier).map(|(caller, _)| caller)
}

/// `caller`, and the claims of their token (`aal`, `amr`...).
fn caller_with_claims(
    headers: &HeaderMap,
    verifier: &Verifier,
) -> Result<(Caller, serde_json::Value), AccountError> {
    if !headers.contains_key(AUTHORIZATION) {
        return Err(AccountError::NoAuthorization);
    }
    let identity = Identity::from_headers(headers, verifier).map_err(AccountError::BadJwt)?;
    let claims = identity.claims.as_object().cloned().unwrap_or_default();
    let caller = Caller::from_claims(&claims).ok_or(AccountError::NoUserInToken)?;
    Ok((caller, serde_json::Value::Object(claims)))
}

/// The request body as JSON; an empty body reads as `{}`.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, AccountError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|err| AccountError::BadJson(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_proxys_entry_is_the_client() {
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", "6.6.6.6, 10.0.0.1".parse().unwrap());
        headers.append("x-forwarded-for", "203.0.113.7".parse().unwrap());
        assert_eq!(
            last_header_entry(&headers, "x-forwarded-for").as_deref(),
            Some("203.0.113.7")
        );
        headers.insert("x-real-ip", " ".parse().unwrap());
        assert_eq!(last_header_entry(&headers, "x-real-ip"), None);
        assert_eq!(last_header_entry(&headers, "absent"), None);
    }
}
