//! `GET /user` and `PUT /user`: the signed-in user, read and changed with their access token.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::{caller, parse, AuthState, Redirect};
use crate::auth::accounts::otp::normalize_phone;
use crate::auth::accounts::{AccountError, Changes, Client};

pub(super) async fn get(
    State(state): State<AuthState>,
    headers: HeaderMap,
) -> Result<Json<Value>, AccountError> {
    let caller = caller(&headers, &state.verifier)?;
    Ok(Json(state.accounts.user(&caller).await?))
}

#[derive(Deserialize)]
pub(super) struct UpdateBody {
    email: Option<String>,
    password: Option<String>,
    data: Option<Value>,
    phone: Option<String>,
    channel: Option<String>,
    nonce: Option<String>,
}

/// PUT /user; `?redirect_to=` is where the email-change link sends the browser (if allowed).
pub(super) async fn update(
    State(state): State<AuthState>,
    Query(redirect): Query<Redirect>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AccountError> {
    let caller = caller(&headers, &state.verifier)?;
    let body: UpdateBody = parse(&body)?;
    // A new phone number is texted a code (`phone_change`); checked before anything changes.
    let phone = body
        .phone
        .as_deref()
        .filter(|phone| !phone.is_empty())
        .map(normalize_phone)
        .transpose()?;
    if phone.is_some()
        && body
            .channel
            .as_deref()
            .is_some_and(|channel| channel != "sms")
    {
        return Err(AccountError::Validation(
            "Only the sms channel is supported",
        ));
    }
    let data = body.data.filter(|data| !data.is_null());
    if data.as_ref().is_some_and(|data| !data.is_object()) {
        return Err(AccountError::Validation("data must be a JSON object"));
    }
    let changes = Changes {
        email: body.email,
        password: body.password,
        user_metadata: data,
        ..Changes::default()
    };
    let user = state
        .accounts
        .update_self(
            &caller,
            changes,
            redirect.redirect_to.as_deref(),
            body.nonce.as_deref(),
        )
        .await?;
    match phone {
        Some(phone) => Ok(Json(
            state
                .accounts
                .change_phone(&client, &caller, &phone)
                .await?,
        )),
        None => Ok(Json(user)),
    }
}
