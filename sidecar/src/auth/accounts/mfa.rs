//! MFA with TOTP, as GoTrue's `/factors`: enroll a factor (its secret, `otpauth://` URI and QR
//! code), challenge it, verify a code (the session becomes `aal2`, `totp` joins its `amr`), unenroll;
//! and the service key's view of a user's factors.
//!
//! Codes are RFC 6238 TOTP (SHA-1, 6 digits, 30 s), computed by `totp-rs`. A code is accepted in
//! its own 30 s step or the one before or after (clock skew), compared in constant time, and only
//! once: the database keeps the last accepted step per factor and refuses that step and any older
//! one (`auth.sluice_mfa_verified`). Every verification attempt counts toward a limit per user (the
//! per-email limit of the other sign-in steps), so six digits cannot be brute-forced.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use qrcode::render::svg;
use qrcode::QrCode;
use serde_json::{json, Value};
use totp_rs::{Algorithm, Secret, TOTP};
use uuid::Uuid;

use super::flow_state::constant_time_eq;
use super::session::Session;
use super::store;
use super::tokens::{random_token, token_hash, IssueError};
use super::{AccountError, Accounts, Caller, Client};

/// How long a challenge can be answered (GoTrue's `MFA_CHALLENGE_EXPIRY_DURATION` default).
const CHALLENGE_EXPIRY: Duration = Duration::from_secs(300);
/// Factors a user may have (GoTrue's `MFA_MAX_ENROLLED_FACTORS` default).
const MAX_FACTORS: i32 = 10;
const STEP: u64 = 30;

/// What `POST /factors` answers.
pub struct Enrolled {
    pub factor: Value,
    pub secret: String,
    pub uri: String,
    /// An SVG document; supabase-js turns it into a data URI itself.
    pub qr_code: String,
}

/// A TOTP of `secret` (raw bytes), labelled for authenticator apps.
fn totp(secret: Vec<u8>, issuer: &str, account: &str) -> Result<TOTP, AccountError> {
    // `:` separates issuer and account in the label; the crate refuses it in either.
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP,
        secret,
        Some(issuer.replace(':', "")),
        account.replace(':', ""),
    )
    .map_err(|_| AccountError::Validation("Invalid TOTP parameters"))
}

/// The step of `code` among the current step and its neighbours, if it matches one.
fn matching_step(totp: &TOTP, code: &str, now: u64) -> Option<u64> {
    let current = now / STEP;
    [current.saturating_sub(1), current, current + 1]
        .into_iter()
        .find(|step| constant_time_eq(totp.generate(step * STEP).as_bytes(), code.as_bytes()))
}

fn unix_now() -> Result<u64, AccountError> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| IssueError::Clock)?
        .as_secs())
}

/// `{"error": code}` from the database as the client's error.
fn refusal(outcome: &Value) -> Option<AccountError> {
    Some(match outcome["error"].as_str()? {
        "mfa_factor_name_conflict" => AccountError::MfaFactorNameConflict,
        "too_many_enrolled_mfa_factors" => AccountError::TooManyFactors,
        "mfa_factor_not_found" => AccountError::MfaFactorNotFound,
        "mfa_challenge_not_found" => AccountError::MfaChallengeNotFound,
        "mfa_verification_failed" => AccountError::MfaVerificationFailed,
        "session_not_found" => AccountError::SessionNotFound,
        _ => AccountError::UserFromTokenNotFound,
    })
}

