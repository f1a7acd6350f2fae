//! Asymmetric signing keys for the tokens `/auth/v1` issues, read from a JSON Web Key file with
//! private keys, as Supabase's `signing_keys.json` (`SLUICE_AUTH_JWT_SIGNING_KEY_FILE`, GoTrue's
//! `GOTRUE_JWT_KEYS`): a JSON array of JWKs, or a `{"keys": [...]}` set.
//!
//! Rotation: the file holds several keys at once. The one whose `key_ops` names `sign` signs new
//! tokens (if no key says, the first private key does); every key verifies, so tokens signed by
//! the previous key stay valid until it is removed from the file. Keys may be private (RS256 with
//! `n, e, d, p, q`, ES256 on P-256 with `x, y, d`) or public only (a key being retired, or the next
//! one published before it signs). Every key needs a `kid`: tokens name their key by it.
//!
//! What is published at `/.well-known/jwks.json` is rebuilt from each key's public half only
//! (derived from the private key, never copied from the file), so a private parameter cannot
//! leak through an unexpected field.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey};
use serde_json::{json, Map, Value};

use super::keyset::{keys_from_jwks, BadKey, VerifyingKey};

/// The key that signs, as jsonwebtoken takes it.
#[derive(Clone)]
pub struct SigningKey {
    pub alg: Algorithm,
    pub kid: String,
    pub(crate) key: EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A signing key file, read: the signer, the keys that verify, and the public set to publish.
#[derive(Debug, Clone)]
pub struct SigningKeys {
    pub signer: SigningKey,
    pub verifying: Vec<VerifyingKey>,
    /// `{"keys": [...]}` of public JWKs.
    pub jwks: Value,
}

/// Whether the text of a signing key file is JSON (a JWK file) rather than PEM.
pub fn is_jwk_file(text: &str) -> bool {
    matches!(text.trim_start().chars().next(), Some('[' | '{'))
}

/// Reads a signing key file's JSON.
pub fn signing_keys_from_json(text: &str) -> Result<SigningKeys, BadKey> {
    let value: Value =
        serde_json::from_str(text).map_err(|err| BadKey::new(format!("not JSON ({err})")))?;
    let keys = match value {
        Value::Array(keys) => keys,
        Value::Object(mut set) => match set.remove("keys") {
            Some(Value::Array(keys)) => keys,
            _ => {
                return Err(BadKey::new(
                    "expected a JSON array of JWKs or {\"keys\": [...]}",
                ))
            }
        },
        _ => {
            return Err(BadKey::new(
                "expected a JSON array of JWKs or {\"keys\": [...]}",
            ))
        }
    };
    if keys.is_empty() {
        return Err(BadKey::new("the file holds no keys"));
    }
    let mut parsed = Vec::with_capacity(keys.len());
    for (index, jwk) in keys.iter().enumerate() {
        let jwk = jwk
            .as_object()
            .ok_or_else(|| BadKey::new(format!("key {} is not a JSON object", index + 1)))?;
        let kid = jwk
            .get("kid")
            .and_then(Value::as_str)
            .filter(|kid| !kid.is_empty())
            .ok_or_else(|| {
                BadKey::new(format!(
                    "key {} has no \"kid\"; every signing key needs one",
                    index + 1
                ))
            })?;
        let key = parse_key(jwk, kid).map_err(|why| BadKey::new(format!("key {kid:?}: {why}")))?;
        if parsed.iter().any(|other: &ParsedKey| other.kid == kid) {
            return Err(BadKey::new(format!("two keys have the kid {kid:?}")));
        }
        parsed.push(key);
    }
    let marked: Vec<&ParsedKey> = parsed.iter().filter(|key| key.marked_sign).collect();
    let signer = match marked.as_slice() {
        [one] => *one,
        [] => parsed
            .iter()
            .find(|key| key.private.is_some())
            .ok_or_else(|| {
                BadKey::new("no key has a private part (\"d\"), so none can sign tokens")
            })?,
        _ => {
            return Err(BadKey::new(
                "several keys name \"sign\" in key_ops; exactly one key signs",
            ))
        }
    };
    let signing = signer.private.clone().ok_or_else(|| {
        BadKey::new(format!(
            "key {:?} is marked to sign but has no private part (\"d\")",
            signer.kid
        ))
    })?;
    let jwks = json!({"keys": parsed.iter().map(|key| key.public.clone()).collect::<Vec<_>>()});
    let verifying = keys_from_jwks(&jwks.to_string())?;
    Ok(SigningKeys {
        signer: SigningKey {
            alg: signer.alg,
            kid: signer.kid.clone(),
            key: signing,
        },
        verifying,
        jwks,
    })
}

/// The public JWK of a PEM private key (RSA in PKCS#1 or PKCS#8, EC P-256 in SEC1 or PKCS#8), as
/// GoTrue publishes its signing key: `kid` when one is configured, `use: sig`, `key_ops: [verify]`.
/// Only the public half is built, from the parsed key.
pub fn public_jwk_from_pem(pem: &str, kid: Option<&str>) -> Result<Value, BadKey> {
    use p256::pkcs8::DecodePrivateKey as _;
    use rsa::pkcs1::DecodeRsaPrivateKey as _;
    let mut jwk = if let Some(key) = RsaPrivateKey::from_pkcs1_pem(pem)
        .ok()
        .or_else(|| RsaPrivateKey::from_pkcs8_pem(pem).ok())
    {
        json!({
            "kty": "RSA", "alg": "RS256", "use": "sig", "key_ops": ["verify"],
            "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        })
    } else if let Some(secret) = p256::SecretKey::from_pkcs8_pem(pem)
        .ok()
        .or_else(|| p256::SecretKey::from_sec1_pem(pem).ok())
    {
        let point = secret.public_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(BadKey::new("the EC key has no affine coordinates"));
        };
        json!({
            "kty": "EC", "alg": "ES256", "use": "sig", "key_ops": ["verify"], "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        })
    } else {
        return Err(BadKey::new(
            "not an RSA or EC P-256 private key in PEM (PKCS#1, SEC1 or PKCS#8)",
        ));
    };
    if let Some(kid) = kid.filter(|kid| !kid.is_empty()) {
        jwk["kid"] = json!(kid);
    }
    Ok(jwk)
}

struct ParsedKey {
    kid: String,
    alg: Algorithm,
    marked_sign: bool,
    private: Option<EncodingKey>,
    /// The public JWK, rebuilt.
    public: Value,
}

fn parse_key(jwk: &Map<String, Value>, kid: &str) -> Result<ParsedKey, String> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let number = |name: &str| -> Result<Option<BigUint>, String> {
        text(name)
            .map(|value| {
                URL_SAFE_NO_PAD
                    .decode(value.trim_end_matches('='))
                    .map(|bytes| BigUint::from_bytes_be(&bytes))
                    .map_err(|_| format!("\"{name}\" is not base64url"))
            })
            .transpose()
    };
    let ops: Vec<&str> = jwk
        .get("key_ops")
        .and_then(Value::as_array)
        .map(|ops| ops.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if text("use").is_some_and(|usage| usage != "sig") {
        return Err("\"use\" must be \"sig\"".into());
    }
    let marked_sign = ops.contains(&"sign");
    let (alg, private, public) = match text("kty") {
        Some("RSA") => {
            if text("alg").is_some_and(|alg| alg != "RS256") {
                return Err("an RSA key must be for RS256".into());
            }
            let n = number("n")?.ok_or("an RSA key needs \"n\"")?;
            let e = number("e")?.ok_or("an RSA key needs \"e\"")?;
            let (private, n, e) = match number("d")? {
                None => (None, n, e),
                Some(d) => {
                    let primes = [number("p")?, number("q")?]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>();
                    let key = RsaPrivateKey::from_components(n, e, d, primes)
                        .map_err(|err| format!("not a valid RSA private key ({err})"))?;
                    key.validate()
                        .map_err(|err| format!("not a valid RSA private key ({err})"))?;
                    let der = key
                        .to_pkcs1_der()
                        .map_err(|err| format!("could not encode the RSA key ({err})"))?;
                    let (n, e) = (key.n().clone(), key.e().clone());
                    (Some(EncodingKey::from_rsa_der(der.as_bytes())), n, e)
                }
            };
            let public = json!({
                "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "key_ops": ["verify"],
                "n": URL_SAFE_NO_PAD.encode(n.to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(e.to_bytes_be()),
            });
            (Algorithm::RS256, private, public)
        }
        Some("EC") => {
            if text("crv") != Some("P-256") || text("alg").is_some_and(|alg| alg != "ES256") {
                return Err("an EC key must be on P-256, for ES256".into());
            }
            let coordinate = |name: &str| -> Result<Vec<u8>, String> {
                let value = text(name).ok_or(format!("an EC key needs \"{name}\""))?;
                URL_SAFE_NO_PAD
                    .decode(value.trim_end_matches('='))
                    .map_err(|_| format!("\"{name}\" is not base64url"))
            };
            let (x, y) = (coordinate("x")?, coordinate("y")?);
            let private = match text("d") {
                None => None,
                Some(_) => {
                    let d = coordinate("d")?;
                    let secret = p256::SecretKey::from_slice(&d)
                        .map_err(|_| "\"d\" is not a P-256 private key".to_owned())?;
                    let point = secret.public_key().to_encoded_point(false);
                    if point.x().map(|c| &c[..]) != Some(&x[..])
                        || point.y().map(|c| &c[..]) != Some(&y[..])
                    {
                        return Err("\"x\" and \"y\" are not the public key of \"d\"".into());
                    }
                    let der = secret
                        .to_pkcs8_der()
                        .map_err(|err| format!("could not encode the EC key ({err})"))?;
                    Some(EncodingKey::from_ec_der(der.as_bytes()))
                }
            };
            let public = json!({
                "kty": "EC", "kid": kid, "alg": "ES256", "use": "sig", "key_ops": ["verify"],
                "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&x), "y": URL_SAFE_NO_PAD.encode(&y),
            });
            (Algorithm::ES256, private, public)
        }
        Some(other) => {
            return Err(format!(
                "kty {other:?} is not supported; signing keys are RSA (RS256) or EC P-256 \
                 (ES256); HS256 tokens are signed with SLUICE_JWT_SECRET"
            ))
        }
        None => return Err("no \"kty\"".into()),
    };
    Ok(ParsedKey {
        kid: kid.to_owned(),
        alg,
        marked_sign,
        private,
        public,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA: &str = include_str!("../../../tests/fixtures/jwt/rsa-private.jwk.json");
    const EC: &str = include_str!("../../../tests/fixtures/jwt/ec-private.jwk.json");
    const SUPABASE_FILE: &str = include_str!("../../../tests/fixtures/jwt/signing_keys.json");

    fn with(jwk: &str, extra: Value) -> Value {
        let mut key: Value = serde_json::from_str(jwk).unwrap();
        for (name, value) in extra.as_object().unwrap() {
            key[name] = value.clone();
        }
        key
    }

    #[test]
    fn the_key_marked_sign_signs_and_all_verify() {
        let keys = signing_keys_from_json(SUPABASE_FILE).unwrap();
        assert_eq!(keys.signer.kid, "rsa-1");
        assert_eq!(keys.signer.alg, Algorithm::RS256);
        assert_eq!(keys.verifying.len(), 2);
        let text = json!([with(RSA, json!({})), with(EC, json!({"key_ops": ["sign"]}))]);
        let keys = signing_keys_from_json(&json!({ "keys": text }).to_string()).unwrap();
        assert_eq!(keys.signer.kid, "ec-1");
        assert_eq!(keys.signer.alg, Algorithm::ES256);
    }

    #[test]
    fn the_published_set_has_no_private_parameter() {
        let keys = signing_keys_from_json(SUPABASE_FILE).unwrap();
        let published = keys.jwks.to_string();
        for private in ["\"d\"", "\"p\"", "\"q\"", "\"dp\"", "\"dq\"", "\"qi\""] {
            assert!(!published.contains(private), "{published}");
        }
        let kids: Vec<&str> = keys.jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, ["rsa-1", "ec-1"]);
    }

    #[test]
    fn a_pem_key_publishes_its_public_half_with_its_kid() {
        use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
        let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        let jwk = public_jwk_from_pem(&pem, Some("k1")).unwrap();
        let point = secret.public_key().to_encoded_point(false);
        assert_eq!(jwk["kid"], "k1");
        assert_eq!(jwk["alg"], "ES256");
        assert_eq!(jwk["x"], URL_SAFE_NO_PAD.encode(point.x().unwrap()));
        assert!(jwk.get("d").is_none());
        // The published key verifies what the PEM key signs.
        let set = keys_from_jwks(&json!({ "keys": [jwk] }).to_string()).unwrap();
        assert_eq!(set.len(), 1);
        let rsa: Value = serde_json::from_str(RSA).unwrap();
        let number = |name: &str| {
            BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(rsa[name].as_str().unwrap()).unwrap())
        };
        let key = RsaPrivateKey::from_components(
            number("n"),
            number("e"),
            number("d"),
            vec![number("p"), number("q")],
        )
        .unwrap();
        let pem = key.to_pkcs1_pem(LineEnding::LF).unwrap();
        let jwk = public_jwk_from_pem(&pem, None).unwrap();
        assert_eq!(jwk["n"], rsa["n"]);
        assert!(jwk.get("kid").is_none() && jwk.get("d").is_none());
        assert!(public_jwk_from_pem("-----BEGIN NOTHING-----", None).is_err());
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let err = |text: String| signing_keys_from_json(&text).unwrap_err().to_string();
        let no_kid = with(RSA, json!({"kid": null}));
        assert!(err(json!([no_kid]).to_string()).contains("no \"kid\""));
        let both = json!([
            with(RSA, json!({"key_ops": ["sign"]})),
            with(EC, json!({"key_ops": ["sign"]}))
        ]);
        assert!(err(both.to_string()).contains("exactly one"));
        let mut public: Value = serde_json::from_str(EC).unwrap();
        public.as_object_mut().unwrap().remove("d");
        assert!(err(json!([public]).to_string()).contains("private part"));
        let mut wrong = with(EC, json!({}));
        wrong["x"] = with(RSA, json!({}))["e"].clone();
        assert!(err(json!([wrong]).to_string()).contains("not the public key"));
        let oct = json!([{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]);
        assert!(err(oct.to_string()).contains("SLUICE_JWT_SECRET"));
        let twice = json!([with(RSA, json!({})), with(RSA, json!({}))]);
        assert!(err(twice.to_string()).contains("two keys"));
        assert!(err("[]".into()).contains("no keys"));
        assert!(is_jwk_file(" [") && !is_jwk_file("-----BEGIN"));
    }
}
