//! Tokens the auth API hands out: access tokens (JWTs with Supabase's claims), and opaque random
//! refresh and one-time tokens, which the database stores only as SHA-256 hashes.
//!
//! Access tokens are signed with the project's JWT secret (HS256), the same key the REST verifier
//! checks, and carry the audience that verifier requires (`--jwt-aud`, else `authenticated`), so a
//! token from `/auth/v1/token` works on `/rest/v1/` as is.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::jwt::keys::JwtSecret;
use crate::auth::jwt::signing::SigningKeys;

/// The audience of user tokens when `--jwt-aud` is not set: Supabase's.
pub const DEFAULT_AUDIENCE: &str = "authenticated";

/// Why a token could not be issued: always a server failure (a bad signing key is found at
/// start-up), so `AccountError` carries it only as the cause of a 500.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("the system random source failed: {0}")]
    Random(String),
    #[error("the system clock is before 1970")]
    Clock,
    #[error("could not sign the access token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    #[error("the signing key is neither an RSA nor an EC P-256 private key in PEM")]
    SigningKey,
}

/// 32 random bytes, base64url: a refresh or one-time token as the client sees it.
pub fn random_token() -> Result<String, IssueError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|err| IssueError::Random(err.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// How a token is stored: SHA-256, hex. The tokens carry 256 random bits, so a fast hash suffices
/// (there is nothing to brute-force); a database leak then yields no usable token.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Signs access tokens.
pub struct AccessTokens {
    key: EncodingKey,
    header: Header,
    pub lifetime: Duration,
    pub audience: String,
    pub issuer: String,
    /// The public keys published at `/.well-known/jwks.json` (`{"keys": []}` without a key file).
    pub jwks: Value,
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokens")
            .field("lifetime", &self.lifetime)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// A signed access token and when it expires (seconds since the epoch).
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: u64,
    pub expires_at: u64,
}

impl AccessTokens {
    pub fn hs256(secret: &JwtSecret, lifetime: Duration, audience: String, issuer: String) -> Self {
        AccessTokens {
            key: EncodingKey::from_secret(secret.as_bytes()),
            header: Header::new(Algorithm::HS256),
            lifetime,
            audience,
            issuer,
            jwks: json!({"keys": []}),
        }
    }

    /// Tokens signed by the signing key of a JWK file (see `jwt::signing`), with its `kid`.
    pub fn from_signing_keys(
        keys: &SigningKeys,
        lifetime: Duration,
        audience: String,
        issuer: String,
    ) -> Self {
        let mut header = Header::new(keys.signer.alg);
        header.kid = Some(keys.signer.kid.clone());
        AccessTokens {
            key: keys.signer.key.clone(),
            header,
            lifetime,
            audience,
            issuer,
            jwks: keys.jwks.clone(),
        }
    }

    /// Tokens signed with a private key instead of the secret: RS256 for an RSA key, ES256 for an
    /// EC P-256 key (PEM), with `kid` in the header when given. The REST verifier then needs the
    /// public key (`--jwt-public-key-file` or `--jwt-jwks-file`).
    pub fn from_pem(
        pem: &[u8],
        kid: Option<String>,
        lifetime: Duration,
        audience: String,
        issuer: String,
    ) -> Result<Self, IssueError> {
        let text = std::str::from_utf8(pem).map_err(|_| IssueError::SigningKey)?;
        let (key, alg) = if text.contains("RSA PRIVATE KEY") || is_pkcs8_rsa(text) {
            let key = EncodingKey::from_rsa_pem(pem).map_err(|_| IssueError::SigningKey)?;
            (key, Algorithm::RS256)
        } else {
            let key = EncodingKey::from_ec_pem(pem).map_err(|_| IssueError::SigningKey)?;
            (key, Algorithm::ES256)
        };
        // The public half is published at /.well-known/jwks.json, as GoTrue does, so that
        // `getClaims()` and other services can verify without a secret.
        let public = crate::auth::jwt::signing::public_jwk_from_pem(text, kid.as_deref())
            .map_err(|_| IssueError::SigningKey)?;
        let mut header = Header::new(alg);
        header.kid = kid;
        let tokens = AccessTokens {
            key,
            header,
            lifetime,
            audience,
            issuer,
            jwks: json!({ "keys": [public] }),
        };
        // A key of the wrong kind fails when used, not when read: sign once to find out now.
        let probe = json!({"id": "probe", "role": "authenticated"});
        tokens
            .issue(&probe, Uuid::nil(), "aal1", "probe", SystemTime::now())
            .map_err(|_| IssueError::SigningKey)?;
        Ok(tokens)
    }

    pub fn algorithm(&self) -> Algorithm {
        self.header.alg
    }

    /// The token of `user` (GoTrue's user JSON) in `session`, with Supabase's claims.
    pub fn issue(
        &self,
        user: &Value,
        session_id: Uuid,
        aal: &str,
        method: &str,
        now: SystemTime,
    ) -> Result<AccessToken, IssueError> {
        let claims = self.claims(user, session_id, aal, method, None, now)?;
        self.sign(&claims)
    }

    /// Supabase's claims for `user` in `session`; `amr` defaults to `[{method, timestamp: iat}]`.
    pub fn claims(
        &self,
        user: &Value,
        session_id: Uuid,
        aal: &str,
        method: &str,
        amr: Option<Value>,
        now: SystemTime,
    ) -> Result<Value, IssueError> {
        let iat = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| IssueError::Clock)?
            .as_secs();
        let exp = iat + self.lifetime.as_secs();
        Ok(json!({
            "iss": self.issuer,
            "sub": user["id"],
            "aud": self.audience,
            "exp": exp,
            "iat": iat,
            "email": user["email"],
            "phone": "",
            "app_metadata": user["app_metadata"],
            "user_metadata": user["user_metadata"],
            "role": user["role"],
            "aal": aal,
            "amr": amr.unwrap_or_else(|| json!([{"method": method, "timestamp": iat}])),
            "session_id": session_id.to_string(),
            "is_anonymous": user["is_anonymous"].as_bool().unwrap_or(false),
        }))
    }

    /// Signs `claims` (as `claims` made them, or as a hook changed them); the expiry the client
    /// is told is the one `claims` chose, whatever the hook did to `exp` (as GoTrue).
    pub fn sign(&self, claims: &Value) -> Result<AccessToken, IssueError> {
        let expires_at = claims["exp"].as_u64().unwrap_or_default();
        Ok(AccessToken {
            token: jsonwebtoken::encode(&self.header, claims, &self.key)?,
            expires_in: self.lifetime.as_secs(),
            expires_at,
        })
    }
}