impl Accounts {
    /// POST /factors (TOTP).
    pub async fn enroll(
        &self,
        caller: &Caller,
        friendly_name: Option<&str>,
        issuer: Option<&str>,
    ) -> Result<Enrolled, AccountError> {
        let user = self.user(caller).await?;
        let mut raw = vec![0u8; 20];
        getrandom::fill(&mut raw).map_err(|err| IssueError::Random(err.to_string()))?;
        let issuer = issuer
            .filter(|issuer| !issuer.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| host_of(&self.settings.site_url));
        let account = user["email"].as_str().unwrap_or_default();
        let totp = totp(raw, &issuer, account)?;
        let secret = totp.get_secret_base32();
        let factor = store::call_json(
            &self.pool,
            "SELECT auth.sluice_mfa_enroll($1, $2, $3, $4)",
            &[
                &caller.user_id,
                &friendly_name.unwrap_or_default(),
                &secret,
                &MAX_FACTORS,
            ],
        )
        .await?
        .ok_or(AccountError::UserFromTokenNotFound)?;
        if let Some(err) = refusal(&factor) {
            return Err(err);
        }
        let uri = totp.get_url();
        let qr_code = QrCode::new(uri.as_bytes())
            .map_err(|_| AccountError::Validation("The TOTP URI is too long for a QR code"))?
            .render::<svg::Color>()
            .min_dimensions(200, 200)
            .build();
        Ok(Enrolled {
            factor,
            secret,
            uri,
            qr_code,
        })
    }

    /// POST /factors/{id}/challenge: `{id, type, expires_at}`.
    pub async fn challenge(
        &self,
        caller: &Caller,
        client: &Client,
        factor_id: Uuid,
    ) -> Result<Value, AccountError> {
        let challenge = store::call_json(
            &self.pool,
            "SELECT auth.sluice_mfa_challenge($1, $2, $3)",
            &[&caller.user_id, &factor_id, &client.ip],
        )
        .await?
        .ok_or(AccountError::MfaFactorNotFound)?;
        let created = challenge["created_at"].as_u64().unwrap_or_default();
        Ok(json!({
            "id": challenge["id"],
            "type": "totp",
            "expires_at": created + CHALLENGE_EXPIRY.as_secs(),
        }))
    }

    /// POST /factors/{id}/verify: checks `code`; the session becomes aal2 with new tokens.
    /// `amr` is the caller's token's, whose methods the session keeps.
    pub async fn verify_factor(
        &self,
        caller: &Caller,
        client: &Client,
        factor_id: Uuid,
        challenge_id: Uuid,
        code: &str,
        amr: &Value,
    ) -> Result<Session, AccountError> {
        let session_id = caller.session_id.ok_or(AccountError::SessionNotFound)?;
        // Every attempt counts, per user and per address: six digits must not be guessable.
        self.limiter
            .check("mfa_verify", &client.ip, Some(&caller.user_id.to_string()))?;
        let state = store::call_json(
            &self.pool,
            "SELECT auth.sluice_mfa_for_verify($1, $2, $3)",
            &[&caller.user_id, &factor_id, &challenge_id],
        )
        .await?
        .ok_or(AccountError::MfaFactorNotFound)?;
        if let Some(err) = refusal(&state) {
            return Err(err);
        }
        if state["challenge_age"].as_f64().unwrap_or(f64::MAX) > CHALLENGE_EXPIRY.as_secs_f64() {
            return Err(AccountError::MfaChallengeExpired(challenge_id));
        }
        let secret = Secret::Encoded(state["secret"].as_str().unwrap_or_default().to_owned())
            .to_bytes()
            .map_err(|_| AccountError::MfaVerificationFailed)?;
        let totp = totp(secret, "sluice", "")?;
        let step = matching_step(&totp, code.trim(), unix_now()?)
            .ok_or(AccountError::MfaVerificationFailed)?;
        if state["last_used_step"]
            .as_u64()
            .is_some_and(|last| step <= last)
        {
            return Err(AccountError::MfaVerificationFailed);
        }
        // The caller's methods (the database keeps all but `totp` and refreshes, at their times).
        let amr = if amr.is_array() {
            amr.clone()
        } else {
            json!([])
        };
        let refresh_token = random_token()?;
        let step = i64::try_from(step).map_err(|_| IssueError::Clock)?;
        let verified = store::call_json(
            &self.pool,
            "SELECT auth.sluice_mfa_verified($1, $2, $3, $4, $5, $6, $7)",
            &[
                &caller.user_id,
                &factor_id,
                &challenge_id,
                &step,
                &session_id,
                &amr,
                &token_hash(&refresh_token),
            ],
        )
        .await?
        .ok_or(AccountError::MfaVerificationFailed)?;
        if let Some(err) = refusal(&verified) {
            return Err(err);
        }
        let user = self.with_factors(verified["user"].clone()).await?;
        let access = self
            .issue(
                &user,
                session_id,
                "aal2",
                "totp",
                Some(verified["amr"].clone()),
            )
            .await?;
        Ok(Session {
            access,
            refresh_token,
            user,
        })
    }

