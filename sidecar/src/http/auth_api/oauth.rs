//! `GET /authorize` and `GET /callback`: sign-in through an external provider, as GoTrue answers.
//!
//! `/authorize?provider=X&redirect_to=...` checks the provider (unknown: 400 validation_failed
//! "Unsupported provider: Provider X could not be found"; configured but off: "provider is not
//! enabled"), keeps `redirect_to` only if the allow-list does (else the site URL), starts a PKCE
//! flow when the client sent a code challenge, and sends the browser to the provider with a signed
//! `state` and an HttpOnly cookie whose nonce the state carries. `/callback` refuses a state that
//! is not signed, expired or not the cookie's (to the site URL with `error=invalid_request`,
//! `error_code=bad_oauth_state`), trades the code, finds or creates the user, and sends the browser
//! to `redirect_to`: with `?code=` (PKCE) or with the session in the fragment (implicit).
//! `/authorize?link=<ticket>` starts a manual-linking flow (see `link`): the state then names the
//! user, and `/callback` adds the identity to that user instead of finding one.

use axum::extract::{Query, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AuthState;
use crate::auth::accounts::external::OAUTH_METHOD;
use crate::auth::accounts::flow_state::Pkce;
use crate::auth::accounts::tokens::random_token;
use crate::auth::accounts::{percent_encode, AccountError, Client};
use crate::auth::oauth::{nonce_hash, FlowState, FLOW_VALIDITY};

const COOKIE_NAME: &str = "sluice-oauth-nonce";

#[derive(Deserialize)]
pub(super) struct AuthorizeQuery {
    provider: Option<String>,
    redirect_to: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    scopes: Option<String>,
    /// A manual-linking ticket from `GET /user/identities/authorize` (see `link`).
    link: Option<String>,
}

fn cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={value}; Path=/auth/v1/callback; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

pub(super) async fn authorize(
    State(state): State<AuthState>,
    Query(query): Query<AuthorizeQuery>,
) -> Result<Response, AccountError> {
    let accounts = &state.accounts;
    // A linking flow: everything but the scopes comes from the signed ticket.
    let ticket = match query.link.as_deref().filter(|t| !t.is_empty()) {
        Some(ticket) => {
            accounts.require_manual_linking()?;
            Some(accounts.oauth.open_ticket(ticket)?)
        }
        None => None,
    };
    let name = match &ticket {
        Some(ticket) => ticket.p.clone(),
        None => query.provider.unwrap_or_default(),
    };
    let provider = accounts
        .oauth
        .providers
        .get(&name)
        .map_err(AccountError::UnsupportedProvider)?
        .clone();
    let (redirect_to, flow, link) = match ticket {
        Some(ticket) => (ticket.r, ticket.f, Some(ticket.u)),
        None => {
            let redirect_to = accounts
                .settings
                .redirect_target(query.redirect_to.as_deref());
            let flow = match Pkce::from_request(query.code_challenge, query.code_challenge_method)?
            {
                Some(pkce) => Some(
                    accounts
                        .create_flow_state(&pkce, &provider.name, OAUTH_METHOD, None, None)
                        .await?
                        .to_string(),
                ),
                None => None,
            };
            (redirect_to, flow, None)
        }
    };
    let nonce = random_token()?;
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + FLOW_VALIDITY.as_secs();
    let flow = FlowState {
        p: provider.name.clone(),
        r: redirect_to,
        f: flow,
        n: nonce_hash(&nonce),
        e: expires,
        l: link,
    };
    let signed = accounts.oauth.sign_state(&provider, &flow);
    let url = accounts
        .oauth
        .authorization_url(&provider, &signed, &flow.n, query.scopes.as_deref())
        .await?;
    let mut response = redirect(&url);
    let secure = accounts.settings.external_url.starts_with("https:");
    response
        .headers_mut()
        .insert(SET_COOKIE, cookie(&nonce, FLOW_VALIDITY.as_secs(), secure));
    Ok(response)
}

#[derive(Deserialize)]
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `url` with GoTrue's error parameters in its query.
fn with_error(url: &str, error: &str, code: &str, description: &str) -> String {
    let (base, fragment) = url.split_once('#').map_or((url, ""), |(b, f)| (b, f));
    let sep = if base.contains('?') { '&' } else { '?' };
    let fragment = if fragment.is_empty() {
        String::new()
    } else {
        format!("#{fragment}")
    };
    format!(
        "{base}{sep}error={}&error_code={}&error_description={}{fragment}",
        percent_encode(error),
        percent_encode(code),
        percent_encode(description)
    )
}

fn nonce_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_owned())
}

