//! Row history: `sluice.history(regclass, pk jsonb)` lists a row's versions and
//! `sluice.restore(regclass, pk jsonb, version int)` writes one back.
//!
//! Access follows the table: the caller needs SELECT on it, and where row-level security
//! applies to the caller, the row must be visible to them now (a deleted row's history is then
//! visible only to roles that bypass RLS). Restoring writes as the caller, so the table's
//! privileges and policies decide whether the write is allowed; the triggers record it as a
//! new version.

use crate::elevate::AsExtensionOwner;
use crate::error::{raise, report};
use crate::registry::{table_info, TableInfo};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::{quote_identifier, quote_literal, SpiError};
use pgrx::JsonB;

/// Failures of history's own statements (errors Postgres raises inside them, such as a policy
/// refusing the restored row, keep their codes), and a version that does not exist.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("sluice: could not read history: {0}")]
    Read(SpiError),
    #[error("sluice: could not restore the row: {0}")]
    Restore(SpiError),
    /// 22023 (invalid_parameter_value): the caller named a version the row does not have. Not
    /// P0002 (no_data_found): PostgREST answers that class with 500, and this is the caller's
    /// mistake, so the sidecar must answer 400 with this message.
    #[error("sluice: {table} has no version {version} of the row {key}")]
    NoSuchVersion {
        table: String,
        version: i32,
        key: String,
        versions: Vec<i32>,
    },
}

impl HistoryError {
    pub fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            HistoryError::NoSuchVersion { .. } => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            _ => PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
        }
    }
}

