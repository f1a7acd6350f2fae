//! `GET /user/identities/authorize` and `DELETE /user/identities/{identity_id}`: manual identity
//! linking (`linkIdentity`, `unlinkIdentity`), for a signed-in caller, while
//! `SLUICE_AUTH_MANUAL_LINKING_ENABLED` is on (else GoTrue's 404 `manual_linking_disabled`).
//!
//! `authorize` checks the provider and `redirect_to` as `/authorize` does, starts the PKCE flow
//! (recording the user) when the client sent a code challenge, and answers with the URL the
//! browser opens: this server's `/authorize` with a signed ticket naming the user (10 minutes),
//! as JSON `{url}` with `skip_http_redirect=true` (what supabase-js asks for) or as a 302. The
//! browser gets its cookie nonce at `/authorize`, and `/callback` then adds the identity to the
//! ticket's user.

use axum::extract::{Path, Query, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{caller, AuthState};
use crate::auth::accounts::external::OAUTH_METHOD;
use crate::auth::accounts::flow_state::Pkce;
use crate::auth::accounts::{percent_encode, AccountError};
use crate::auth::oauth::{LinkTicket, FLOW_VALIDITY};

#[derive(Deserialize)]
pub(super) struct LinkQuery {
    provider: Option<String>,
    redirect_to: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    scopes: Option<String>,
    skip_http_redirect: Option<String>,
}

pub(super) async fn authorize(
    State(state): State<AuthState>,
    Query(query): Query<LinkQuery>,
    headers: HeaderMap,
) -> Result<Response, AccountError> {
    let accounts = &state.accounts;
    let caller = caller(&headers, &state.verifier)?;
    accounts.require_manual_linking()?;
    accounts.user(&caller).await?;
    let provider = accounts
        .oauth
        .providers
        .get(query.provider.as_deref().unwrap_or_default())
        .map_err(AccountError::UnsupportedProvider)?
        .clone();
    let redirect_to = accounts
        .settings
        .redirect_target(query.redirect_to.as_deref());
    let flow = match Pkce::from_request(query.code_challenge, query.code_challenge_method)? {
        Some(pkce) => Some(
            accounts
                .create_flow_state(
                    &pkce,
                    &provider.name,
                    OAUTH_METHOD,
                    Some(caller.user_id),
                    None,
                )
                .await?,
        ),
        None => None,
    };
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + FLOW_VALIDITY.as_secs();
    let ticket = LinkTicket {
        p: provider.name.clone(),
        r: redirect_to,
        f: flow.map(|id| id.to_string()),
        u: caller.user_id.to_string(),
        e: expires,
    };
    let mut url = format!(
        "{}/auth/v1/authorize?provider={}&link={}",
        accounts.settings.external_url.trim_end_matches('/'),
        percent_encode(&provider.name),
        percent_encode(&accounts.oauth.sign_ticket(&provider, &ticket)),
    );
    if let Some(scopes) = query.scopes.filter(|s| !s.is_empty()) {
        url.push_str(&format!("&scopes={}", percent_encode(&scopes)));
    }
    if query.skip_http_redirect.as_deref() == Some("true") {
        return Ok(Json(json!({ "url": url })).into_response());
    }
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(&url) {
        response.headers_mut().insert(LOCATION, value);
    }
    Ok(response)
}

pub(super) async fn unlink(
    State(state): State<AuthState>,
    Path(identity_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, AccountError> {
    let caller = caller(&headers, &state.verifier)?;
    state
        .accounts
        .unlink_identity(&caller, &identity_id)
        .await?;
    Ok(Json(json!({})))
}
