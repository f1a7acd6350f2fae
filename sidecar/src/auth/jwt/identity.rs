//! Who a request is, from its headers, the way Supabase clients send it: `Authorization: Bearer
//! <jwt>` and/or `apikey: <jwt>`. supabase-js sends both (the API key in `apikey`, and the user's
//! session token, or the API key again, in `Authorization`); the `Authorization` token wins, and an
//! `apikey` alone is used as the token. No token at all is the `anon` role.
//!
//! Handlers take an `Identity` argument; the extractor below verifies the token with the
//! `Verifier` in the application state and rejects the request with a 401 when it fails.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde_json::Value;

use super::error::TokenError;
use super::verify::{Verified, Verifier, ANON_ROLE};
use crate::http::error::ApiError;

/// The header Supabase clients put their API key in.
pub(crate) const APIKEY: &str = "apikey";

/// The role a request runs as and the claims Postgres sees (`request.jwt.claims`, `auth.jwt()`).
/// Cloned per request (from the verifier's cache of tokens), so the claims are shared, not copied.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub role: String,
    /// A JSON object that always has `role`; `{"role": "anon"}` for a request without a token.
    pub claims: Arc<Value>,
    /// `claims` as JSON text, written once: what `request.jwt.claims` is set to.
    pub claims_text: Arc<str>,
}

impl Identity {
    pub fn new(role: String, claims: Value) -> Identity {
        let claims_text = Arc::from(claims.to_string());
        Identity {
            role,
            claims: Arc::new(claims),
            claims_text,
        }
    }

    /// Verifies the request's token, if it has one.
    pub fn from_headers(headers: &HeaderMap, verifier: &Verifier) -> Result<Identity, TokenError> {
        match token(headers)? {
            Some(token) => verifier.identify(token),
            None => verifier.anonymous_identity(),
        }
    }

    /// Whether the request runs as `anon`. PostgREST answers a permission error with 401 for anon
    /// (who may log in and retry) and 403 for everyone else.
    pub fn is_anonymous(&self) -> bool {
        self.role == ANON_ROLE
    }
}

impl From<Verified> for Identity {
    fn from(verified: Verified) -> Self {
        Identity::new(verified.role, Value::Object(verified.claims))
    }
}

#[cfg(test)]
impl From<&Identity> for Verified {
    fn from(identity: &Identity) -> Self {
        Verified {
            role: identity.role.clone(),
            claims: identity.claims.as_object().cloned().unwrap_or_default(),
        }
    }
}

/// The request's token: the `Authorization` bearer token, else the `apikey` header, else none.
/// An `Authorization` header that is present but not `Bearer` is refused rather than ignored, so
/// that a client that meant to authenticate is not silently served as `anon`.
pub(crate) fn token(headers: &HeaderMap) -> Result<Option<&str>, TokenError> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let value = value.to_str().map_err(|_| TokenError::NotBearer)?.trim();
        // RFC 9110 §11.1: the scheme is case-insensitive; the token follows one or more spaces.
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(TokenError::NotBearer);
        }
        return Ok(Some(token.trim()));
    }
    match headers.get(APIKEY) {
        Some(value) => {
            let value = value.to_str().map_err(|_| TokenError::Undecodable)?.trim();
            Ok((!value.is_empty()).then_some(value))
        }
        None => Ok(None),
    }
}

/// `identity: Identity` in a handler's arguments. Any state works that can hand out the verifier
/// (`AppState` does, through `FromRef`).
impl<S> FromRequestParts<S> for Identity
where
    S: Send + Sync,
    Arc<Verifier>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Arc::<Verifier>::from_ref(state);
        Ok(Identity::from_headers(&parts.headers, &verifier)?)
    }
}

#[cfg(test)]
mod tests {
    use axum::body::{to_bytes, Body};
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use axum::{Json, Router};
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;
    use crate::auth::jwt::keys::JwtSecret;
    use crate::auth::jwt::verify::VerifierOptions;

    const SECRET: &str = "sluice-identity-test-secret-0123456789";

    fn verifier() -> Verifier {
        Verifier::new(&JwtSecret::new(SECRET).unwrap(), VerifierOptions::default())
    }

