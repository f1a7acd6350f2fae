//! The keys that verify request JWTs, read once at start-up: the project secret (HS256), and public
//! keys from a PEM file or a JSON Web Key Set. Every problem with a key file is found here, with the
//! fix in the message, so that a bad file stops start-up instead of failing requests later.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::keys::{JwtSecret, MIN_SECRET_BYTES};

/// The algorithms a token may be signed with: HS256 with a shared secret (PostgREST's default and
/// Supabase's legacy keys), RS256 and ES256 with public keys (Supabase's asymmetric signing keys).
/// Anything else, `none` first of all, is refused rather than half supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    Hs256,
    Rs256,
    Es256,
}

impl SigningAlg {
    /// The algorithm a token's `alg` header names; JWS algorithm names are case-sensitive.
    pub fn from_header(alg: &str) -> Option<SigningAlg> {
        match alg {
            "HS256" => Some(SigningAlg::Hs256),
            "RS256" => Some(SigningAlg::Rs256),
            "ES256" => Some(SigningAlg::Es256),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SigningAlg::Hs256 => "HS256",
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
        }
    }

    pub fn algorithm(self) -> Algorithm {
        match self {
            SigningAlg::Hs256 => Algorithm::HS256,
            SigningAlg::Rs256 => Algorithm::RS256,
            SigningAlg::Es256 => Algorithm::ES256,
        }
    }
}

/// One key, bound to the one algorithm it verifies. Binding the algorithm to the key, not taking it
/// from the token, is what rules out algorithm confusion (an HS256 token "signed" with an RSA
/// public key as the HMAC secret): a token is only ever checked against keys of its own algorithm.
#[derive(Clone)]
pub struct VerifyingKey {
    pub alg: SigningAlg,
    /// The JWK `kid`; keys from the secret or a PEM file have none.
    pub kid: Option<String>,
    pub(crate) key: DecodingKey,
}

impl VerifyingKey {
    pub fn secret(secret: &JwtSecret) -> VerifyingKey {
        VerifyingKey {
            alg: SigningAlg::Hs256,
            kid: None,
            key: DecodingKey::from_secret(secret.as_bytes()),
        }
    }
}

// Key material stays out of logs: only what identifies the key.
impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// What is wrong with a key file's contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadKey(String);

impl BadKey {
    pub(crate) fn new(problem: impl Into<String>) -> BadKey {
        BadKey(problem.into())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("could not read {flag} ({}): {source}", .path.display())]
    Read {
        flag: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{flag} ({}): {problem}", .path.display())]
    Invalid {
        flag: &'static str,
        path: PathBuf,
        problem: BadKey,
    },
}

pub(crate) const PUBLIC_KEY_FILE_FLAG: &str = "--jwt-public-key-file (SLUICE_JWT_PUBLIC_KEY_FILE)";
pub(crate) const JWKS_FILE_FLAG: &str = "--jwt-jwks-file (SLUICE_JWT_JWKS_FILE)";

/// Reads a key file with `parse` (`keys_from_pem` or `keys_from_jwks`); errors name the flag.
pub(crate) fn read_key_file(
    path: &Path,
    flag: &'static str,
    parse: fn(&str) -> Result<Vec<VerifyingKey>, BadKey>,
) -> Result<Vec<VerifyingKey>, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
        flag,
        path: path.to_owned(),
        source,
    })?;
    parse(&text).map_err(|problem| KeyFileError::Invalid {
        flag,
        path: path.to_owned(),
        problem,
    })
}

