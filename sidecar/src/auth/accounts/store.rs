//! The auth data in Postgres, reached only through the extension's SECURITY DEFINER functions
//! `auth.sluice_*` (see extension/sql/auth_tables.sql for why): one call, one function, one round
//! trip, on a pooled connection as `authenticator`, outside any request role. Every value is a
//! bound parameter; users come back as GoTrue's user JSON, built by Postgres.

use serde_json::Value;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use super::mailer::Mail;
use crate::db::{DbError, Pool};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(err: tokio_postgres::Error) -> Self {
        if err.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            StoreError::EmailTaken
        } else {
            StoreError::Db(DbError::Query(err))
        }
    }
}

pub(super) async fn call(
    pool: &Pool,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Row, StoreError> {
    let client = pool.get().await.map_err(DbError::from)?;
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query_one(&statement, params).await?)
}

/// One call to a function returning `jsonb` (NULL as `None`).
pub(crate) async fn call_json(
    pool: &Pool,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Value>, StoreError> {
    Ok(call(pool, sql, params).await?.get(0))
}

/// The password row of sign-in.
#[derive(Debug, Clone)]
pub(crate) struct PasswordRow {
    pub user_id: Uuid,
    pub hash: String,
    pub banned: bool,
    pub confirmed: bool,
}

/// A session just started: its id and the user as now stored.
#[derive(Debug, Clone)]
pub(crate) struct Started {
    pub session_id: Uuid,
    pub user: Value,
}

/// What a user update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub(crate) struct UserChanges {
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub user_metadata: Option<Value>,
    pub app_metadata: Option<Value>,
    /// Seconds from now until the ban ends; 0 or less lifts a ban.
    pub ban_seconds: Option<f64>,
    pub confirm_email: bool,
    /// With a new password, every other session of the user ends; this one is kept.
    pub keep_session: Option<Uuid>,
}

pub(crate) async fn create_user(
    pool: &Pool,
    email: &str,
    password_hash: Option<&str>,
    user_metadata: &Value,
    app_metadata: &Value,
    confirmed: bool,
    role: Option<&str>,
) -> Result<Value, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_create_user($1, $2, $3, $4, $5, $6)",
        &[
            &email,
            &password_hash,
            user_metadata,
            app_metadata,
            &confirmed,
            &role,
        ],
    )
    .await?;
    Ok(row.get(0))
}

pub(crate) async fn password_of(
    pool: &Pool,
    email: &str,
) -> Result<Option<PasswordRow>, StoreError> {
    let client = pool.get().await.map_err(DbError::from)?;
    let statement = client
        .prepare_cached("SELECT user_id, hash, banned, confirmed FROM auth.sluice_password_of($1)")
        .await?;
    let row = client.query_opt(&statement, &[&email]).await?;
    Ok(row.map(|row| PasswordRow {
        user_id: row.get(0),
        hash: row.get(1),
        banned: row.get(2),
        confirmed: row.get(3),
    }))
}

/// Replaces an imported (bcrypt) hash with the Argon2id one, unless the password changed since
/// `old_hash` was read.
pub(crate) async fn rehash_password(
    pool: &Pool,
    user_id: Uuid,
    old_hash: &str,
    new_hash: &str,
) -> Result<bool, StoreError> {
    let client = pool.get().await.map_err(DbError::from)?;
    let statement = client
        .prepare_cached("SELECT auth.sluice_rehash_password($1, $2, $3)")
        .await?;
    let row = client
        .query_one(&statement, &[&user_id, &old_hash, &new_hash])
        .await?;
    Ok(row.get(0))
}

pub(crate) async fn start_session(
    pool: &Pool,
    user_id: Uuid,
    refresh_hash: &str,
    user_agent: Option<&str>,
    ip: &str,
) -> Result<Option<Started>, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_start_session($1, $2, $3, $4)",
        &[&user_id, &refresh_hash, &user_agent, &ip],
    )
    .await?;
    let started: Option<Value> = row.get(0);
    Ok(started.and_then(|started| {
        let session_id = started["session_id"].as_str()?.parse().ok()?;
        Some(Started {
            session_id,
            user: started["user"].clone(),
        })
    }))
}

