//! The one place where auth failures become HTTP responses, shaped as GoTrue's errors, which
//! `@supabase/auth-js` reads: `{"code": <HTTP status>, "error_code": "<code>", "msg": "<text>"}`
//! (the client takes `error_code` as the error's code and `msg` as its message). This differs
//! from the PostgREST shape of `crate::http::error` on purpose: each API speaks its clients' dialect.
//! Every `/auth/v1/` handler fails with an `AccountError`; a refused access token arrives here as
//! `AccountError::BadJwt` wrapping the verifier's `TokenError`.

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::auth::accounts::store::StoreError;
use crate::auth::accounts::AccountError;
use crate::error::describe;

/// The HTTP status and GoTrue's `error_code` of an auth failure.
pub(crate) fn status_and_code(err: &AccountError) -> (StatusCode, &'static str) {
    use AccountError as A;
    match err {
        A::BadJson(_) => (StatusCode::BAD_REQUEST, "bad_json"),
        A::Validation(_) => (StatusCode::BAD_REQUEST, "validation_failed"),
        A::UnsupportedProvider(_) => (StatusCode::BAD_REQUEST, "validation_failed"),
        A::ProviderDisabled(_) => (StatusCode::BAD_REQUEST, "provider_disabled"),
        A::ManualLinkingDisabled => (StatusCode::NOT_FOUND, "manual_linking_disabled"),
        A::IdentityAlreadyExists(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "identity_already_exists")
        }
        A::IdentityNotFound => (StatusCode::UNPROCESSABLE_ENTITY, "identity_not_found"),
        A::IdentityIdNotUuid => (StatusCode::NOT_FOUND, "validation_failed"),
        A::SingleIdentityNotDeletable => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "single_identity_not_deletable",
        ),
        A::EmailConflictIdentityNotDeletable => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "email_conflict_identity_not_deletable",
        ),
        A::LinkedEmailNotVerified(_) => (StatusCode::UNPROCESSABLE_ENTITY, "email_not_confirmed"),
        A::OAuth(crate::auth::oauth::OAuthError::Invalid(_)) => {
            (StatusCode::BAD_REQUEST, "bad_oauth_callback")
        }
        A::OAuth(crate::auth::oauth::OAuthError::Provider(_)) => {
            (StatusCode::BAD_GATEWAY, "unexpected_failure")
        }
        A::InvalidEmail => (StatusCode::BAD_REQUEST, "email_address_invalid"),
        A::WeakPassword(_) => (StatusCode::UNPROCESSABLE_ENTITY, "weak_password"),
        A::NoAuthorization => (StatusCode::UNAUTHORIZED, "no_authorization"),
        A::BadJwt(_) | A::NoUserInToken => (StatusCode::FORBIDDEN, "bad_jwt"),
        A::NotAdmin => (StatusCode::FORBIDDEN, "not_admin"),
        A::SignupDisabled => (StatusCode::UNPROCESSABLE_ENTITY, "signup_disabled"),
        A::UserAlreadyExists => (StatusCode::UNPROCESSABLE_ENTITY, "user_already_exists"),
        A::InvalidCredentials => (StatusCode::BAD_REQUEST, "invalid_credentials"),
        A::EmailNotConfirmed => (StatusCode::BAD_REQUEST, "email_not_confirmed"),
        A::UserBanned => (StatusCode::BAD_REQUEST, "user_banned"),
        A::RefreshTokenNotFound => (StatusCode::BAD_REQUEST, "refresh_token_not_found"),
        A::RefreshTokenAlreadyUsed => (StatusCode::BAD_REQUEST, "refresh_token_already_used"),
        A::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "over_request_rate_limit"),
        A::SessionNotFound => (StatusCode::FORBIDDEN, "session_not_found"),
        A::UserFromTokenNotFound => (StatusCode::FORBIDDEN, "user_not_found"),
        A::UserNotFound => (StatusCode::NOT_FOUND, "user_not_found"),
        A::OtpExpired | A::OtpInvalid => (StatusCode::FORBIDDEN, "otp_expired"),
        A::SamlDisabled => (StatusCode::NOT_FOUND, "saml_provider_disabled"),
        A::Web3Disabled => (StatusCode::BAD_REQUEST, "web3_provider_disabled"),
        A::OtpDisabled => (StatusCode::UNPROCESSABLE_ENTITY, "otp_disabled"),
        A::AnonymousDisabled => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "anonymous_provider_disabled",
        ),
        A::InvalidPhone => (StatusCode::BAD_REQUEST, "validation_failed"),
        A::EmailExists => (StatusCode::UNPROCESSABLE_ENTITY, "email_exists"),
        A::PhoneExists => (StatusCode::UNPROCESSABLE_ENTITY, "phone_exists"),
        A::PhoneNotConfirmed => (StatusCode::BAD_REQUEST, "phone_not_confirmed"),
        A::ReauthenticationNeeded => (StatusCode::BAD_REQUEST, "reauthentication_needed"),
        A::ReauthenticationNotValid => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "reauthentication_not_valid",
        ),
        A::ReauthenticationNoContact => (StatusCode::BAD_REQUEST, "validation_failed"),
        A::ReauthenticationEmailUnconfirmed => {
            (StatusCode::UNPROCESSABLE_ENTITY, "email_not_confirmed")
        }
        A::ReauthenticationPhoneUnconfirmed => {
            (StatusCode::UNPROCESSABLE_ENTITY, "phone_not_confirmed")
        }
        A::FlowStateNotFound => (StatusCode::NOT_FOUND, "flow_state_not_found"),
        A::FlowStateExpired => (StatusCode::UNPROCESSABLE_ENTITY, "flow_state_expired"),
        A::BadCodeVerifier => (StatusCode::BAD_REQUEST, "bad_code_verifier"),
        A::Sms(_) => (StatusCode::INTERNAL_SERVER_ERROR, "sms_send_failed"),
        A::MfaFactorNameConflict => (StatusCode::UNPROCESSABLE_ENTITY, "mfa_factor_name_conflict"),
        A::TooManyFactors => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_enrolled_mfa_factors",
        ),
        A::MfaFactorNotFound => (StatusCode::NOT_FOUND, "mfa_factor_not_found"),
        A::MfaChallengeNotFound => (StatusCode::UNPROCESSABLE_ENTITY, "mfa_factor_not_found"),
        A::MfaChallengeExpired(_) => (StatusCode::UNPROCESSABLE_ENTITY, "mfa_challenge_expired"),
        A::MfaVerificationFailed => (StatusCode::UNPROCESSABLE_ENTITY, "mfa_verification_failed"),
        A::InsufficientAal => (StatusCode::UNPROCESSABLE_ENTITY, "insufficient_aal"),
        A::UnsupportedFactorType => (StatusCode::BAD_REQUEST, "validation_failed"),
        A::Hook { status, .. } => (
            StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "unexpected_failure",
        ),
        A::Store(StoreError::Db(db)) if db.is_unavailable() => {
            (StatusCode::SERVICE_UNAVAILABLE, "unexpected_failure")
        }
        A::Store(_) | A::Password(_) | A::Issue(_) | A::Mail(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "unexpected_failure")
        }
    }
}

