//! PKCE (`flowType: 'pkce'`): GoTrue's flow state. A flow starts with the client's code challenge
//! (`create_flow_state`); when the user has proved who they are (a mailed link followed, an OAuth
//! callback), the flow gets the user and a one-time auth code (`issue_auth_code`), which the
//! browser brings back as `?code=`; `POST /token?grant_type=pkce` (`exchange_auth_code`) trades it,
//! once, with the code verifier that only the client that started the flow holds, for a session.
//!
//! The API for every flow that has PKCE (magic link, sign-up and recovery mail here; OAuth
//! callbacks too):
//! - `Pkce::from_request(code_challenge, code_challenge_method)`: the request's challenge, or
//!   `None` for the implicit flow;
//! - `Accounts::create_flow_state(&pkce, provider_type, authentication_method, user_id,
//!   link_hash)`: the flow's id (`link_hash` ties it to a mailed token; OAuth passes `None`);
//! - `Accounts::issue_auth_code(flow_id, user_id)`: the auth code for the redirect;
//! - `Accounts::exchange_auth_code(client, auth_code, code_verifier)`: the session, started with
//!   the flow's `authentication_method` as its `amr` entry.
//!
//! Auth codes are 256-bit random tokens stored as SHA-256 hashes, valid for five minutes and used
//! up by the first exchange, right or wrong.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::session::Session;
use super::store_otp;
use super::tokens::{random_token, token_hash};
use super::{AccountError, Accounts, Client};

/// How long an auth code may wait for its exchange (GoTrue's flow-state expiry).
pub const AUTH_CODE_VALIDITY: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeMethod {
    S256,
    Plain,
}

impl ChallengeMethod {
    fn as_str(self) -> &'static str {
        match self {
            ChallengeMethod::S256 => "s256",
            ChallengeMethod::Plain => "plain",
        }
    }
}

/// A client's code challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkce {
    pub challenge: String,
    pub method: ChallengeMethod,
}

impl Pkce {
    /// `code_challenge` and `code_challenge_method` as a request carries them: both or neither.
    pub fn from_request(
        challenge: Option<String>,
        method: Option<String>,
    ) -> Result<Option<Pkce>, AccountError> {
        let challenge = challenge.filter(|c| !c.is_empty());
        let method = method.filter(|m| !m.is_empty());
        let (challenge, method) = match (challenge, method) {
            (None, None) => return Ok(None),
            (Some(challenge), Some(method)) => (challenge, method),
            _ => {
                return Err(AccountError::Validation(
                    "PKCE flow requires code_challenge_method and code_challenge",
                ))
            }
        };
        let method = match method.to_ascii_lowercase().as_str() {
            "s256" => ChallengeMethod::S256,
            "plain" => ChallengeMethod::Plain,
            _ => {
                return Err(AccountError::Validation(
                    "code challenge method not supported",
                ))
            }
        };
        let valid = (43..=128).contains(&challenge.len())
            && challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        if !valid {
            return Err(AccountError::Validation(
                "code challenge has to be between 43 and 128 characters",
            ));
        }
        Ok(Some(Pkce { challenge, method }))
    }

    /// Whether `verifier` answers this challenge, compared in constant time.
    pub fn verifies(&self, verifier: &str) -> bool {
        let expected = match self.method {
            ChallengeMethod::S256 => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
            ChallengeMethod::Plain => verifier.to_owned(),
        };
        constant_time_eq(expected.as_bytes(), self.challenge.as_bytes())
    }
}

/// Equal bytes, in a time that depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    std::hint::black_box(diff) == 0
}

impl Accounts {
    /// Starts a PKCE flow for `provider_type` (`magiclink`, `email`, `recovery`, `github`...);
    /// its session will carry `authentication_method` in `amr`.
    pub async fn create_flow_state(
        &self,
        pkce: &Pkce,
        provider_type: &str,
        authentication_method: &str,
        user_id: Option<Uuid>,
        link_hash: Option<&str>,
    ) -> Result<Uuid, AccountError> {
        Ok(store_otp::create_flow_state(
            &self.pool,
            provider_type,
            authentication_method,
            &pkce.challenge,
            pkce.method.as_str(),
            user_id,
            link_hash,
        )
        .await?)
    }

    /// The flow reached `user_id`: its auth code, for the redirect (`?code=`).
    pub async fn issue_auth_code(
        &self,
        flow_id: Uuid,
        user_id: Uuid,
    ) -> Result<String, AccountError> {
        let code = random_token()?;
        store_otp::issue_auth_code(&self.pool, Some(flow_id), None, user_id, &token_hash(&code))
            .await?
            .ok_or(AccountError::FlowStateNotFound)?;
        Ok(code)
    }

    /// The auth code of the flow waiting for the mailed link whose token hashes to `link_hash`,
    /// if one is.
    pub(super) async fn auth_code_for_link(
        &self,
        link_hash: &str,
        user_id: Uuid,
    ) -> Result<Option<String>, AccountError> {
        let code = random_token()?;
        let issued = store_otp::issue_auth_code(
            &self.pool,
            None,
            Some(link_hash),
            user_id,
            &token_hash(&code),
        )
        .await?;
        Ok(issued.map(|_| code))
    }

    /// `POST /token?grant_type=pkce`.
    pub async fn exchange_auth_code(
        &self,
        client: &Client,
        auth_code: &str,
        code_verifier: &str,
    ) -> Result<Session, AccountError> {
        if auth_code.is_empty() || code_verifier.is_empty() {
            return Err(AccountError::Validation(
                "invalid request: both auth code and code verifier should be non-empty",
            ));
        }
        self.limiter.check("pkce", &client.ip, None)?;
        let flow = store_otp::take_flow_state(
            &self.pool,
            &token_hash(auth_code),
            AUTH_CODE_VALIDITY.as_secs_f64(),
        )
        .await?
        .ok_or(AccountError::FlowStateNotFound)?;
        if flow["expired"].as_bool().unwrap_or(true) {
            return Err(AccountError::FlowStateExpired);
        }
        let method = match flow["code_challenge_method"].as_str() {
            Some("plain") => ChallengeMethod::Plain,
            _ => ChallengeMethod::S256,
        };
        let pkce = Pkce {
            challenge: flow["code_challenge"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            method,
        };
        if !pkce.verifies(code_verifier) {
            return Err(AccountError::BadCodeVerifier);
        }
        let user_id = flow["user_id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .ok_or(AccountError::FlowStateNotFound)?;
        let method = flow["authentication_method"].as_str().unwrap_or("pkce");
        self.start(client, user_id, method).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_checked_as_rfc_7636_says() {
        // RFC 7636, appendix B.
        let pkce = Pkce::from_request(
            Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            Some("S256".into()),
        )
        .unwrap()
        .unwrap();
        assert!(pkce.verifies("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!pkce.verifies("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj"));
        assert_eq!(Pkce::from_request(None, None).unwrap(), None);
        assert!(Pkce::from_request(Some("x".repeat(43)), None).is_err());
        assert!(Pkce::from_request(Some("short".into()), Some("plain".into())).is_err());
        assert!(Pkce::from_request(Some("x".repeat(43)), Some("md5".into())).is_err());
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
