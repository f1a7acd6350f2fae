//! Sign-up, sign-in (`/token`), logout, recovery, verification and the public settings.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::status_and_code;
use super::{caller, parse, AuthState, Redirect};
use crate::auth::accounts::flow_state::Pkce;
use crate::auth::accounts::otp::{LinkOutcome, VerifyRequest};
use crate::auth::accounts::{percent_encode, AccountError, Client, Session, SignedUp};

#[derive(Deserialize)]
pub(super) struct SignupBody {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    data: Option<Value>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

pub(super) async fn signup(
    State(state): State<AuthState>,
    Query(redirect): Query<Redirect>,
    client: Client,
    body: Bytes,
) -> Result<Json<Value>, AccountError> {
    let body: SignupBody = parse(&body)?;
    let data = body.data.filter(|data| !data.is_null());
    if data.as_ref().is_some_and(|data| !data.is_object()) {
        return Err(AccountError::Validation("data must be a JSON object"));
    }
    let email = body.email.filter(|email| !email.is_empty());
    let phone = body.phone.filter(|phone| !phone.is_empty());
    let pkce = Pkce::from_request(body.code_challenge, body.code_challenge_method)?;
    let email = match (email, phone) {
        (Some(email), _) => email,
        (None, Some(phone)) => {
            let password = body.password.unwrap_or_default();
            return match state
                .accounts
                .sign_up_phone(&client, &phone, &password, data)
                .await?
            {
                SignedUp::Session(session) => Ok(Json(session.to_json())),
                SignedUp::AwaitingConfirmation(user) => Ok(Json(user)),
            };
        }
        // Neither: `signInAnonymously()`.
        (None, None) if body.password.is_none() => {
            let session = state.accounts.sign_in_anonymously(&client, data).await?;
            return Ok(Json(session.to_json()));
        }
        (None, None) => return Err(AccountError::Validation("Signup requires a valid email")),
    };
    let password = body.password.unwrap_or_default();
    match state
        .accounts
        .signup(
            &client,
            &email,
            &password,
            data,
            redirect.redirect_to.as_deref(),
            pkce,
        )
        .await?
    {
        SignedUp::Session(session) => Ok(Json(session.to_json())),
        SignedUp::AwaitingConfirmation(user) => Ok(Json(user)),
    }
}

#[derive(Deserialize)]
pub(super) struct TokenQuery {
    grant_type: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct TokenBody {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    auth_code: Option<String>,
    code_verifier: Option<String>,
    provider: Option<String>,
    id_token: Option<String>,
    nonce: Option<String>,
    /// `linkIdentity({provider, token})`: add the ID token's identity to the caller's user.
    #[serde(default)]
    link_identity: bool,
}

pub(super) async fn token(
    State(state): State<AuthState>,
    Query(query): Query<TokenQuery>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AccountError> {
    let body: TokenBody = parse(&body)?;
    let session = match query.grant_type.as_deref() {
        Some("password") => {
            let password = body.password.unwrap_or_default();
            match (body.email, body.phone) {
                (None, Some(phone)) => {
                    state
                        .accounts
                        .sign_in_phone(&client, &phone, &password)
                        .await?
                }
                (email, _) => {
                    let email = email.unwrap_or_default();
                    state.accounts.sign_in(&client, &email, &password).await?
                }
            }
        }
        Some("refresh_token") => {
            let token = body.refresh_token.unwrap_or_default();
            state.accounts.refresh(&token).await?
        }
        Some("web3") => return Err(AccountError::Web3Disabled),
        Some("pkce") => {
            let code = body.auth_code.unwrap_or_default();
            let verifier = body.code_verifier.unwrap_or_default();
            state
                .accounts
                .exchange_auth_code(&client, &code, &verifier)
                .await?
        }
        Some("id_token") if body.link_identity => {
            let caller = caller(&headers, &state.verifier)?;
            let provider = body.provider.unwrap_or_default();
            let token = body.id_token.unwrap_or_default();
            state
                .accounts
                .link_with_id_token(&client, &caller, &provider, &token, body.nonce.as_deref())
                .await?
        }
        Some("id_token") => {
            let provider = body.provider.unwrap_or_default();
            let token = body.id_token.unwrap_or_default();
            state
                .accounts
                .sign_in_with_id_token(&client, &provider, &token, body.nonce.as_deref())
                .await?
        }
        _ => return Err(AccountError::Validation("unsupported_grant_type")),
    };
    Ok(Json(session.to_json()))
}

#[derive(Deserialize)]
pub(super) struct LogoutQuery {
    scope: Option<String>,
}

pub(super) async fn logout(
    State(state): State<AuthState>,
    Query(query): Query<LogoutQuery>,
    headers: HeaderMap,
) -> Result<StatusCode, AccountError> {
    let scope = match query.scope.as_deref() {
        None | Some("global") => "global",
        Some("local") => "local",
        Some("others") => "others",
        Some(_) => {
            return Err(AccountError::Validation(
                "Unsupported logout scope: use global, local or others",
            ))
        }
    };
    let caller = caller(&headers, &state.verifier)?;
    state.accounts.logout(&caller, scope).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub(super) struct RecoverBody {
    email: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

pub(super) async fn recover(
    State(state): State<AuthState>,
    Query(redirect): Query<Redirect>,
    client: Client,
    body: Bytes,
) -> Result<Json<Value>, AccountError> {
    let body: RecoverBody = parse(&body)?;
    let email = body.email.ok_or(AccountError::Validation(
        "Password recovery requires an email",
    ))?;
    let pkce = Pkce::from_request(body.code_challenge, body.code_challenge_method)?;
    state
        .accounts
        .recover(&client, &email, redirect.redirect_to.as_deref(), pkce)
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub(super) struct VerifyBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    token_hash: Option<String>,
    token: Option<String>,
    email: Option<String>,
    phone: Option<String>,
}

/// POST /verify (`verifyOtp`): `{type, token_hash}`, `{type, email, token}` or
/// `{type: "sms", phone, token}`; answers a session.
pub(super) async fn verify(
    State(state): State<AuthState>,
    client: Client,
    body: Bytes,
) -> Result<Json<Value>, AccountError> {
    let body: VerifyBody = parse(&body)?;
    if body.token_hash.is_none() && body.token.is_none() {
        return Err(AccountError::Validation(
            "Verify requires a token or a token hash",
        ));
    }
    let request = VerifyRequest {
        kind: body.kind.unwrap_or_default(),
        email: body.email,
        phone: body.phone,
        token: body.token,
        token_hash: body.token_hash,
    };
    let session = state.accounts.verify_otp(&client, request).await?;
    Ok(Json(session.to_json()))
}

#[derive(Deserialize)]
pub(super) struct VerifyLink {
    token: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    redirect_to: Option<String>,
}

/// GET /verify: the link in the mail. Redirects (303) to `redirect_to` (else the site URL) with
/// the session, or the error, in the fragment, as GoTrue does for the implicit flow.
pub(super) async fn verify_link(
    State(state): State<AuthState>,
    Query(link): Query<VerifyLink>,
    client: Client,
) -> Response {
    let target = state
        .accounts
        .settings
        .redirect_target(link.redirect_to.as_deref());
    let kind = link.kind.unwrap_or_default();
    let outcome = match link.token {
        Some(token) => state.accounts.verify_link(&client, &kind, &token).await,
        None => Err(AccountError::OtpExpired),
    };
    let (target, suffix) = match outcome {
        // PKCE: the code in the query, for `exchangeCodeForSession`.
        Ok(LinkOutcome::AuthCode(code)) => {
            let base = target.split('#').next().unwrap_or_default().to_owned();
            let separator = if base.contains('?') { '&' } else { '?' };
            (
                format!("{base}{separator}code={}", percent_encode(&code)),
                String::new(),
            )
        }
        Ok(LinkOutcome::Session(session)) => (target, session_fragment(&session, &kind)),
        Err(err) => {
            let code = match err {
                AccountError::OtpExpired | AccountError::OtpInvalid => status_and_code(&err).1,
                AccountError::Validation(_) => "validation_failed",
                _ => "unexpected_failure",
            };
            let fragment = format!(
                "error=access_denied&error_code={code}&error_description={}",
                percent_encode(&err.to_string())
            );
            (target, fragment)
        }
    };
    let location = if suffix.is_empty() {
        target
    } else {
        format!("{}#{suffix}", target.split('#').next().unwrap_or_default())
    };
    match HeaderValue::from_str(&location) {
        Ok(location) => (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response(),
        Err(_) => AccountError::Validation("redirect_to is not a valid URL").into_response(),
    }
}

fn session_fragment(session: &Session, kind: &str) -> String {
    format!(
        "access_token={}&expires_at={}&expires_in={}&refresh_token={}&token_type=bearer&type={}",
        session.access.token,
        session.access.expires_at,
        session.access.expires_in,
        session.refresh_token,
        percent_encode(kind)
    )
}

/// `/sso` and everything under it (`signInWithSSO`, SAML's ACS and metadata): Sluice has no SAML
/// single sign-on, so every call gets GoTrue's answer for SAML turned off (404).
pub(super) async fn sso_disabled() -> AccountError {
    AccountError::SamlDisabled
}

/// GET /settings: what the client may use.
pub(super) async fn settings(State(state): State<AuthState>) -> Json<Value> {
    let settings = &state.accounts.settings;
    let mut external = json!({
        "anonymous_users": settings.anonymous_users,
        "email": true,
        "phone": true,
    });
    // The configured OAuth / OpenID Connect providers, each as enabled or not.
    for (name, provider) in &state.accounts.oauth.providers.by_name {
        external[name.as_str()] = json!(provider.is_some());
    }
    Json(json!({
        "external": external,
        "disable_signup": settings.disable_signup,
        "mailer_autoconfirm": settings.autoconfirm,
        "phone_autoconfirm": false,
        "sms_provider": state.accounts.sms.provider_name(),
        "saml_enabled": false,
    }))
}
