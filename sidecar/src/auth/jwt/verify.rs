//! Verifying a request's JWT into the role and claims the request runs with.
//!
//! The rules, and where they come from:
//! - Keys: the project secret (HS256), plus optional RS256/ES256 public keys (PEM) and a JWKS. A
//!   token is checked only against keys of the algorithm its header names, and `kid`, when present,
//!   picks the key (`keyset` explains why this rules out algorithm confusion). `alg: none` and any
//!   other algorithm are refused before a key is looked at.
//! - Time: `exp`, `nbf` and `iat` are each optional, as in PostgREST, but checked when present,
//!   with a leeway for clock skew (`--jwt-leeway`, default 30 s: PostgREST's fixed value).
//! - Audience: with `--jwt-aud` set, a token must carry that audience; unset, `aud` is ignored
//!   (Supabase's tokens all say `authenticated`, which means nothing to us).
//! - Role: the `role` claim, or `anon` when the token has none (PostgREST's rule); it must be one of
//!   `--jwt-roles`. The role is checked here rather than left to `SET ROLE`, so that a token for a
//!   role the authenticator happens to be a member of cannot reach it by accident.

use std::sync::OnceLock;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::Validation;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::cache::{TokenCache, DEFAULT_CAPACITY};
use super::error::TokenError;
use super::identity::Identity;
use super::keys::JwtSecret;
use super::keyset::{SigningAlg, VerifyingKey};

/// The role of a request without a token.
pub(crate) const ANON_ROLE: &str = "anon";

/// The roles Supabase projects use, and so the default of `--jwt-roles`.
pub(crate) const DEFAULT_ROLES: [&str; 3] = ["anon", "authenticated", "service_role"];

/// PostgREST's allowed clock skew; enough for machines kept in sync by NTP.
pub(crate) const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// What the verifier accepts besides the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierOptions {
    pub leeway: Duration,
    /// When set, tokens must name it in `aud`.
    pub audience: Option<String>,
    /// The roles a request may run as; a request without a token needs `anon` among them.
    pub roles: Vec<String>,
}

impl Default for VerifierOptions {
    fn default() -> Self {
        VerifierOptions {
            leeway: DEFAULT_LEEWAY,
            audience: None,
            roles: DEFAULT_ROLES.map(String::from).to_vec(),
        }
    }
}

/// A verified request: the database role it runs as and the claims Postgres sees through
/// `request.jwt.claims` (with `role` always present, as PostgREST sets it).
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub role: String,
    pub claims: Map<String, Value>,
}

/// The accepted keys and rules, built once at start-up and shared by every request.
#[derive(Debug)]
pub struct Verifier {
    keys: Vec<VerifyingKey>,
    validations: Validations,
    leeway: u64,
    roles: Vec<String>,
    /// Tokens that verified, until their `exp` (see `cache`).
    cache: TokenCache,
    /// `anonymous()`, once (the roles never change).
    anonymous_identity: OnceLock<Result<Identity, TokenError>>,
}

/// jsonwebtoken's checks for each algorithm (a `Validation` names the algorithms it accepts).
#[derive(Debug)]
struct Validations {
    hs256: Validation,
    rs256: Validation,
    es256: Validation,
}

/// The part of the JOSE header we read before choosing keys.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

impl Verifier {
    /// A verifier of HS256 tokens signed with `secret`; add public keys with `add_keys`.
    pub fn new(secret: &JwtSecret, options: VerifierOptions) -> Verifier {
        let validation = |alg: SigningAlg| {
            let mut validation = Validation::new(alg.algorithm());
            validation.leeway = options.leeway.as_secs();
            validation.validate_exp = true;
            validation.validate_nbf = true;
            validation.required_spec_claims.clear();
            match &options.audience {
                Some(audience) => {
                    validation.set_audience(&[audience]);
                    validation.required_spec_claims.insert("aud".to_owned());
                }
                None => validation.validate_aud = false,
            }
            validation
        };
        Verifier {
            keys: vec![VerifyingKey::secret(secret)],
            validations: Validations {
                hs256: validation(SigningAlg::Hs256),
                rs256: validation(SigningAlg::Rs256),
                es256: validation(SigningAlg::Es256),
            },
            leeway: options.leeway.as_secs(),
            roles: options.roles,
            cache: TokenCache::new(DEFAULT_CAPACITY),
            anonymous_identity: OnceLock::new(),
        }
    }

