//! The JWT secret and the two API keys signed with it.
//!
//! The keys are ordinary HS256 JWTs whose only meaningful claim is `role`: `anon` for browsers and
//! `service_role` for trusted servers. The sidecar later verifies every request's token with the same
//! secret and hands the role to Postgres, so a key is exactly as powerful as its role is there.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// HS256 is only as strong as its key; RFC 7518 §3.2 asks for at least the hash size (256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// The `iss` claim of every token this sidecar signs.
pub const ISSUER: &str = "sluice";

/// API keys are configuration, not sessions: they live as long as the project (10 years, as Supabase's
/// local development keys do) and are rotated by rotating the secret. 3652 days counts the leap days.
pub const API_KEY_LIFETIME: Duration = Duration::from_secs(3652 * 24 * 60 * 60);

/// The shared HS256 secret. Its `Debug` is redacted so that logging a config cannot leak it.
#[derive(Clone)]
pub struct JwtSecret(Vec<u8>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error(
        "the JWT secret is {len} bytes long but must be at least {MIN_SECRET_BYTES}: set \
         SLUICE_JWT_SECRET (or --jwt-secret) to a longer random string, e.g. the output of \
         `openssl rand -base64 32`"
    )]
    TooShort { len: usize },
}

impl JwtSecret {
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        let secret = secret.into();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort { len: secret.len() });
        }
        Ok(JwtSecret(secret))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret(<redacted>)")
    }
}

/// The database roles an API key can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyRole {
    Anon,
    ServiceRole,
}

/// Claims of an API key. `iat`/`exp` are seconds since the Unix epoch (RFC 7519 NumericDate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyClaims {
    pub role: ApiKeyRole,
    pub iss: String,
    pub iat: u64,
    pub exp: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the system clock is before 1970, so tokens cannot be dated")]
    ClockBeforeEpoch,
    #[error("could not sign the API key: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// The pair printed by `sluice keys`.
#[derive(Debug, Clone)]
pub struct ApiKeys {
    pub anon: String,
    pub service_role: String,
}

impl ApiKeys {
    /// Signs both keys as issued at `now` (a parameter so that tests can pin the clock).
    pub fn sign(secret: &JwtSecret, now: SystemTime) -> Result<Self, KeyError> {
        Ok(ApiKeys {
            anon: sign_api_key(secret, ApiKeyRole::Anon, now)?,
            service_role: sign_api_key(secret, ApiKeyRole::ServiceRole, now)?,
        })
    }
}

pub fn sign_api_key(
    secret: &JwtSecret,
    role: ApiKeyRole,
    now: SystemTime,
) -> Result<String, KeyError> {
    let iat = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| KeyError::ClockBeforeEpoch)?
        .as_secs();
    let claims = ApiKeyClaims {
        role,
        iss: ISSUER.to_owned(),
        iat,
        exp: iat + API_KEY_LIFETIME.as_secs(),
    };
    let key = EncodingKey::from_secret(secret.as_bytes());
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &key,
    )?)
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    fn secret() -> JwtSecret {
        JwtSecret::new("an-example-secret-that-is-long-enough!!").unwrap()
    }

    fn decode(token: &str, secret: &[u8]) -> jsonwebtoken::errors::Result<ApiKeyClaims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        jsonwebtoken::decode::<ApiKeyClaims>(token, &DecodingKey::from_secret(secret), &validation)
            .map(|data| data.claims)
    }

    #[test]
    fn secrets_shorter_than_32_bytes_are_refused() {
        assert_eq!(
            JwtSecret::new("x".repeat(31)).unwrap_err(),
            SecretError::TooShort { len: 31 }
        );
        assert!(JwtSecret::new("x".repeat(32)).is_ok());
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        assert!(!format!("{:?}", secret()).contains("example"));
    }

    #[test]
    fn keys_round_trip_with_their_roles_and_ten_year_expiry() {
        let now = SystemTime::now();
        let keys = ApiKeys::sign(&secret(), now).unwrap();
        let anon = decode(&keys.anon, secret().as_bytes()).unwrap();
        let service = decode(&keys.service_role, secret().as_bytes()).unwrap();
        assert_eq!(anon.role, ApiKeyRole::Anon);
        assert_eq!(service.role, ApiKeyRole::ServiceRole);
        let iat = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(anon.iat, iat);
        assert_eq!(anon.exp - anon.iat, API_KEY_LIFETIME.as_secs());
        assert!(anon.exp - anon.iat >= 10 * 365 * 24 * 60 * 60);
    }

    #[test]
    fn role_claim_is_the_plain_role_name() {
        let key = sign_api_key(&secret(), ApiKeyRole::ServiceRole, SystemTime::now()).unwrap();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims::<&str>(&[]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            &key,
            &DecodingKey::from_secret(secret().as_bytes()),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["role"], "service_role");
        assert_eq!(claims["iss"], "sluice");
    }

    #[test]
    fn keys_do_not_verify_with_another_secret() {
        let keys = ApiKeys::sign(&secret(), SystemTime::now()).unwrap();
        let other = "another-secret-that-is-also-long-enough";
        assert!(decode(&keys.anon, other.as_bytes()).is_err());
    }
}
