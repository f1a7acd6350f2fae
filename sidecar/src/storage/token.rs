//! Signed URLs: HS256 tokens, signed with the JWT secret as Supabase signs them, that name the one
//! object they open (`url`: `<bucket>/<name>`) and what they allow (`typ`). Neither kind can pass
//! as an access token: they carry no `role`, and access tokens carry no `typ`.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::StorageError;

const DOWNLOAD: &str = "storage-download";
const UPLOAD: &str = "storage-upload";
/// How long a signed upload URL stays valid (Supabase: two hours).
pub const UPLOAD_TTL_SECONDS: u64 = 2 * 60 * 60;

#[derive(Debug, Serialize, Deserialize)]
pub struct UrlClaims {
    pub url: String,
    pub typ: String,
    pub iat: u64,
    pub exp: u64,
    /// Upload tokens: who uploads (the signer's `sub`), whether it may overwrite, and the id
    /// recorded when it is used (once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default)]
    pub upsert: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Download tokens of `/render/image/sign/...`: the transformation they allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<super::transform::Transform>,
}

pub struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Signer {
    pub fn new(secret: &[u8]) -> Signer {
        Signer {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    fn sign(&self, claims: &UrlClaims) -> Result<String, StorageError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|err| StorageError::Internal(format!("signing a URL failed: {err}")))
    }

    pub fn sign_download(
        &self,
        url: &str,
        expires_in: u64,
        transform: Option<super::transform::Transform>,
    ) -> Result<String, StorageError> {
        let iat = now();
        self.sign(&UrlClaims {
            url: url.to_owned(),
            typ: DOWNLOAD.to_owned(),
            iat,
            exp: iat.saturating_add(expires_in),
            owner: None,
            upsert: false,
            jti: None,
            transform,
        })
    }

    pub fn sign_upload(
        &self,
        url: &str,
        owner: Option<String>,
        upsert: bool,
    ) -> Result<String, StorageError> {
        let iat = now();
        let jti = super::new_id()?;
        self.sign(&UrlClaims {
            url: url.to_owned(),
            typ: UPLOAD.to_owned(),
            iat,
            exp: iat + UPLOAD_TTL_SECONDS,
            owner,
            upsert,
            jti: Some(jti),
            transform: None,
        })
    }

    /// The claims of a download token for exactly `url`.
    pub fn verify_download(&self, token: &str, url: &str) -> Result<UrlClaims, StorageError> {
        self.verify(token, url, DOWNLOAD)
    }

    pub fn verify_upload(&self, token: &str, url: &str) -> Result<UrlClaims, StorageError> {
        self.verify(token, url, UPLOAD)
    }

    fn verify(&self, token: &str, url: &str, typ: &str) -> Result<UrlClaims, StorageError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        let claims = jsonwebtoken::decode::<UrlClaims>(token, &self.decoding, &validation)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    StorageError::InvalidJwt("jwt expired".to_owned())
                }
                _ => StorageError::InvalidJwt("invalid signature".to_owned()),
            })?
            .claims;
        if claims.typ != typ || claims.url != url {
            return Err(StorageError::InvalidSignature);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_only_its_own_object_and_kind() {
        let signer = Signer::new(b"a-secret-that-is-long-enough-for-tests");
        let token = signer.sign_download("b/a.txt", 60, None).unwrap();
        assert!(signer.verify_download(&token, "b/a.txt").is_ok());
        assert!(signer.verify_download(&token, "b/other.txt").is_err());
        assert!(signer.verify_upload(&token, "b/a.txt").is_err());
        let other = Signer::new(b"another-secret-that-is-long-enough!!");
        assert!(other.verify_download(&token, "b/a.txt").is_err());
    }
}
