//! `GET /auth/v1/.well-known/jwks.json`: the public halves of the signing keys, so that other
//! services (and Supabase's `getClaims()`) can verify the auth API's RS256/ES256 tokens without a
//! secret. Empty (`{"keys": []}`) when tokens are signed with the JWT secret (HS256), which is
//! never published.

use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::response::IntoResponse;
use axum::Json;

use super::AuthState;

pub(super) async fn get(State(state): State<AuthState>) -> impl IntoResponse {
    // GoTrue's caching: clients refetch at most every 10 minutes, so a new key must be in the
    // file (verifying) that long before it starts signing.
    (
        [(CACHE_CONTROL, "public, max-age=600")],
        Json(state.accounts.tokens.jwks.clone()),
    )
}
