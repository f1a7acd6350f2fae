//! `GET /user` and `PUT /user`: the signed-in user, read and changed with their access token.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::{caller, parse, AuthState, Redirect};
use crate::auth::accounts::{AccountError, Changes};

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
}

/// PUT /user; `?redirect_to=` is where the email-change link sends the browser (if allowed).
pub(super) async fn update(
    State(state): State<AuthState>,
    Query(redirect): Query<Redirect>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AccountError> {
    let caller = caller(&headers, &state.verifier)?;
    let body: UpdateBody = parse(&body)?;
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
        .update_self(&caller, changes, redirect.redirect_to.as_deref())
        .await?;
    Ok(Json(user))
}