impl IntoResponse for AccountError {
    fn into_response(self) -> Response {
        let (status, code) = status_and_code(&self);
        // Server-side failures: the cause to the log, a generic message to the client.
        let message = if status.is_server_error() && !matches!(self, AccountError::Hook { .. }) {
            tracing::error!("auth: {}", describe(&self));
            "Internal Server Error".to_owned()
        } else {
            self.to_string()
        };
        let mut body = json!({"code": status.as_u16(), "error_code": code, "msg": message});
        if let AccountError::WeakPassword(_) = &self {
            body["weak_password"] = json!({"reasons": ["length"]});
        }
        let mut response = (status, Json(body)).into_response();
        if let AccountError::RateLimited(limited) = &self {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(limited.retry_after_secs()));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::to_bytes;

    use super::*;
    use crate::auth::accounts::ratelimit::Limited;

    async fn respond(err: AccountError) -> (StatusCode, Option<String>, serde_json::Value) {
        let response = err.into_response();
        let status = response.status();
        let retry = response
            .headers()
            .get(RETRY_AFTER)
            .map(|value| value.to_str().unwrap().to_owned());
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, retry, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn errors_have_gotrues_shape() {
        let (status, _, body) = respond(AccountError::InvalidCredentials).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            json!({"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"})
        );
        let (status, _, body) = respond(AccountError::WeakPassword(8)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["weak_password"]["reasons"], json!(["length"]));
        assert_eq!(body["msg"], "Password should be at least 8 characters.");
        // Flows Sluice does not have answer as GoTrue does when they are off (auth-js's suite).
        let (status, _, body) = respond(AccountError::SamlDisabled).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body,
            json!({"code": 404, "error_code": "saml_provider_disabled", "msg": "SAML 2.0 is disabled"})
        );
        let (status, _, body) = respond(AccountError::Web3Disabled).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error_code"], "web3_provider_disabled");
        assert_eq!(body["msg"], "Web3 provider is disabled");
    }

    #[tokio::test]
    async fn rate_limits_are_429_with_retry_after() {
        let limited = Limited {
            retry_after: Duration::from_millis(12_300),
        };
        let (status, retry, body) = respond(AccountError::RateLimited(limited)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry.as_deref(), Some("13"));
        assert_eq!(body["error_code"], "over_request_rate_limit");
    }
}