/// The outcome of a refresh as the database decided it: `{"session_id", "aal", "user"}` or
/// `{"error": code}`.
pub(crate) async fn refresh(
    pool: &Pool,
    token_hash: &str,
    new_hash: &str,
    grace_secs: f64,
) -> Result<Value, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_refresh($1, $2, make_interval(secs => $3))",
        &[&token_hash, &new_hash, &grace_secs],
    )
    .await?;
    Ok(row.get(0))
}

/// The user, `{"error": "session_not_found"}` when the session ended, `None` when the user is gone.
pub(crate) async fn user_of(
    pool: &Pool,
    user_id: Uuid,
    session_id: Option<Uuid>,
) -> Result<Option<Value>, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_user_of($1, $2)",
        &[&user_id, &session_id],
    )
    .await?;
    Ok(row.get(0))
}

pub(crate) async fn update_user(
    pool: &Pool,
    user_id: Uuid,
    changes: &UserChanges,
) -> Result<Option<Value>, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_update_user($1, $2, $3, $4, $5, \
         CASE WHEN $6::float8 IS NULL THEN NULL \
              WHEN $6::float8 <= 0 THEN 'epoch'::timestamptz \
              ELSE now() + make_interval(secs => $6::float8) END, $7, $8)",
        &[
            &user_id,
            &changes.email,
            &changes.password_hash,
            &changes.user_metadata,
            &changes.app_metadata,
            &changes.ban_seconds,
            &changes.confirm_email,
            &changes.keep_session,
        ],
    )
    .await?;
    Ok(row.get(0))
}

pub(crate) async fn logout(
    pool: &Pool,
    user_id: Uuid,
    session_id: Option<Uuid>,
    scope: &str,
) -> Result<(), StoreError> {
    call(
        pool,
        "SELECT auth.sluice_logout($1, $2, $3)",
        &[&user_id, &session_id, &scope],
    )
    .await?;
    Ok(())
}

pub(crate) async fn issue_one_time_token(
    pool: &Pool,
    email: &str,
    kind: &str,
    token_hash: &str,
) -> Result<Option<Value>, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_issue_one_time_token($1, $2, $3)",
        &[&email, &kind, &token_hash],
    )
    .await?;
    Ok(row.get(0))
}

pub(crate) async fn request_email_change(
    pool: &Pool,
    user_id: Uuid,
    new_email: &str,
    token_hash: &str,
) -> Result<Option<Value>, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_request_email_change($1, $2, $3)",
        &[&user_id, &new_email, &token_hash],
    )
    .await?;
    Ok(row.get(0))
}

pub(crate) async fn consume_one_time_token(
    pool: &Pool,
    kind: &str,
    token_hash: &str,
    valid_secs: f64,
) -> Result<Option<Uuid>, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_consume_one_time_token($1, $2, make_interval(secs => $3))",
        &[&kind, &token_hash, &valid_secs],
    )
    .await?;
    Ok(row.get(0))
}

/// `{"users": [...], "total": n}`.
pub(crate) async fn list_users(pool: &Pool, page: i32, per_page: i32) -> Result<Value, StoreError> {
    let row = call(
        pool,
        "SELECT auth.sluice_list_users($1, $2)",
        &[&page, &per_page],
    )
    .await?;
    Ok(row.get(0))
}

pub(crate) async fn get_user(pool: &Pool, user_id: Uuid) -> Result<Option<Value>, StoreError> {
    let row = call(pool, "SELECT auth.sluice_get_user($1)", &[&user_id]).await?;
    Ok(row.get(0))
}

pub(crate) async fn delete_user(pool: &Pool, user_id: Uuid) -> Result<bool, StoreError> {
    let row = call(pool, "SELECT auth.sluice_delete_user($1)", &[&user_id]).await?;
    Ok(row.get(0))
}

/// The database's clock, as JSON (the format of the timestamps in user JSON).
pub(crate) async fn now(pool: &Pool) -> Result<Value, StoreError> {
    let row = call(pool, "SELECT to_jsonb(now())", &[]).await?;
    Ok(row.get(0))
}

pub(crate) async fn enqueue_mail(pool: &Pool, mail: &Mail) -> Result<(), StoreError> {
    call(
        pool,
        "SELECT auth.sluice_enqueue_mail($1, $2, $3, $4)",
        &[&mail.kind, &mail.to, &mail.subject, &mail.body],
    )
    .await?;
    Ok(())
}