/// Public keys from PEM text: one or more `PUBLIC KEY` (SPKI, RSA or EC P-256) or `RSA PUBLIC KEY`
/// (PKCS#1) blocks, so that a file can hold the current and the next key during a rotation.
pub(crate) fn keys_from_pem(text: &str) -> Result<Vec<VerifyingKey>, BadKey> {
    let blocks = pem_blocks(text)?;
    if blocks.is_empty() {
        return Err(BadKey(
            "no PEM block found; expected -----BEGIN PUBLIC KEY----- ... -----END PUBLIC KEY-----"
                .into(),
        ));
    }
    let mut keys = Vec::with_capacity(blocks.len());
    for (index, (label, block)) in blocks.into_iter().enumerate() {
        let n = index + 1;
        let key = match label {
            "PUBLIC KEY" | "RSA PUBLIC KEY" => public_key_from_pem(block).ok_or_else(|| {
                BadKey(format!(
                    "PEM block {n} is neither an RSA nor an EC P-256 public key; only RS256 and \
                     ES256 public keys are supported"
                ))
            })?,
            label if label.contains("PRIVATE KEY") => {
                return Err(BadKey(format!(
                    "PEM block {n} is a private key: give the sidecar only the public key, e.g. \
                     `openssl pkey -in private.pem -pubout`"
                )))
            }
            "CERTIFICATE" => {
                return Err(BadKey(format!(
                    "PEM block {n} is a certificate: give its public key instead, e.g. \
                     `openssl x509 -in cert.pem -pubkey -noout`"
                )))
            }
            other => {
                return Err(BadKey(format!(
                    "PEM block {n} is a {other:?} block; expected PUBLIC KEY"
                )))
            }
        };
        probe(&key).map_err(|why| BadKey(format!("PEM block {n}: {why}")))?;
        keys.push(key);
    }
    Ok(keys)
}

fn public_key_from_pem(block: &str) -> Option<VerifyingKey> {
    if let Ok(key) = DecodingKey::from_rsa_pem(block.as_bytes()) {
        return Some(VerifyingKey {
            alg: SigningAlg::Rs256,
            kid: None,
            key,
        });
    }
    let key = DecodingKey::from_ec_pem(block.as_bytes()).ok()?;
    // The SEC1 point: 0x04 ‖ x ‖ y (65 bytes) or compressed (33 bytes) on P-256. Other curves
    // have longer points; ES256 must not be tried with them.
    matches!(key.as_bytes().len(), 65 | 33).then_some(VerifyingKey {
        alg: SigningAlg::Es256,
        kid: None,
        key,
    })
}

/// `(label, whole block)` for each `-----BEGIN label----- ... -----END label-----` in `text`.
fn pem_blocks(text: &str) -> Result<Vec<(&str, &str)>, BadKey> {
    const BEGIN: &str = "-----BEGIN ";
    let mut blocks = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(start) = rest.find(BEGIN) {
        let after_begin = &rest[start + BEGIN.len()..];
        let label_end = after_begin
            .find("-----")
            .ok_or_else(|| BadKey("a PEM BEGIN line is not terminated by -----".into()))?;
        let label = &after_begin[..label_end];
        let end_line = format!("-----END {label}-----");
        let end = rest[start..].find(&end_line).ok_or_else(|| {
            BadKey(format!(
                "the PEM block {label:?} has no matching {end_line} line"
            ))
        })? + start
            + end_line.len();
        blocks.push((label, &text[offset + start..offset + end]));
        offset += end;
        rest = &rest[end..];
    }
    Ok(blocks)
}