pub(super) async fn callback(
    State(state): State<AuthState>,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
    client: Client,
) -> Response {
    let accounts = &state.accounts;
    let secure = accounts.settings.external_url.starts_with("https:");
    let site = accounts.settings.site_url.clone();
    let mut response = match callback_target(&state, query, &headers, &client).await {
        Ok(location) => redirect(&location),
        Err((target, code, description)) => {
            let error = if code == "unexpected_failure" {
                "server_error"
            } else {
                "invalid_request"
            };
            redirect(&with_error(
                target.as_deref().unwrap_or(&site),
                error,
                code,
                &description,
            ))
        }
    };
    // The nonce is used up, whatever the outcome.
    response
        .headers_mut()
        .insert(SET_COOKIE, cookie("", 0, secure));
    response
}

type CallbackError = (Option<String>, &'static str, String);

async fn callback_target(
    state: &AuthState,
    query: CallbackQuery,
    headers: &HeaderMap,
    client: &Client,
) -> Result<String, CallbackError> {
    let accounts = &state.accounts;
    let Some(signed) = query.state.filter(|s| !s.is_empty()) else {
        return Err((
            None,
            "bad_oauth_callback",
            "OAuth state parameter missing".into(),
        ));
    };
    let cookie = nonce_cookie(headers);
    let flow = accounts
        .oauth
        .open_state(&signed, cookie.as_deref())
        .map_err(|err| (None, "bad_oauth_state", err.to_string()))?;
    let target = Some(flow.r.clone());
    if let Some(error) = query.error {
        let description = query.error_description.unwrap_or(error);
        return Err((target, "bad_oauth_callback", description));
    }
    let Some(code) = query.code.filter(|c| !c.is_empty()) else {
        return Err((
            target,
            "bad_oauth_callback",
            "OAuth code parameter missing".into(),
        ));
    };
    let fail = |err: AccountError| {
        let (status, code) = super::error::status_and_code(&err);
        if status.is_server_error() {
            tracing::error!("auth: OAuth callback: {}", crate::error::describe(&err));
            (
                target.clone(),
                "unexpected_failure",
                "Unexpected failure".to_owned(),
            )
        } else {
            (target.clone(), code, err.to_string())
        }
    };
    let provider = accounts
        .oauth
        .providers
        .get(&flow.p)
        .map_err(|e| fail(AccountError::UnsupportedProvider(e)))?
        .clone();
    let external = accounts
        .oauth
        .exchange(&provider, &code, &flow.n)
        .await
        .map_err(|err| fail(err.into()))?;
    // Manual linking: the identity joins the ticket's user (never found by email), who then
    // signs in as at the end of any flow.
    let linked_to = match flow.l.as_deref() {
        Some(user) => {
            accounts.require_manual_linking().map_err(fail)?;
            let user_id: uuid::Uuid = user.parse().map_err(|_| fail(AccountError::UserNotFound))?;
            accounts
                .link_external(user_id, &external)
                .await
                .map_err(fail)?;
            Some(user_id)
        }
        None => None,
    };
    if let Some(flow_id) = flow.f.as_deref().and_then(|id| id.parse().ok()) {
        let user_id = match linked_to {
            Some(user_id) => user_id,
            None => accounts.external_user_id(&external).await.map_err(fail)?,
        };
        let code = accounts
            .issue_auth_code(flow_id, user_id)
            .await
            .map_err(fail)?;
        let sep = if flow.r.contains('?') { '&' } else { '?' };
        return Ok(format!("{}{sep}code={}", flow.r, percent_encode(&code)));
    }
    let session = match linked_to {
        Some(user_id) => accounts.start_oauth_session(client, user_id).await,
        None => accounts.external_sign_in(client, &external).await,
    }
    .map_err(fail)?;
    let mut fragment = format!(
        "access_token={}&expires_at={}&expires_in={}",
        percent_encode(&session.access.token),
        session.access.expires_at,
        session.access.expires_in
    );
    if let Some(token) = &external.provider_token {
        fragment.push_str(&format!("&provider_token={}", percent_encode(token)));
    }
    if let Some(token) = &external.provider_refresh_token {
        fragment.push_str(&format!(
            "&provider_refresh_token={}",
            percent_encode(token)
        ));
    }
    fragment.push_str(&format!(
        "&refresh_token={}&token_type=bearer",
        percent_encode(&session.refresh_token)
    ));
    let base = flow.r.split('#').next().unwrap_or_default();
    Ok(format!("{base}#{fragment}"))
}
