//! `GET /realtime/v1/websocket`: the WebSocket upgrade. The socket's identity comes from its
//! `apikey` query parameter (realtime-js sends the project key there); channels may carry their
//! own `access_token`.

use std::collections::HashMap;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Query, State, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::auth::Identity;
use crate::error::ApiError;
use crate::realtime::protocol::Vsn;
use crate::realtime::session;

/// The initial read buffer of a socket.
const SOCKET_BUFFER: usize = 4 * 1024;

pub async fn websocket(
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
        Some(key) => state.verifier.verify(key),
        None => state.verifier.anonymous(),
    }
    .map(Identity::from)?;
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
