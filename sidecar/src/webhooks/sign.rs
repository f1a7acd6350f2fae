//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): the signed content is
//! `{webhook-id}.{webhook-timestamp}.{body}`, the key the base64 after a secret's `whsec_`, the
//! signature `v1,` and the base64 of its HMAC-SHA256. With several secrets (during a rotation) the
//! `webhook-signature` header carries one signature per secret, separated by spaces, and a receiver
//! accepts any that verifies.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SecretError {
    #[error("a webhook secret starts with \"whsec_\"")]
    Prefix,
    #[error("a webhook secret is \"whsec_\" and base64")]
    Base64,
}

/// The HMAC key of a `whsec_` secret.
pub(crate) fn key(secret: &str) -> Result<Vec<u8>, SecretError> {
    let encoded = secret.strip_prefix(PREFIX).ok_or(SecretError::Prefix)?;
    STANDARD.decode(encoded).map_err(|_| SecretError::Base64)
}

/// One `v1,<base64>` signature of a message with this key.
pub(crate) fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one signature per key, space-separated.
pub(crate) fn header(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|key| sign(key, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's test vector (also in every reference library's tests).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &str = r#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_specifications_test_vector_signs_as_published() {
        let key = key(SECRET).unwrap();
        assert_eq!(sign(&key, ID, TIMESTAMP, BODY.as_bytes()), SIGNATURE);
    }

    #[test]
    fn a_changed_id_timestamp_or_body_changes_the_signature() {
        let key = key(SECRET).unwrap();
        assert_ne!(
            sign(&key, "msg_other", TIMESTAMP, BODY.as_bytes()),
            SIGNATURE
        );
        assert_ne!(sign(&key, ID, TIMESTAMP + 1, BODY.as_bytes()), SIGNATURE);
        assert_ne!(sign(&key, ID, TIMESTAMP, b"{}"), SIGNATURE);
    }

    #[test]
    fn rotation_sends_one_signature_per_secret() {
        let keys = [
            key(SECRET).unwrap(),
            key("whsec_AAAAAAAAAAAAAAAAAAAAAA==").unwrap(),
        ];
        let header = header(&keys, ID, TIMESTAMP, BODY.as_bytes());
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], SIGNATURE);
        assert!(parts[1].starts_with("v1,") && parts[1] != SIGNATURE);
    }

    #[test]
    fn secrets_must_be_whsec_and_base64() {
        assert_eq!(key("MfKQ9r8G"), Err(SecretError::Prefix));
        assert_eq!(key("whsec_not base64!"), Err(SecretError::Base64));
    }
}