    fn token_for(role: &str) -> String {
        jsonwebtoken::encode(
            &Header::default(),
            &json!({"role": role, "sub": format!("{role}-user")}),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        headers
    }

    fn identify(pairs: &[(&str, &str)]) -> Result<Identity, TokenError> {
        Identity::from_headers(&headers(pairs), &verifier())
    }

    #[test]
    fn the_claims_text_is_the_claims_and_is_shared_by_requests_with_the_same_token() {
        let verifier = verifier();
        let token = token_for("authenticated");
        let headers = headers(&[("authorization", &format!("Bearer {token}"))]);
        let first = Identity::from_headers(&headers, &verifier).unwrap();
        let second = Identity::from_headers(&headers, &verifier).unwrap();
        let parsed: Value = serde_json::from_str(&first.claims_text).unwrap();
        assert_eq!(parsed, *first.claims);
        assert_eq!(parsed["sub"], "authenticated-user");
        // The second request's identity came from the cache: the same claims, not a copy.
        assert!(Arc::ptr_eq(&first.claims, &second.claims));
        assert!(Arc::ptr_eq(&first.claims_text, &second.claims_text));
        let anon = Identity::from_headers(&HeaderMap::new(), &verifier).unwrap();
        assert_eq!(&*anon.claims_text, r#"{"role":"anon"}"#);
        let again = Identity::from_headers(&HeaderMap::new(), &verifier).unwrap();
        assert!(Arc::ptr_eq(&anon.claims_text, &again.claims_text));
    }

    #[test]
    fn no_token_is_anon() {
        let identity = identify(&[]).unwrap();
        assert_eq!(identity.role, "anon");
        assert_eq!(*identity.claims, json!({"role": "anon"}));
        assert!(identity.is_anonymous());
    }

    #[test]
    fn bearer_token_is_verified() {
        let bearer = format!("Bearer {}", token_for("authenticated"));
        let identity = identify(&[("authorization", &bearer)]).unwrap();
        assert_eq!(identity.role, "authenticated");
        assert_eq!(identity.claims["sub"], "authenticated-user");
        assert!(!identity.is_anonymous());
    }

    #[test]
    fn authorization_wins_over_apikey() {
        // supabase-js: the anon key in `apikey`, the user's session in `Authorization`.
        let bearer = format!("Bearer {}", token_for("authenticated"));
        let anon_key = token_for("anon");
        let identity = identify(&[("apikey", &anon_key), ("authorization", &bearer)]).unwrap();
        assert_eq!(identity.role, "authenticated");
        // Even a broken apikey does not matter when Authorization is there.
        let identity = identify(&[("apikey", "garbage"), ("authorization", &bearer)]).unwrap();
        assert_eq!(identity.role, "authenticated");
    }

    #[test]
    fn apikey_alone_is_the_token() {
        let service_key = token_for("service_role");
        let identity = identify(&[("apikey", &service_key)]).unwrap();
        assert_eq!(identity.role, "service_role");
        assert_eq!(
            identify(&[("apikey", "not-a-jwt")]),
            Err(TokenError::WrongPartCount(1))
        );
        assert_eq!(identify(&[("apikey", "  ")]).unwrap().role, "anon");
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let bearer = format!("bearer   {}", token_for("service_role"));
        assert_eq!(
            identify(&[("authorization", &bearer)]).unwrap().role,
            "service_role"
        );
    }

    #[test]
    fn other_schemes_and_empty_bearer_are_refused() {
        assert_eq!(
            identify(&[("authorization", "Basic dXNlcjpwdw==")]),
            Err(TokenError::NotBearer)
        );
        assert_eq!(
            identify(&[("authorization", "Bearer")]),
            Err(TokenError::EmptyToken)
        );
        assert_eq!(
            identify(&[("authorization", "Bearer ")]),
            Err(TokenError::EmptyToken)
        );
        // A bad Authorization header is refused even with a good apikey beside it.
        let anon_key = token_for("anon");
        assert_eq!(
            identify(&[("authorization", "Token abc"), ("apikey", &anon_key)]),
            Err(TokenError::NotBearer)
        );
    }

    #[test]
    fn invalid_bearer_token_is_refused_not_downgraded_to_anon() {
        let bearer = format!("Bearer {}x", token_for("authenticated"));
        assert_eq!(
            identify(&[("authorization", &bearer)]),
            Err(TokenError::BadSignature)
        );
    }

    async fn whoami(identity: Identity) -> Json<Value> {
        Json(json!({"role": identity.role, "claims": *identity.claims}))
    }

    async fn call(pairs: &[(&str, &str)]) -> (StatusCode, HeaderMap, Value) {
        let app = Router::new()
            .route("/whoami", get(whoami))
            .with_state(Arc::new(verifier()));
        let mut request = Request::builder().uri("/whoami");
        for (name, value) in pairs {
            request = request.header(*name, *value);
        }
        let response = app
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn extractor_gives_handlers_the_identity() {
        let bearer = format!("Bearer {}", token_for("authenticated"));
        let (status, _, body) = call(&[("authorization", &bearer)]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["role"], "authenticated");
        let (status, _, body) = call(&[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"role": "anon", "claims": {"role": "anon"}}));
    }

    #[tokio::test]
    async fn extractor_rejects_with_a_postgrest_style_401() {
        let (status, headers, body) = call(&[("authorization", "Bearer a.b")]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            body,
            json!({
                "code": "PGRST301",
                "message": "Expected 3 parts in JWT; got 2",
                "details": null,
                "hint": null,
            })
        );
        assert_eq!(
            headers["www-authenticate"],
            r#"Bearer error="invalid_token", error_description="Expected 3 parts in JWT; got 2""#
        );
    }
}