impl From<HistoryError> for ErrorReport {
    fn from(error: HistoryError) -> Self {
        let report = report(error.sqlstate(), &error, "sluice::history");
        match &error {
            HistoryError::NoSuchVersion { versions, .. } if versions.is_empty() => report.set_hint(
                "The row has no stored versions you can read (sluice.history lists them).",
            ),
            HistoryError::NoSuchVersion { versions, .. } => report.set_hint(format!(
                "Versions you can restore: {} (sluice.history lists them).",
                versions
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => report,
        }
    }
}

pub struct Version {
    pub version: i32,
    pub op: String,
    pub record: Option<JsonB>,
    pub actor: Option<pgrx::Uuid>,
    pub at: TimestampWithTimeZone,
}

/// The key as stored: each primary-key column, typed by the table (so `{"id": "1"}` and
/// `{"id": 1}` name the same integer key), rebuilt as jsonb.
fn normalized_key(info: &TableInfo, pk: &JsonB) -> JsonB {
    let pairs = info
        .pk_columns
        .iter()
        .map(|c| format!("{}, r.{}", quote_literal(c), quote_identifier(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let complete = info
        .pk_columns
        .iter()
        .map(|c| format!("r.{} IS NOT NULL", quote_identifier(c)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let sql = format!(
        "SELECT jsonb_build_object({pairs}), {complete} FROM jsonb_populate_record(NULL::{}, $1) AS r",
        info.qualified
    );
    let (key, complete) =
        Spi::get_two_with_args::<JsonB, bool>(&sql, &[JsonB(pk.0.clone()).into()]).unwrap_or_else(
            |e| {
                ereport!(
                    ERROR,
                    PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                    format!("sluice: invalid primary key for {}: {e}", info.qualified)
                );
            },
        );
    match (key, complete) {
        (Some(key), Some(true)) => key,
        _ => {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!(
                    "sluice: the key must give every primary-key column of {}: {}",
                    info.qualified,
                    info.pk_columns.join(", ")
                )
            );
        }
    }
}

/// Whether the caller may see this row's history (see the module comment).
fn caller_may_read(table: pg_sys::Oid, info: &TableInfo, key: &JsonB) -> bool {
    let may_select =
        Spi::get_one_with_args::<bool>("SELECT has_table_privilege($1, 'SELECT')", &[table.into()])
            .ok()
            .flatten()
            .unwrap_or(false);
    if !may_select {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("permission denied for table {}", info.qualified)
        );
    }
    let rls_applies =
        Spi::get_one_with_args::<bool>("SELECT row_security_active($1)", &[table.into()])
            .ok()
            .flatten()
            .unwrap_or(true);
    if !rls_applies {
        return true;
    }
    let matches = info
        .pk_columns
        .iter()
        .map(|c| format!("t.{0} = r.{0}", quote_identifier(c)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM {q} AS t, jsonb_populate_record(NULL::{q}, $1) AS r WHERE {matches})",
        q = info.qualified
    );
    Spi::get_one_with_args::<bool>(&sql, &[JsonB(key.0.clone()).into()])
        .ok()
        .flatten()
        .unwrap_or(false)
}

pub fn versions(table: pg_sys::Oid, pk: &JsonB) -> (TableInfo, JsonB, Vec<Version>) {
    let info = table_info(table);
    let key = normalized_key(&info, pk);
    if !caller_may_read(table, &info, &key) {
        return (info, key, Vec::new());
    }
    let _owner = AsExtensionOwner::begin();
    let rows = Spi::connect(|client| {
        client
            .select(
                "SELECT version, op, record, actor, at FROM sluice.history_entries \
                 WHERE relid = $1 AND pk = $2 ORDER BY version",
                None,
                &[table.into(), JsonB(key.0.clone()).into()],
            )
            .and_then(|table| {
                table
                    .map(|row| {
                        Ok(Version {
                            version: row.get::<i32>(1)?.unwrap_or_default(),
                            op: row.get::<String>(2)?.unwrap_or_default(),
                            record: row.get::<JsonB>(3)?,
                            actor: row.get::<pgrx::Uuid>(4)?,
                            at: row
                                .get::<TimestampWithTimeZone>(5)?
                                .expect("at is NOT NULL"),
                        })
                    })
                    .collect::<Result<Vec<_>, pgrx::spi::SpiError>>()
            })
            .unwrap_or_else(|e| raise(HistoryError::Read(e)))
    });
    (info, key, rows)
}

/// Backs `sluice.history(regclass, jsonb)`.
#[pg_extern(name = "history_rows")]
// pgrx reads the column names from the tuple type itself, so it cannot be a type alias.
#[allow(clippy::type_complexity)]
fn history_rows(
    table: pg_sys::Oid,
    pk: JsonB,
) -> TableIterator<
    'static,
    (
        name!(version, i32),
        name!(op, String),
        name!(record, Option<JsonB>),
        name!(actor, Option<pgrx::Uuid>),
        name!(at, TimestampWithTimeZone),
    ),
> {
    let (_, _, rows) = versions(table, &pk);
    TableIterator::new(
        rows.into_iter()
            .map(|v| (v.version, v.op, v.record, v.actor, v.at)),
    )
}

/// Backs `sluice.restore(regclass, jsonb, int)`: returns the restored record.
#[pg_extern(name = "restore_version")]
fn restore_version(table: pg_sys::Oid, pk: JsonB, version: i32) -> JsonB {
    let (info, _key, rows) = versions(table, &pk);
    let restorable: Vec<i32> = rows
        .iter()
        .filter(|v| v.record.is_some())
        .map(|v| v.version)
        .collect();
    let Some(record) = rows
        .into_iter()
        .find(|v| v.version == version)
        .and_then(|v| v.record)
    else {
        raise(HistoryError::NoSuchVersion {
            table: info.qualified,
            version,
            key: pk.0.to_string(),
            versions: restorable,
        });
    };
    let columns: Vec<String> = Spi::get_one_with_args::<Vec<String>>(
        "SELECT coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}') FROM pg_attribute a \
         WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' \
           AND $2 ? a.attname::text",
        &[table.into(), JsonB(record.0.clone()).into()],
    )
    .ok()
    .flatten()
    .unwrap_or_default();
    let list = columns
        .iter()
        .map(quote_identifier)
        .collect::<Vec<_>>()
        .join(", ");
    let key_list = info
        .pk_columns
        .iter()
        .map(quote_identifier)
        .collect::<Vec<_>>()
        .join(", ");
    let updates = columns
        .iter()
        .filter(|c| !info.pk_columns.contains(c))
        .map(|c| format!("{0} = EXCLUDED.{0}", quote_identifier(c)))
        .collect::<Vec<_>>();
    let on_conflict = if updates.is_empty() {
        "DO NOTHING".to_owned()
    } else {
        format!("DO UPDATE SET {}", updates.join(", "))
    };
    let sql = format!(
        "INSERT INTO {q} AS t ({list}) OVERRIDING SYSTEM VALUE \
         SELECT {list} FROM jsonb_populate_record(NULL::{q}, $1) \
         ON CONFLICT ({key_list}) {on_conflict}",
        q = info.qualified
    );
    Spi::run_with_args(&sql, &[JsonB(record.0.clone()).into()])
        .unwrap_or_else(|e| raise(HistoryError::Restore(e)));
    record
}
