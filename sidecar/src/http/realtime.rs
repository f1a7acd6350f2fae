//! `GET /realtime/v1/websocket`: the WebSocket upgrade. The socket's identity comes from its
//! `apikey` query parameter (realtime-js sends the project key there); channels may carry their
//! own `access_token`.
//!
//! `POST /realtime/v1/api/broadcast[/{topic}/events/{event}]`: broadcasts over HTTP, answered
//! 202 as Supabase does, once the messages are on their way to every sidecar.

use std::collections::HashMap;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, Query, State, WebSocketUpgrade};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::auth::jwt::identity::token;
use crate::http::error::ApiError;
use crate::realtime::api::{self, BroadcastApiError, Outgoing};
use crate::realtime::cluster::{PublishError, MAX_NOTIFY};
use crate::realtime::protocol::Vsn;
use crate::realtime::session;
use crate::rest::RestError;

/// The initial read buffer of a socket.
const SOCKET_BUFFER: usize = 4 * 1024;

pub(super) async fn websocket(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let Some(vsn) = Vsn::parse(params.get("vsn").map(String::as_str)) else {
        return Err(ApiError::RealtimeVersion(
            params.get("vsn").cloned().unwrap_or_default(),
        ));
    };
    let identity = match params.get("apikey").filter(|key| !key.is_empty()) {
        Some(key) => state.verifier.identify(key),
        None => state.verifier.anonymous_identity(),
    }?;
    let upgrade = upgrade.map_err(|rejection| ApiError::NotWebSocket(rejection.body_text()))?;
    let realtime = state.realtime.clone();
    let verifier = state.verifier.clone();
    Ok(upgrade
        // tungstenite's defaults (128 KiB each way) would cost a quarter of a megabyte per idle
        // socket; realtime frames are small, and the buffers grow when one is not.
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(0)
        .on_upgrade(move |socket| session::run(socket, realtime, verifier, vsn, identity))
        .into_response())
}

/// `POST /realtime/v1/api/broadcast` with `{"messages": [{topic, event, payload, private}]}`.
pub(super) async fn broadcast(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    authorize(&state, &headers)?;
    let body = read_body(&state, body).await?;
    publish(&state, &api::parse_batch(&body)?).await
}

/// `POST /realtime/v1/api/broadcast/{topic}/events/{event}[?private=true]` with the payload as
/// the body: JSON, or bytes with `Content-Type: application/octet-stream` (`channel.httpSend`).
pub(super) async fn broadcast_one(
    State(state): State<AppState>,
    Path((topic, event)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    authorize(&state, &headers)?;
    let body = read_body(&state, body).await?;
    let private = params.get("private").is_some_and(|p| p == "true");
    let binary = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/octet-stream"));
    let message = api::parse_single(&topic, &event, private, binary, &body)?;
    publish(&state, std::slice::from_ref(&message)).await
}

/// Any token the REST API accepts (an API key will do), but a token: as in Supabase, the
/// broadcast API is not open to requests without one.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = token(headers)?.ok_or(BroadcastApiError::TokenRequired)?;
    state.verifier.identify(token)?;
    Ok(())
}

async fn read_body(state: &AppState, body: Body) -> Result<Bytes, ApiError> {
    let limit = state.writes.max_body_bytes;
    // As for REST writes: failing to read the body (in practice: the limit) is "too large".
    to_bytes(body, limit)
        .await
        .map_err(|_| RestError::BodyTooLarge { limit }.into())
}

async fn publish(state: &AppState, batch: &[Outgoing]) -> Result<StatusCode, ApiError> {
    match state.realtime.cluster.publish(batch).await {
        Ok(()) => Ok(StatusCode::ACCEPTED),
        Err(PublishError::TooLarge { index, size }) => Err(BroadcastApiError::TooLarge {
            index,
            size,
            max: MAX_NOTIFY,
        }
        .into()),
        Err(PublishError::Database(err)) => Err(err.into()),
    }
}
