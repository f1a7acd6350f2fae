//! `POST /resend` (`resend`) and `GET /reauthenticate` (`reauthenticate`).

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{caller, parse, AuthState, Redirect};
use crate::auth::accounts::flows::ResendKind;
use crate::auth::accounts::{AccountError, Client};

#[derive(Deserialize)]
pub(super) struct ResendBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    email: Option<String>,
    phone: Option<String>,
}

/// `{}`, or `{"message_id"}` when a text was sent.
fn sent(message_id: Option<String>) -> Json<Value> {
    Json(match message_id {
        Some(id) => json!({"message_id": id}),
        None => json!({}),
    })
}

/// POST /resend: `{type, email | phone}`; `?redirect_to=` is where a mailed link sends the
/// browser (supabase-js's `emailRedirectTo`).
pub(super) async fn resend(
    State(state): State<AuthState>,
    Query(redirect): Query<Redirect>,
    client: Client,
    body: Bytes,
) -> Result<Json<Value>, AccountError> {
    let body: ResendBody = parse(&body)?;
    let kind = ResendKind::parse(body.kind.as_deref().unwrap_or_default())?;
    let message_id = state
        .accounts
        .resend(
            &client,
            kind,
            body.email.as_deref(),
            body.phone.as_deref(),
            redirect.redirect_to.as_deref(),
        )
        .await?;
    Ok(sent(message_id))
}

/// GET /reauthenticate (a signed-in caller): sends them a nonce for `PUT /user {password, nonce}`.
pub(super) async fn reauthenticate(
    State(state): State<AuthState>,
    client: Client,
    headers: HeaderMap,
) -> Result<Json<Value>, AccountError> {
    let caller = caller(&headers, &state.verifier)?;
    let message_id = state.accounts.reauthenticate(&client, &caller).await?;
    Ok(sent(message_id))
}