/// A PKCS#8 `PRIVATE KEY` block holding an RSA key (its algorithm OID, 1.2.840.113549.1.1.1).
fn is_pkcs8_rsa(pem: &str) -> bool {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .is_ok_and(|der| {
            der.windows(9)
                .any(|w| w == [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01])
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwt::verify::{Verifier, VerifierOptions};

    const SECRET: &str = "sluice-token-test-secret-0123456789abcdef";

    #[test]
    fn rsa_and_ec_keys_sign_tokens_the_public_keys_verify() {
        use crate::auth::jwt::keyset::keys_from_pem;
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwt");
        let user = json!({"id": "6f1d0d8e-2c3b-4b59-9a9e-1f5c7d2b8a10", "role": "authenticated"});
        for (private, public, alg) in [
            ("rsa-private.pem", "rsa-public.pem", Algorithm::RS256),
            ("ec-private.pem", "ec-public.pem", Algorithm::ES256),
        ] {
            let pem = std::fs::read(format!("{fixtures}/{private}")).unwrap();
            let tokens = AccessTokens::from_pem(
                &pem,
                Some("k1".into()),
                Duration::from_secs(60),
                DEFAULT_AUDIENCE.into(),
                "sluice".into(),
            )
            .unwrap();
            assert_eq!(tokens.algorithm(), alg);
            let issued = tokens
                .issue(&user, Uuid::nil(), "aal1", "password", SystemTime::now())
                .unwrap();
            let secret = JwtSecret::new(SECRET).unwrap();
            let mut verifier = Verifier::new(&secret, VerifierOptions::default());
            let public = std::fs::read_to_string(format!("{fixtures}/{public}")).unwrap();
            verifier.add_keys(keys_from_pem(&public).unwrap());
            assert_eq!(
                verifier.verify(&issued.token).unwrap().role,
                "authenticated"
            );
        }
        assert!(matches!(
            AccessTokens::from_pem(
                b"not a key",
                None,
                Duration::from_secs(60),
                "a".into(),
                "b".into()
            ),
            Err(IssueError::SigningKey)
        ));
    }

    #[test]
    fn random_tokens_are_distinct_and_hashes_are_hex_sha256() {
        let a = random_token().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token().unwrap());
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn issued_tokens_pass_the_rest_verifier_with_supabase_claims() {
        let secret = JwtSecret::new(SECRET).unwrap();
        let tokens = AccessTokens::hs256(
            &secret,
            Duration::from_secs(3600),
            "my-app".into(),
            "sluice".into(),
        );
        let user = json!({
            "id": "6f1d0d8e-2c3b-4b59-9a9e-1f5c7d2b8a10",
            "email": "a@example.com",
            "role": "authenticated",
            "app_metadata": {"provider": "email"},
            "user_metadata": {"name": "A"},
            "is_anonymous": false,
        });
        let session = Uuid::from_u128(7);
        let issued = tokens
            .issue(&user, session, "aal1", "password", SystemTime::now())
            .unwrap();
        assert_eq!(issued.expires_in, 3600);
        let options = VerifierOptions {
            audience: Some("my-app".into()),
            ..VerifierOptions::default()
        };
        let verified = Verifier::new(&secret, options)
            .verify(&issued.token)
            .unwrap();
        assert_eq!(verified.role, "authenticated");
        let claims = Value::Object(verified.claims);
        for key in [
            "sub",
            "role",
            "aud",
            "exp",
            "iat",
            "email",
            "session_id",
            "app_metadata",
            "user_metadata",
            "aal",
            "is_anonymous",
        ] {
            assert!(claims.get(key).is_some(), "missing {key} in {claims}");
        }
        assert_eq!(claims["session_id"], session.to_string());
        assert_eq!(claims["exp"].as_u64(), Some(issued.expires_at));
    }
}
