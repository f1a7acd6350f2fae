//! `/factors`: MFA with TOTP for the signed-in user (enroll, challenge, verify, unenroll), and the
//! service key's `/admin/users/{id}/factors`, in GoTrue's shapes (see `accounts::mfa`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::admin_users::require_admin;
use super::{caller_with_claims, parse, AuthState};
use crate::auth::accounts::{AccountError, Client};

fn id(text: &str) -> Result<Uuid, AccountError> {
    text.parse().map_err(|_| AccountError::MfaFactorNotFound)
}

#[derive(Deserialize)]
pub(super) struct EnrollBody {
    factor_type: Option<String>,
    friendly_name: Option<String>,
    issuer: Option<String>,
}

pub(super) async fn enroll(
    State(state): State<AuthState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AccountError> {
    let (caller, _) = caller_with_claims(&headers, &state.verifier)?;
    let body: EnrollBody = parse(&body)?;
    if body.factor_type.as_deref().unwrap_or("totp") != "totp" {
        return Err(AccountError::UnsupportedFactorType);
    }
    let enrolled = state
        .accounts
        .enroll(
            &caller,
            body.friendly_name.as_deref(),
            body.issuer.as_deref(),
        )
        .await?;
    Ok(Json(json!({
        "id": enrolled.factor["id"],
        "type": "totp",
        "friendly_name": enrolled.factor["friendly_name"],
        "totp": {
            "qr_code": enrolled.qr_code,
            "secret": enrolled.secret,
            "uri": enrolled.uri,
        },
    })))
}

pub(super) async fn challenge(
    State(state): State<AuthState>,
    Path(factor): Path<String>,
    client: Client,
    headers: HeaderMap,
) -> Result<Json<Value>, AccountError> {
    let (caller, _) = caller_with_claims(&headers, &state.verifier)?;
    Ok(Json(
        state
            .accounts
            .challenge(&caller, &client, id(&factor)?)
            .await?,
    ))
}

#[derive(Deserialize)]
pub(super) struct VerifyBody {
    challenge_id: Option<String>,
    code: Option<String>,
}

pub(super) async fn verify(
    State(state): State<AuthState>,
    Path(factor): Path<String>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AccountError> {
    let (caller, claims) = caller_with_claims(&headers, &state.verifier)?;
    let body: VerifyBody = parse(&body)?;
    let challenge = body
        .challenge_id
        .as_deref()
        .and_then(|id| id.parse().ok())
        .ok_or(AccountError::MfaChallengeNotFound)?;
    let session = state
        .accounts
        .verify_factor(
            &caller,
            &client,
            id(&factor)?,
            challenge,
            body.code.as_deref().unwrap_or_default(),
            &claims["amr"],
        )
        .await?;
    Ok(Json(session.to_json()))
}

pub(super) async fn unenroll(
    State(state): State<AuthState>,
    Path(factor): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, AccountError> {
    let (caller, claims) = caller_with_claims(&headers, &state.verifier)?;
    let aal = claims["aal"].as_str().unwrap_or("aal1");
    Ok(Json(
        state.accounts.unenroll(&caller, aal, id(&factor)?).await?,
    ))
}

pub(super) async fn admin_list(
    State(state): State<AuthState>,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, AccountError> {
    require_admin(&headers, &state)?;
    let user = user.parse().map_err(|_| AccountError::UserNotFound)?;
    // GoTrue answers 404 user_not_found for a user that does not exist, not an empty list.
    state.accounts.admin_get(user).await?;
    Ok(Json(state.accounts.factors(user).await?))
}

pub(super) async fn admin_delete(
    State(state): State<AuthState>,
    Path((user, factor)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, AccountError> {
    require_admin(&headers, &state)?;
    let user = user.parse().map_err(|_| AccountError::UserNotFound)?;
    Ok(Json(
        state.accounts.delete_factor(user, id(&factor)?).await?,
    ))
}