    /// DELETE /factors/{id}: a verified factor may only be removed from an aal2 session.
    pub async fn unenroll(
        &self,
        caller: &Caller,
        aal: &str,
        factor_id: Uuid,
    ) -> Result<Value, AccountError> {
        let factors = self.factors(caller.user_id).await?;
        let factor = factors
            .as_array()
            .into_iter()
            .flatten()
            .find(|factor| factor["id"] == factor_id.to_string())
            .ok_or(AccountError::MfaFactorNotFound)?;
        if factor["status"] == "verified" && aal != "aal2" {
            return Err(AccountError::InsufficientAal);
        }
        self.delete_factor(caller.user_id, factor_id).await?;
        Ok(json!({"id": factor_id.to_string()}))
    }

    /// A user's factors (GoTrue's `factors`), for `/admin/users/{id}/factors` too.
    pub async fn factors(&self, user_id: Uuid) -> Result<Value, AccountError> {
        Ok(store::call_json(
            &self.pool,
            "SELECT auth.sluice_mfa_factors($1)",
            &[&user_id],
        )
        .await?
        .unwrap_or_else(|| json!([])))
    }

    /// Removes a factor; its JSON.
    pub async fn delete_factor(
        &self,
        user_id: Uuid,
        factor_id: Uuid,
    ) -> Result<Value, AccountError> {
        store::call_json(
            &self.pool,
            "SELECT auth.sluice_mfa_unenroll($1, $2)",
            &[&user_id, &factor_id],
        )
        .await?
        .ok_or(AccountError::MfaFactorNotFound)
    }

    /// `user` with its `factors`, as GoTrue's user JSON has them when there are any.
    pub(crate) async fn with_factors(&self, mut user: Value) -> Result<Value, AccountError> {
        let Some(user_id) = user["id"].as_str().and_then(|id| id.parse().ok()) else {
            return Ok(user);
        };
        let factors = self.factors(user_id).await?;
        if factors
            .as_array()
            .is_some_and(|factors| !factors.is_empty())
        {
            user["factors"] = factors;
        }
        Ok(user)
    }
}

/// The host of the site URL: the issuer authenticator apps show when the client names none.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?', '#'])
        .next()
        .unwrap_or(rest)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_matches_its_step_and_its_neighbours_only() {
        // RFC 6238's SHA-1 test secret and its published value at T = 59 s (8 digits: 94287082).
        let totp = TOTP::new(
            Algorithm::SHA1,
            8,
            1,
            30,
            b"12345678901234567890".to_vec(),
            None,
            String::new(),
        )
        .unwrap();
        assert_eq!(totp.generate(59), "94287082");
        assert_eq!(matching_step(&totp, "94287082", 59), Some(1));
        assert_eq!(
            matching_step(&totp, "94287082", 89),
            Some(1),
            "one step late"
        );
        assert_eq!(matching_step(&totp, "94287082", 150), None, "too late");
        assert_eq!(matching_step(&totp, "94287083", 59), None);
        assert_eq!(matching_step(&totp, "", 59), None);
    }

    #[test]
    fn the_issuer_defaults_to_the_site_host() {
        assert_eq!(host_of("https://app.example:8443/path"), "app.example:8443");
        let totp = totp(vec![7; 20], "app.example:8443", "a@b.c").unwrap();
        assert!(totp
            .get_url()
            .starts_with("otpauth://totp/app.example8443:a%40b.c?secret="));
    }
}