/// Keys from a JSON Web Key Set (`{"keys": [...]}`), as published by Supabase or any OpenID
/// provider at `/.well-known/jwks.json`. Keys marked for encryption (`"use": "enc"`) are skipped; a
/// token's `kid` header picks among the rest.
pub(crate) fn keys_from_jwks(json: &str) -> Result<Vec<VerifyingKey>, BadKey> {
    let set: JwkSet = serde_json::from_str(json).map_err(|err| {
        BadKey(format!(
            "not a JSON Web Key Set of RSA, EC or oct keys ({err})"
        ))
    })?;
    let mut keys = Vec::with_capacity(set.keys.len());
    for (index, jwk) in set.keys.iter().enumerate() {
        if matches!(
            jwk.common.public_key_use,
            Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
        ) {
            continue;
        }
        let name = match &jwk.common.key_id {
            Some(kid) => format!("key {} (kid {kid:?})", index + 1),
            None => format!("key {}", index + 1),
        };
        let alg = jwk_algorithm(jwk).ok_or_else(|| {
            BadKey(format!(
                "{name} is {}; supported are RS256 (RSA), ES256 (EC P-256) and HS256 (oct) keys",
                describe_jwk(jwk)
            ))
        })?;
        let key = DecodingKey::from_jwk(jwk).map_err(|err| BadKey(format!("{name}: {err}")))?;
        if alg == SigningAlg::Hs256 && key.as_bytes().len() < MIN_SECRET_BYTES {
            return Err(BadKey(format!(
                "{name} is an HS256 secret of {} bytes; at least {MIN_SECRET_BYTES} are required",
                key.as_bytes().len()
            )));
        }
        let key = VerifyingKey {
            alg,
            kid: jwk.common.key_id.clone(),
            key,
        };
        probe(&key).map_err(|why| BadKey(format!("{name}: {why}")))?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(BadKey("the key set has no signing keys".into()));
    }
    Ok(keys)
}

/// The algorithm a JWK verifies: from its type and curve, and its `alg` when it names one.
fn jwk_algorithm(jwk: &Jwk) -> Option<SigningAlg> {
    let alg = jwk.common.key_algorithm;
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) if matches!(alg, None | Some(KeyAlgorithm::RS256)) => {
            Some(SigningAlg::Rs256)
        }
        AlgorithmParameters::EllipticCurve(ec)
            if ec.curve == EllipticCurve::P256
                && matches!(alg, None | Some(KeyAlgorithm::ES256)) =>
        {
            Some(SigningAlg::Es256)
        }
        AlgorithmParameters::OctetKey(_) if matches!(alg, None | Some(KeyAlgorithm::HS256)) => {
            Some(SigningAlg::Hs256)
        }
        _ => None,
    }
}

fn describe_jwk(jwk: &Jwk) -> String {
    let kind = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => "an RSA key".to_owned(),
        AlgorithmParameters::EllipticCurve(ec) => format!("an EC key on {:?}", ec.curve),
        AlgorithmParameters::OctetKey(_) => "a symmetric (oct) key".to_owned(),
        AlgorithmParameters::OctetKeyPair(okp) => format!("an OKP key on {:?}", okp.curve),
    };
    match jwk.common.key_algorithm {
        Some(alg) => format!("{kind} for {alg:?}"),
        None => kind,
    }
}

