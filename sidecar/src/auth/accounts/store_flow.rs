//! The functions of extension/sql/auth_flow.sql: reauthentication nonces and phone-change codes
//! (`auth.otp_codes` on their own channels), as `store_otp` does for sign-in codes.

use serde_json::Value;
use uuid::Uuid;

use super::store::{call, StoreError};
use crate::db::Pool;

/// The channels of `auth.otp_codes` these flows use.
pub(crate) const REAUTHENTICATION: &str = "reauthentication";
pub(crate) const PHONE_CHANGE: &str = "phone_change";

/// Stores a new code on `channel` (for a phone change, with the number asked for); the user,
/// `None` when the user is gone. A number another user has is `StoreError::EmailTaken`.
pub(crate) async fn issue_code(
    pool: &Pool,
    user_id: Uuid,
    channel: &str,
    code_hash: &str,
    phone: Option<&str>,
) -> Result<Option<Value>, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_issue_flow_code($1, $2, $3, $4)",
        &[&user_id, &channel, &code_hash, &phone],
    )
    .await?;
    Ok(row.get(0))
}

/// The live code of a user on `channel` (or of the user waiting to change to `phone`):
/// `(user id, code hash)`.
pub(crate) async fn code_pending(
    pool: &Pool,
    user_id: Option<Uuid>,
    channel: &str,
    phone: Option<&str>,
    valid_secs: f64,
) -> Result<Option<(Uuid, String)>, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_flow_code_pending($1, $2, $3, make_interval(secs => $4))",
        &[&user_id, &channel, &phone, &valid_secs],
    )
    .await?;
    let found: Option<Value> = row.get(0);
    Ok(found.and_then(|found| {
        let user_id = found["user_id"].as_str()?.parse().ok()?;
        Some((user_id, found["code_hash"].as_str()?.to_owned()))
    }))
}

/// Uses up the code (applying a phone change); the user, `None` when there is no such live code.
pub(crate) async fn take_code(
    pool: &Pool,
    user_id: Uuid,
    channel: &str,
    code_hash: &str,
    valid_secs: f64,
) -> Result<Option<Value>, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_take_flow_code($1, $2, $3, make_interval(secs => $4))",
        &[&user_id, &channel, &code_hash, &valid_secs],
    )
    .await?;
    Ok(row.get(0))
}

/// A phone change applied at once (autoconfirm); the user, `None` when the user is gone.
pub(crate) async fn set_phone(
    pool: &Pool,
    user_id: Uuid,
    phone: &str,
) -> Result<Option<Value>, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_set_phone($1, $2)",
        &[&user_id, &phone],
    )
    .await?;
    Ok(row.get(0))
}

pub(crate) async fn drop_one_time_token(
    pool: &Pool,
    user_id: Uuid,
    token_type: &str,
) -> Result<(), StoreError> {
    call(
        pool,
        "SELECT auth.sluice_drop_one_time_token($1, $2)",
        &[&user_id, &token_type],
    )
    .await?;
    Ok(())
}

/// Seconds since the session started; `None` when it is gone.
pub(crate) async fn session_age(pool: &Pool, session_id: Uuid) -> Result<Option<f64>, StoreError> {
    let row = call(pool, "SELECT auth.sluice_session_age($1)", &[&session_id]).await?;
    Ok(row.get(0))
}
