//! The tables of passwordless sign-in (extension/sql/auth_otp.sql), through their
//! `auth.sluice_*` functions, as `store` does for the rest of auth.

use serde_json::Value;
use uuid::Uuid;

use super::store::{call, PasswordRow, StoreError};
use crate::db::DbError;
use crate::db::Pool;

/// A user with an email, a phone, or neither (anonymous); `invited` notes an admin's invitation.
pub(crate) async fn create_user(
    pool: &Pool,
    email: Option<&str>,
    phone: Option<&str>,
    user_metadata: &Value,
    password_hash: Option<&str>,
    invited: bool,
) -> Result<Value, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_create_otp_user($1, $2, $3, $4, $5)",
        &[&email, &phone, user_metadata, &password_hash, &invited],
    )
    .await?;
    Ok(row.get(0))
}

pub(crate) async fn user_by_contact(
    pool: &Pool,
    email: Option<&str>,
    phone: Option<&str>,
) -> Result<Option<Value>, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_user_by_contact($1, $2)",
        &[&email, &phone],
    )
    .await?;
    Ok(row.get(0))
}

pub(crate) async fn issue_otp(
    pool: &Pool,
    user_id: Uuid,
    channel: &str,
    purpose: &str,
    code_hash: &str,
    link_hash: Option<&str>,
) -> Result<Option<Value>, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_issue_otp($1, $2, $3, $4, $5)",
        &[&user_id, &channel, &purpose, &code_hash, &link_hash],
    )
    .await?;
    Ok(row.get(0))
}

/// `{"user_id", "code_hash"}` or `{"error": "otp_expired"}`.
pub(crate) async fn otp_pending(
    pool: &Pool,
    channel: &str,
    email: Option<&str>,
    phone: Option<&str>,
    purposes: &[&str],
    valid_secs: f64,
) -> Result<Value, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_otp_pending($1, $2, $3, $4, make_interval(secs => $5))",
        &[&channel, &email, &phone, &purposes, &valid_secs],
    )
    .await?;
    Ok(row.get(0))
}

pub(crate) async fn otp_failed(
    pool: &Pool,
    user_id: Uuid,
    channel: &str,
    max_attempts: i32,
) -> Result<(), StoreError> {
    call(
        pool,
        "SELECT auth.sluice_otp_failed($1, $2, $3)",
        &[&user_id, &channel, &max_attempts],
    )
    .await?;
    Ok(())
}

/// `{"user_id", "purpose", "link_hash"}`, or `None` when there is no such live code.
pub(crate) async fn consume_otp(
    pool: &Pool,
    user_id: Option<Uuid>,
    code_hash: Option<&str>,
    link_hash: Option<&str>,
    purposes: &[&str],
    valid_secs: f64,
) -> Result<Option<Value>, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_consume_otp($1, $2, $3, $4, make_interval(secs => $5))",
        &[&user_id, &code_hash, &link_hash, &purposes, &valid_secs],
    )
    .await?;
    Ok(row.get(0))
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn create_flow_state(
    pool: &Pool,
    provider_type: &str,
    authentication_method: &str,
    code_challenge: &str,
    code_challenge_method: &str,
    user_id: Option<Uuid>,
    link_hash: Option<&str>,
) -> Result<Uuid, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_create_flow_state($1, $2, $3, $4, $5, $6)",
        &[
            &provider_type,
            &authentication_method,
            &code_challenge,
            &code_challenge_method,
            &user_id,
            &link_hash,
        ],
    )
    .await?;
    Ok(row.get(0))
}

pub(crate) async fn issue_auth_code(
    pool: &Pool,
    flow_id: Option<Uuid>,
    link_hash: Option<&str>,
    user_id: Uuid,
    auth_code_hash: &str,
) -> Result<Option<Uuid>, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_issue_auth_code($1, $2, $3, $4)",
        &[&flow_id, &link_hash, &user_id, &auth_code_hash],
    )
    .await?;
    Ok(row.get(0))
}

pub(crate) async fn take_flow_state(
    pool: &Pool,
    auth_code_hash: &str,
    valid_secs: f64,
) -> Result<Option<Value>, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_take_flow_state($1, make_interval(secs => $2))",
        &[&auth_code_hash, &valid_secs],
    )
    .await?;
    Ok(row.get(0))
}

pub(crate) async fn enqueue_sms(pool: &Pool, to: &str, body: &str) -> Result<i64, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_enqueue_sms($1, $2)",
        &[&to, &body],
    )
    .await?;
    Ok(row.get(0))
}

/// The password row of a phone's account, as `store::password_of` for an email.
pub(crate) async fn password_of_phone(
    pool: &Pool,
    phone: &str,
) -> Result<Option<PasswordRow>, StoreError> {
    let client = pool.get().await.map_err(DbError::from)?;
    let statement = client
        .prepare_cached(
            "SELECT user_id, hash, banned, confirmed FROM auth.sluice_password_of_phone($1)",
        )
        .await?;
    let row = client.query_opt(&statement, &[&phone]).await?;
    Ok(row.map(|row| PasswordRow {
        user_id: row.get(0),
        hash: row.get(1),
        banned: row.get(2),
        confirmed: row.get(3),
    }))
}