    pub fn add_keys(&mut self, keys: impl IntoIterator<Item = VerifyingKey>) {
        self.keys.extend(keys);
    }

    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// The identity of a request that carries no token: `anon`, if anonymous requests are allowed.
    pub fn anonymous(&self) -> Result<Verified, TokenError> {
        if !self.role_allowed(ANON_ROLE) {
            return Err(TokenError::TokenRequired);
        }
        let mut claims = Map::new();
        claims.insert("role".to_owned(), Value::from(ANON_ROLE));
        Ok(Verified {
            role: ANON_ROLE.to_owned(),
            claims,
        })
    }

    /// `identify`, as the claims map: what the tests read. Requests, realtime and the auth API
    /// take `identify`, whose cached claims are shared rather than copied.
    #[cfg(test)]
    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        self.identify(token)
            .map(|identity| Verified::from(&identity))
    }

    /// Verifies `token` (the compact JWS, without `Bearer `), as the request's `Identity`. A token
    /// that verified before is answered from the cache until its `exp` (a clone of two `Arc`s and
    /// the role); anything else is verified in full.
    pub fn identify(&self, token: &str) -> Result<Identity, TokenError> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(identity) = self.cache.get(token, now) {
            return Ok(identity);
        }
        let identity = Identity::from(self.verify_uncached(token)?);
        self.cache.insert(token, &identity, now);
        Ok(identity)
    }

    /// `anonymous`, as the request's `Identity`, built once.
    pub fn anonymous_identity(&self) -> Result<Identity, TokenError> {
        self.anonymous_identity
            .get_or_init(|| self.anonymous().map(Identity::from))
            .clone()
    }

    fn verify_uncached(&self, token: &str) -> Result<Verified, TokenError> {
        if token.is_empty() {
            return Err(TokenError::EmptyToken);
        }
        let parts = token.split('.').count();
        if parts != 3 {
            return Err(TokenError::WrongPartCount(parts));
        }
        let header = parse_header(token)?;
        let alg = SigningAlg::from_header(&header.alg)
            .ok_or(TokenError::UnsupportedAlgorithm { alg: header.alg })?;
        let candidates = self.candidates(alg, header.kid.as_deref());
        if candidates.is_empty() {
            return Err(TokenError::NoSuitableKey {
                alg: alg.name().to_owned(),
                kid: header.kid,
            });
        }

        let validation = self.validation(alg);
        let mut verified = None;
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation) {
                Ok(data) => {
                    verified = Some(data.claims);
                    break;
                }
                // Another key of the same kind may be the one (rotation, several PEM keys).
                Err(err) if matches!(err.kind(), ErrorKind::InvalidSignature) => continue,
                // The signature was good (claims are checked after it), so the claims are at fault.
                Err(err) => return Err(claims_error(err)),
            }
        }
        let mut claims = verified.ok_or(TokenError::BadSignature)?;
        self.check_issued_at(&claims)?;

        let role = match claims.get("role") {
            None => {
                claims.insert("role".to_owned(), Value::from(ANON_ROLE));
                ANON_ROLE.to_owned()
            }
            Some(Value::String(role)) => role.clone(),
            Some(_) => return Err(TokenError::RoleNotString),
        };
        if !self.role_allowed(&role) {
            return Err(TokenError::RoleNotAllowed { role });
        }
        Ok(Verified { role, claims })
    }

    fn role_allowed(&self, role: &str) -> bool {
        self.roles.iter().any(|allowed| allowed == role)
    }

    /// Keys of `alg`; with a `kid`, the keys of that id, or failing those the keys that have no id
    /// (the secret, PEM keys), since issuers often stamp a `kid` the verifier was never told about.
    fn candidates(&self, alg: SigningAlg, kid: Option<&str>) -> Vec<&VerifyingKey> {
        let of_alg = || self.keys.iter().filter(move |key| key.alg == alg);
        let Some(kid) = kid else {
            return of_alg().collect();
        };
        let named: Vec<&VerifyingKey> = of_alg()
            .filter(|key| key.kid.as_deref() == Some(kid))
            .collect();
        if !named.is_empty() {
            return named;
        }
        of_alg().filter(|key| key.kid.is_none()).collect()
    }

    fn validation(&self, alg: SigningAlg) -> &Validation {
        match alg {
            SigningAlg::Hs256 => &self.validations.hs256,
            SigningAlg::Rs256 => &self.validations.rs256,
            SigningAlg::Es256 => &self.validations.es256,
        }
    }

    /// jsonwebtoken checks `exp` and `nbf` but not `iat`; a token from the future means a clock is
    /// wrong somewhere, and PostgREST refuses it too.
    fn check_issued_at(&self, claims: &Map<String, Value>) -> Result<(), TokenError> {
        match claims.get("iat") {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Number(iat)) => {
                let now = jsonwebtoken::get_current_timestamp() as f64;
                match iat.as_f64() {
                    Some(iat) if iat > now + self.leeway as f64 => Err(TokenError::IssuedInFuture),
                    _ => Ok(()),
                }
            }
            Some(_) => Err(TokenError::ClaimNotNumber("iat".to_owned())),
        }
    }
}

