//! `GET /health`: is this sidecar able to serve, i.e. can it reach its database right now.
//! Load balancers and orchestrators poll it, so it must answer quickly even when the database hangs.

use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::AppState;
use crate::db;
use crate::http::error::{ApiError, ErrorBody};

/// Well under the usual 5 s probe timeouts of load balancers and Kubernetes.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize)]
struct Up<'a> {
    status: &'static str,
    database: &'static str,
    extension_version: &'a str,
}

/// The error shape, plus the two fields a monitor reads without parsing error codes.
#[derive(Serialize)]
struct Down {
    status: &'static str,
    database: &'static str,
    #[serde(flatten)]
    error: ErrorBody,
}

pub(super) async fn health(State(state): State<AppState>) -> Response {
    match db::ping(&state.pool, DATABASE_TIMEOUT).await {
        Ok(()) => Json(Up {
            status: "ok",
            database: "up",
            extension_version: &state.extension_version,
        })
        .into_response(),
        Err(err) => {
            let err = ApiError::from(err);
            err.log();
            let down = Down {
                status: "unavailable",
                database: "down",
                error: err.body(),
            };
            (err.status(), Json(down)).into_response()
        }
    }
}