/// Makes the crypto backend load the key once, so that a malformed key (an EC point off the curve,
/// say) fails start-up rather than every request. The signature is garbage on purpose: only an
/// error, not `false`, means the key itself is unusable.
fn probe(key: &VerifyingKey) -> Result<(), String> {
    jsonwebtoken::crypto::verify("AA", b"probe", &key.key, key.alg.algorithm())
        .map(|_| ())
        .map_err(|err| format!("not a usable {} key ({err})", key.alg.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_PUBLIC: &str = include_str!("../../../tests/fixtures/jwt/rsa-public.pem");
    const RSA2_PUBLIC: &str = include_str!("../../../tests/fixtures/jwt/rsa2-public.pem");
    const EC_PUBLIC: &str = include_str!("../../../tests/fixtures/jwt/ec-public.pem");
    const EC384_PUBLIC: &str = include_str!("../../../tests/fixtures/jwt/ec384-public.pem");
    const RSA_PRIVATE: &str = include_str!("../../../tests/fixtures/jwt/rsa-private.pem");

    fn algs(keys: &[VerifyingKey]) -> Vec<SigningAlg> {
        keys.iter().map(|key| key.alg).collect()
    }

    #[test]
    fn pem_public_keys_are_recognised_by_type() {
        assert_eq!(
            algs(&keys_from_pem(RSA_PUBLIC).unwrap()),
            [SigningAlg::Rs256]
        );
        assert_eq!(
            algs(&keys_from_pem(EC_PUBLIC).unwrap()),
            [SigningAlg::Es256]
        );
    }

    #[test]
    fn a_pem_file_may_hold_several_keys() {
        let text = format!("# current\n{RSA_PUBLIC}\n# next\n{RSA2_PUBLIC}{EC_PUBLIC}");
        assert_eq!(
            algs(&keys_from_pem(&text).unwrap()),
            [SigningAlg::Rs256, SigningAlg::Rs256, SigningAlg::Es256]
        );
    }

    #[test]
    fn pem_private_keys_and_other_curves_are_refused_with_the_fix() {
        let err = keys_from_pem(RSA_PRIVATE).unwrap_err().to_string();
        assert!(
            err.contains("private key") && err.contains("-pubout"),
            "{err}"
        );
        let err = keys_from_pem(EC384_PUBLIC).unwrap_err().to_string();
        assert!(err.contains("P-256"), "{err}");
        let err = keys_from_pem("not a key").unwrap_err().to_string();
        assert!(err.contains("no PEM block"), "{err}");
        let truncated = &RSA_PUBLIC[..RSA_PUBLIC.find("-----END").unwrap()];
        let err = keys_from_pem(truncated).unwrap_err().to_string();
        assert!(err.contains("no matching"), "{err}");
    }

    #[test]
    fn jwks_keys_keep_their_kid_and_skip_encryption_keys() {
        let json = r#"{"keys": [
            {"kty": "oct", "kid": "hs", "k": "c2x1aWNlLXRlc3Qtc2VjcmV0LW9mLWF0LWxlYXN0LTMyLWJ5dGVz"},
            {"kty": "oct", "kid": "enc", "use": "enc", "k": "c2hvcnQ"}
        ]}"#;
        let keys = keys_from_jwks(json).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].alg, SigningAlg::Hs256);
        assert_eq!(keys[0].kid.as_deref(), Some("hs"));
    }

    #[test]
    fn jwks_refuses_unsupported_and_weak_keys() {
        let p384 =
            r#"{"keys": [{"kty": "EC", "crv": "P-384", "kid": "k1", "x": "AA", "y": "AA"}]}"#;
        let err = keys_from_jwks(p384).unwrap_err().to_string();
        assert!(err.contains("kid \"k1\"") && err.contains("P384"), "{err}");
        let rs512 = r#"{"keys": [{"kty": "RSA", "alg": "RS512", "n": "AQAB", "e": "AQAB"}]}"#;
        let err = keys_from_jwks(rs512).unwrap_err().to_string();
        assert!(err.contains("RS512"), "{err}");
        let short = r#"{"keys": [{"kty": "oct", "k": "c2hvcnQ"}]}"#;
        let err = keys_from_jwks(short).unwrap_err().to_string();
        assert!(err.contains("at least 32"), "{err}");
        let err = keys_from_jwks(r#"{"keys": []}"#).unwrap_err().to_string();
        assert!(err.contains("no signing keys"), "{err}");
        let err = keys_from_jwks("[]").unwrap_err().to_string();
        assert!(err.contains("not a JSON Web Key Set"), "{err}");
    }

    #[test]
    fn jwks_ec_point_off_the_curve_fails_at_load() {
        let bad = r#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}]}"#;
        let err = keys_from_jwks(bad).unwrap_err().to_string();
        assert!(err.contains("not a usable ES256 key"), "{err}");
    }

    #[test]
    fn key_file_errors_name_the_flag_and_path() {
        let missing = Path::new("/nonexistent/sluice/keys.pem");
        let err = read_key_file(missing, PUBLIC_KEY_FILE_FLAG, keys_from_pem).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("SLUICE_JWT_PUBLIC_KEY_FILE"), "{message}");
        assert!(
            message.contains("/nonexistent/sluice/keys.pem"),
            "{message}"
        );
    }

    #[test]
    fn debug_shows_no_key_material() {
        let keys = keys_from_pem(EC_PUBLIC).unwrap();
        let debug = format!("{keys:?}");
        assert_eq!(debug, "[VerifyingKey { alg: Es256, kid: None, .. }]");
    }
}