fn parse_header(token: &str) -> Result<RawHeader, TokenError> {
    let encoded = token.split('.').next().unwrap_or_default();
    let json = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| TokenError::Undecodable)?;
    serde_json::from_slice(&json).map_err(|_| TokenError::Undecodable)
}

/// A failure of `jsonwebtoken::decode` other than a bad signature.
fn claims_error(err: jsonwebtoken::errors::Error) -> TokenError {
    match err.into_kind() {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        // `aud` is the only claim we require, and only when an audience is configured.
        ErrorKind::InvalidAudience | ErrorKind::MissingRequiredClaim(_) => {
            TokenError::NotInAudience
        }
        ErrorKind::InvalidClaimFormat(claim) => TokenError::ClaimNotNumber(claim),
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => TokenError::ClaimsNotObject,
        _ => TokenError::Undecodable,
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::jwk::{Jwk, JwkSet};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::json;

    use super::*;
    use crate::auth::jwt::keyset::{keys_from_jwks, keys_from_pem};

    const SECRET: &str = "sluice-unit-test-secret-0123456789abcdef";
    const RSA_PRIVATE: &str = include_str!("../../../tests/fixtures/jwt/rsa-private.pem");
    const RSA_PUBLIC: &str = include_str!("../../../tests/fixtures/jwt/rsa-public.pem");
    const RSA2_PRIVATE: &str = include_str!("../../../tests/fixtures/jwt/rsa2-private.pem");
    const EC_PRIVATE: &str = include_str!("../../../tests/fixtures/jwt/ec-private.pem");
    const EC_PUBLIC: &str = include_str!("../../../tests/fixtures/jwt/ec-public.pem");

    fn now() -> i64 {
        jsonwebtoken::get_current_timestamp() as i64
    }

    fn verifier(options: VerifierOptions) -> Verifier {
        Verifier::new(&JwtSecret::new(SECRET).unwrap(), options)
    }

    fn default_verifier() -> Verifier {
        verifier(VerifierOptions::default())
    }

    fn with_pem(pem: &str) -> Verifier {
        let mut verifier = default_verifier();
        verifier.add_keys(keys_from_pem(pem).unwrap());
        verifier
    }

    fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    fn hs256(claims: Value) -> String {
        sign(
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(SECRET.as_bytes()),
            &claims,
        )
    }

    fn rsa_key(pem: &str) -> EncodingKey {
        EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()
    }

    fn b64(json: &Value) -> String {
        URL_SAFE_NO_PAD.encode(json.to_string())
    }

    fn user_claims() -> Value {
        json!({
            "sub": "6f1d0d8e-2c3b-4b59-9a9e-1f5c7d2b8a10",
            "role": "authenticated",
            "aud": "authenticated",
            "iat": now(),
            "exp": now() + 3600,
        })
    }

    #[test]
    fn valid_hs256_token_gives_its_role_and_all_claims() {
        let verified = default_verifier().verify(&hs256(user_claims())).unwrap();
        assert_eq!(verified.role, "authenticated");
        assert_eq!(Value::Object(verified.claims), user_claims());
    }

    #[test]
    fn api_keys_from_sluice_keys_verify() {
        let secret = JwtSecret::new(SECRET).unwrap();
        let keys =
            crate::auth::jwt::keys::ApiKeys::sign(&secret, std::time::SystemTime::now()).unwrap();
        let verifier = default_verifier();
        assert_eq!(verifier.verify(&keys.anon).unwrap().role, "anon");
        assert_eq!(
            verifier.verify(&keys.service_role).unwrap().role,
            "service_role"
        );
    }

    #[test]
    fn token_signed_with_another_secret_is_refused() {
        let token = sign(
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(b"another-secret-that-is-long-enough-too"),
            &user_claims(),
        );
        assert_eq!(
            default_verifier().verify(&token),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn expiry_is_enforced_beyond_the_leeway_only() {
        let verifier = default_verifier();
        let expired = hs256(json!({"role": "anon", "exp": now() - 120}));
        assert_eq!(verifier.verify(&expired), Err(TokenError::Expired));
        let within_leeway = hs256(json!({"role": "anon", "exp": now() - 10}));
        assert!(verifier.verify(&within_leeway).is_ok());
        let strict = verifier_with_leeway(0);
        assert_eq!(strict.verify(&within_leeway), Err(TokenError::Expired));
    }

    #[test]
    fn a_verified_token_is_kept_and_answered_alike() {
        let verifier = default_verifier();
        let token = hs256(user_claims());
        let first = verifier.verify(&token).unwrap();
        assert_eq!(verifier.cache.len(), 1);
        assert_eq!(verifier.verify(&token).unwrap(), first);
        assert_eq!(verifier.cache.len(), 1);
        // A token without role is kept with the role added, as verification answers it.
        let roleless = hs256(json!({"sub": "x", "exp": now() + 60}));
        for _ in 0..2 {
            let verified = verifier.verify(&roleless).unwrap();
            assert_eq!(verified.role, "anon");
            assert_eq!(verified.claims["role"], "anon");
        }
        assert_eq!(verifier.cache.len(), 2);
    }

    #[test]
    fn refused_tokens_are_never_kept() {
        let verifier = verifier(VerifierOptions {
            roles: vec!["anon".to_owned()],
            ..VerifierOptions::default()
        });
        let good = hs256(json!({"role": "anon", "exp": now() + 600}));
        // The genuine token's header and claims under another token's signature.
        let other = hs256(json!({"role": "anon", "exp": now() + 601}));
        let (signed, _) = good.rsplit_once('.').unwrap();
        let (_, signature) = other.rsplit_once('.').unwrap();
        let forged = format!("{signed}.{signature}");
        let other_secret = jsonwebtoken::encode(
            &Header::default(),
            &json!({"role": "anon", "exp": now() + 600}),
            &EncodingKey::from_secret(b"another-secret-another-secret-0123"),
        )
        .unwrap();
        let expired = hs256(json!({"role": "anon", "exp": now() - 120}));
        let wrong_role = hs256(json!({"role": "service_role", "exp": now() + 600}));
        for _ in 0..2 {
            assert_eq!(verifier.verify(&forged), Err(TokenError::BadSignature));
            assert_eq!(
                verifier.verify(&other_secret),
                Err(TokenError::BadSignature)
            );
            assert_eq!(verifier.verify(&expired), Err(TokenError::Expired));
            assert!(matches!(
                verifier.verify(&wrong_role),
                Err(TokenError::RoleNotAllowed { .. })
            ));
        }
        assert_eq!(verifier.cache.len(), 0);
        // The genuine token next to them is kept; its forged twin is still refused.
        verifier.verify(&good).unwrap();
        assert_eq!(verifier.cache.len(), 1);
        assert_eq!(verifier.verify(&forged), Err(TokenError::BadSignature));
    }

    #[test]
    fn an_expired_token_is_refused_even_when_kept() {
        let verifier = verifier_with_leeway(0);
        let exp = now() + 1;
        let token = hs256(json!({"role": "anon", "exp": exp}));
        verifier.verify(&token).unwrap();
        assert_eq!(verifier.cache.len(), 1);
        while now() <= exp {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(verifier.verify(&token), Err(TokenError::Expired));
    }

    fn verifier_with_leeway(seconds: u64) -> Verifier {
        verifier(VerifierOptions {
            leeway: Duration::from_secs(seconds),
            ..VerifierOptions::default()
        })
    }

    #[test]
    fn not_before_and_issued_at_in_the_future_are_refused() {
        let verifier = default_verifier();
        let early = hs256(json!({"role": "anon", "nbf": now() + 600}));
        assert_eq!(verifier.verify(&early), Err(TokenError::NotYetValid));
        let future = hs256(json!({"role": "anon", "iat": now() + 600}));
        assert_eq!(verifier.verify(&future), Err(TokenError::IssuedInFuture));
        let skewed = hs256(json!({"role": "anon", "iat": now() + 10, "nbf": now() + 10}));
        assert!(verifier.verify(&skewed).is_ok());
    }

    #[test]
    fn time_claims_must_be_numbers() {
        let verifier = default_verifier();
        let token = hs256(json!({"role": "anon", "exp": "tomorrow"}));
        assert_eq!(
            verifier.verify(&token),
            Err(TokenError::ClaimNotNumber("exp".into()))
        );
        let token = hs256(json!({"role": "anon", "iat": "now"}));
        assert_eq!(
            verifier.verify(&token),
            Err(TokenError::ClaimNotNumber("iat".into()))
        );
    }

    #[test]
    fn a_token_without_exp_is_accepted_as_in_postgrest() {
        let verified = default_verifier()
            .verify(&hs256(json!({"role": "service_role"})))
            .unwrap();
        assert_eq!(verified.role, "service_role");
    }

    #[test]
    fn alg_none_is_refused() {
        let header = b64(&json!({"alg": "none", "typ": "JWT"}));
        let payload = b64(&json!({"role": "service_role"}));
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}.c2ln"),
        ] {
            assert_eq!(
                default_verifier().verify(&token),
                Err(TokenError::UnsupportedAlgorithm { alg: "none".into() })
            );
        }
        let header = b64(&json!({"alg": "HS512"}));
        assert_eq!(
            default_verifier().verify(&format!("{header}.{payload}.c2ln")),
            Err(TokenError::UnsupportedAlgorithm {
                alg: "HS512".into()
            })
        );
    }

    #[test]
    fn malformed_tokens_are_refused_with_postgrest_messages() {
        let verifier = default_verifier();
        assert_eq!(verifier.verify(""), Err(TokenError::EmptyToken));
        assert_eq!(verifier.verify("abc"), Err(TokenError::WrongPartCount(1)));
        assert_eq!(
            verifier.verify("a.b.c.d").unwrap_err().to_string(),
            "Expected 3 parts in JWT; got 4"
        );
        assert_eq!(verifier.verify("!!.e30.c2ln"), Err(TokenError::Undecodable));
        // A payload that is JSON but not an object.
        let header = b64(&json!({"alg": "HS256"}));
        let token = format!("{header}.{}.c2ln", b64(&json!([1, 2])));
        let signature = jsonwebtoken::crypto::sign(
            token.rsplit_once('.').unwrap().0.as_bytes(),
            &EncodingKey::from_secret(SECRET.as_bytes()),
            Algorithm::HS256,
        )
        .unwrap();
        let token = format!("{}.{signature}", token.rsplit_once('.').unwrap().0);
        assert_eq!(verifier.verify(&token), Err(TokenError::ClaimsNotObject));
    }

    #[test]
    fn audience_is_required_when_configured() {
        let verifier = verifier(VerifierOptions {
            audience: Some("sluice-app".into()),
            ..VerifierOptions::default()
        });
        let wrong = hs256(json!({"role": "anon", "aud": "authenticated"}));
        assert_eq!(verifier.verify(&wrong), Err(TokenError::NotInAudience));
        let missing = hs256(json!({"role": "anon"}));
        assert_eq!(verifier.verify(&missing), Err(TokenError::NotInAudience));
        let right = hs256(json!({"role": "anon", "aud": ["other", "sluice-app"]}));
        assert!(verifier.verify(&right).is_ok());
    }

    #[test]
    fn audience_is_ignored_when_not_configured() {
        let token = hs256(json!({"role": "anon", "aud": "anything"}));
        assert!(default_verifier().verify(&token).is_ok());
    }

    #[test]
    fn roles_outside_the_allowed_list_are_refused() {
        let verifier = default_verifier();
        let token = hs256(json!({"role": "postgres"}));
        assert_eq!(
            verifier.verify(&token),
            Err(TokenError::RoleNotAllowed {
                role: "postgres".into()
            })
        );
        let token = hs256(json!({"role": ["authenticated"]}));
        assert_eq!(verifier.verify(&token), Err(TokenError::RoleNotString));
    }

    #[test]
    fn a_token_without_role_runs_as_anon_with_role_added() {
        let verified = default_verifier()
            .verify(&hs256(json!({"sub": "x"})))
            .unwrap();
        assert_eq!(verified.role, "anon");
        assert_eq!(
            Value::Object(verified.claims),
            json!({"sub": "x", "role": "anon"})
        );
    }

    #[test]
    fn anonymous_requests_need_anon_among_the_roles() {
        let verified = default_verifier().anonymous().unwrap();
        assert_eq!(verified.role, "anon");
        assert_eq!(Value::Object(verified.claims), json!({"role": "anon"}));
        let closed = verifier(VerifierOptions {
            roles: vec!["authenticated".into()],
            ..VerifierOptions::default()
        });
        assert_eq!(closed.anonymous(), Err(TokenError::TokenRequired));
        let token = hs256(json!({"role": "anon"}));
        assert!(matches!(
            closed.verify(&token),
            Err(TokenError::RoleNotAllowed { .. })
        ));
    }

    #[test]
    fn rs256_with_a_pem_public_key() {
        let verifier = with_pem(RSA_PUBLIC);
        let token = sign(
            Algorithm::RS256,
            None,
            &rsa_key(RSA_PRIVATE),
            &user_claims(),
        );
        assert_eq!(verifier.verify(&token).unwrap().role, "authenticated");
        let other = sign(
            Algorithm::RS256,
            None,
            &rsa_key(RSA2_PRIVATE),
            &user_claims(),
        );
        assert_eq!(verifier.verify(&other), Err(TokenError::BadSignature));
        // Without the public key configured there is nothing to check an RS256 token with.
        assert!(matches!(
            default_verifier().verify(&token),
            Err(TokenError::NoSuitableKey { .. })
        ));
    }

    #[test]
    fn es256_with_a_pem_public_key() {
        let verifier = with_pem(EC_PUBLIC);
        let key = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap();
        let token = sign(Algorithm::ES256, None, &key, &user_claims());
        assert_eq!(verifier.verify(&token).unwrap().role, "authenticated");
        let expired = sign(
            Algorithm::ES256,
            None,
            &key,
            &json!({"role": "anon", "exp": now() - 3600}),
        );
        assert_eq!(verifier.verify(&expired), Err(TokenError::Expired));
    }

    #[test]
    fn hs256_token_keyed_with_the_public_key_is_refused() {
        // The classic confusion attack: HMAC over the token with the (public) RSA key as the
        // secret. HS256 tokens are only ever checked against HS256 secrets.
        let verifier = with_pem(RSA_PUBLIC);
        let forged = sign(
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
            &json!({"role": "service_role"}),
        );
        assert_eq!(verifier.verify(&forged), Err(TokenError::BadSignature));
        // And an RS256 header on an HMAC signature finds no RSA key willing to accept it.
        let header = b64(&json!({"alg": "RS256"}));
        let payload = b64(&json!({"role": "service_role"}));
        let message = format!("{header}.{payload}");
        let hmac = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &EncodingKey::from_secret(SECRET.as_bytes()),
            Algorithm::HS256,
        )
        .unwrap();
        assert_eq!(
            verifier.verify(&format!("{message}.{hmac}")),
            Err(TokenError::BadSignature)
        );
    }

    fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(key, alg).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        jwk
    }

    #[test]
    fn jwks_keys_are_selected_by_kid() {
        let ec = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap();
        let set = JwkSet {
            keys: vec![
                jwk(&rsa_key(RSA_PRIVATE), Algorithm::RS256, "rsa-1"),
                jwk(&rsa_key(RSA2_PRIVATE), Algorithm::RS256, "rsa-2"),
                jwk(&ec, Algorithm::ES256, "ec-1"),
            ],
        };
        let mut verifier = default_verifier();
        verifier.add_keys(keys_from_jwks(&serde_json::to_string(&set).unwrap()).unwrap());

        let claims = user_claims();
        let by_rsa2 = sign(
            Algorithm::RS256,
            Some("rsa-2"),
            &rsa_key(RSA2_PRIVATE),
            &claims,
        );
        assert!(verifier.verify(&by_rsa2).is_ok());
        let by_ec = sign(Algorithm::ES256, Some("ec-1"), &ec, &claims);
        assert!(verifier.verify(&by_ec).is_ok());
        // The kid names rsa-1, whose key did not sign it: not tried against rsa-2.
        let mislabelled = sign(
            Algorithm::RS256,
            Some("rsa-1"),
            &rsa_key(RSA2_PRIVATE),
            &claims,
        );
        assert_eq!(verifier.verify(&mislabelled), Err(TokenError::BadSignature));
        let unknown = sign(
            Algorithm::RS256,
            Some("rsa-9"),
            &rsa_key(RSA_PRIVATE),
            &claims,
        );
        assert_eq!(
            verifier.verify(&unknown),
            Err(TokenError::NoSuitableKey {
                alg: "RS256".into(),
                kid: Some("rsa-9".into())
            })
        );
        // No kid: every key of the algorithm is tried.
        let anonymous_kid = sign(Algorithm::RS256, None, &rsa_key(RSA2_PRIVATE), &claims);
        assert!(verifier.verify(&anonymous_kid).is_ok());
    }

    #[test]
    fn an_unknown_kid_still_verifies_with_the_secret() {
        // GoTrue stamps a kid on tokens signed with the legacy secret.
        let token = sign(
            Algorithm::HS256,
            Some("legacy"),
            &EncodingKey::from_secret(SECRET.as_bytes()),
            &user_claims(),
        );
        assert!(default_verifier().verify(&token).is_ok());
    }
}
