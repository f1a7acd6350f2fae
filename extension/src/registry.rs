//! The collection registry: which tables Sluice tracks (`sluice.collections`) and the triggers
//! that make it so. Trigger DDL runs as the caller, so only someone allowed to add triggers to
//! the table can switch tracking on or off; the registry row is then written as the extension's
//! owner, because users hold no privileges on Sluice's own tables.

use crate::elevate::AsExtensionOwner;
use crate::error::{raise, report};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::{quote_literal, SpiError};

/// Failures of the registry's own statements (the catalog read, trigger DDL, the registry
/// table). Errors Postgres raises inside them (a caller who may not add triggers, say) keep their
/// own codes; these are what SPI reports besides, as external routine exceptions (class 38).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("sluice: could not read the table's definition: {0}")]
    ReadDefinition(SpiError),
    #[error("sluice: could not create trigger {0}: {1}")]
    CreateTrigger(&'static str, SpiError),
    #[error("sluice: could not drop trigger {0}: {1}")]
    DropTrigger(&'static str, SpiError),
    #[error("sluice: could not update sluice.collections: {0}")]
    WriteCollections(SpiError),
    #[error("sluice: could not read sluice.collections: {0}")]
    ReadCollections(SpiError),
}

impl RegistryError {
    pub fn sqlstate(&self) -> PgSqlErrorCode {
        PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION
    }
}

impl From<RegistryError> for ErrorReport {
    fn from(error: RegistryError) -> Self {
        report(error.sqlstate(), &error, "sluice::registry")
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Realtime,
    History,
}

impl Feature {
    fn column(self) -> &'static str {
        match self {
            Feature::Realtime => "realtime",
            Feature::History => "history",
        }
    }

    /// (trigger name, timing and events, level, function)
    fn triggers(self) -> [(&'static str, &'static str, &'static str, &'static str); 2] {
        match self {
            Feature::Realtime => [
                (
                    "sluice_realtime",
                    "AFTER INSERT OR UPDATE OR DELETE",
                    "ROW",
                    "sluice.capture_change",
                ),
                (
                    "sluice_realtime_truncate",
                    "AFTER TRUNCATE",
                    "STATEMENT",
                    "sluice.capture_change",
                ),
            ],
            Feature::History => [
                (
                    "sluice_history",
                    "AFTER INSERT OR UPDATE OR DELETE",
                    "ROW",
                    "sluice.capture_history",
                ),
                (
                    "sluice_history_truncate",
                    "BEFORE TRUNCATE",
                    "STATEMENT",
                    "sluice.capture_history",
                ),
            ],
        }
    }
}

/// A table's schema-qualified, quoted name (regclass output is already quoted as needed) and
/// its primary-key columns in key order.
pub struct TableInfo {
    pub qualified: String,
    pub kind: char,
    pub pk_columns: Vec<String>,
}

pub fn table_info(table: pg_sys::Oid) -> TableInfo {
    let row = Spi::get_three_with_args::<String, i8, Vec<String>>(
        "SELECT c.oid::regclass::text, c.relkind::\"char\", \
                coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord) \
                          FROM pg_index i \
                          CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
                          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                          WHERE i.indrelid = c.oid AND i.indisprimary), '{}') \
         FROM pg_class c WHERE c.oid = $1",
        &[table.into()],
    )
    .unwrap_or_else(|e| raise(RegistryError::ReadDefinition(e)));
    match row {
        (Some(qualified), Some(kind), Some(pk_columns)) => TableInfo {
            qualified,
            kind: kind as u8 as char,
            pk_columns,
        },
        _ => {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                format!(
                    "sluice: relation with oid {} does not exist",
                    table.to_u32()
                )
            );
        }
    }
}

fn require_trackable(info: &TableInfo, function: &str) {
    if info.kind != 'r' && info.kind != 'p' {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
            format!(
                "sluice: \"{}\" is not a table; only tables can be tracked",
                info.qualified
            )
        );
    }
    if info.pk_columns.is_empty() {
        pgrx::pg_sys::panic::ErrorReport::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("sluice: table \"{}\" has no primary key", info.qualified),
            "sluice::registry",
        )
        .set_detail("Change events and history identify rows by their primary key.")
        .set_hint(format!(
            "Add one, e.g. ALTER TABLE {} ADD PRIMARY KEY (id); then call sluice.{function} again.",
            info.qualified
        ))
        .report(PgLogLevel::ERROR);
    }
}

fn create_triggers(info: &TableInfo, feature: Feature) {
    let args = info
        .pk_columns
        .iter()
        .map(quote_literal)
        .collect::<Vec<_>>()
        .join(", ");
    for (name, timing, level, function) in feature.triggers() {
        Spi::run(&format!(
            "CREATE OR REPLACE TRIGGER {name} {timing} ON {} FOR EACH {level} EXECUTE FUNCTION {function}({args})",
            info.qualified
        ))
        .unwrap_or_else(|e| raise(RegistryError::CreateTrigger(name, e)));
    }
}

fn drop_triggers(info: &TableInfo, feature: Feature) {
    for (name, ..) in feature.triggers() {
        Spi::run(&format!(
            "DROP TRIGGER IF EXISTS {name} ON {}",
            info.qualified
        ))
        .unwrap_or_else(|e| raise(RegistryError::DropTrigger(name, e)));
    }
}

fn record(table: pg_sys::Oid, feature: Feature, on: bool, pk_columns: &[String]) {
    let _owner = AsExtensionOwner::begin();
    let column = feature.column();
    Spi::run_with_args(
        &format!(
            "INSERT INTO sluice.collections AS c (relid, {column}, pk_columns) VALUES ($1, $2, $3) \
             ON CONFLICT (relid) DO UPDATE SET {column} = EXCLUDED.{column}, \
                 pk_columns = EXCLUDED.pk_columns, updated_at = now()"
        ),
        &[table.into(), on.into(), pk_columns.to_vec().into()],
    )
    .unwrap_or_else(|e| raise(RegistryError::WriteCollections(e)));
    Spi::run_with_args(
        "DELETE FROM sluice.collections WHERE relid = $1 AND NOT realtime AND NOT history",
        &[table.into()],
    )
    .unwrap_or_else(|e| raise(RegistryError::WriteCollections(e)));
}

pub fn enable(table: pg_sys::Oid, feature: Feature, function: &str) {
    let info = table_info(table);
    require_trackable(&info, function);
    create_triggers(&info, feature);
    record(table, feature, true, &info.pk_columns);
}

pub fn disable(table: pg_sys::Oid, feature: Feature) {
    let info = table_info(table);
    drop_triggers(&info, feature);
    record(table, feature, false, &info.pk_columns);
}

/// Switches realtime change events on for a table (idempotent).
#[pg_extern(
    sql = "CREATE FUNCTION sluice.enable_realtime(\"table\" regclass) RETURNS void STRICT VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@'; COMMENT ON FUNCTION sluice.enable_realtime(regclass) IS 'Switches realtime change events on for a table (idempotent).';"
)]
fn enable_realtime(table: pg_sys::Oid) {
    enable(table, Feature::Realtime, "enable_realtime");
}

/// Switches realtime change events off for a table (idempotent).
#[pg_extern(
    sql = "CREATE FUNCTION sluice.disable_realtime(\"table\" regclass) RETURNS void STRICT VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@'; COMMENT ON FUNCTION sluice.disable_realtime(regclass) IS 'Switches realtime change events off for a table (idempotent).';"
)]
fn disable_realtime(table: pg_sys::Oid) {
    disable(table, Feature::Realtime);
}

/// Switches row history on for a table (idempotent).
#[pg_extern(
    sql = "CREATE FUNCTION sluice.enable_history(\"table\" regclass) RETURNS void STRICT VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@'; COMMENT ON FUNCTION sluice.enable_history(regclass) IS 'Switches row history on for a table (idempotent).';"
)]
fn enable_history(table: pg_sys::Oid) {
    enable(table, Feature::History, "enable_history");
}

/// Switches row history off for a table (idempotent). Stored versions are kept.
#[pg_extern(
    sql = "CREATE FUNCTION sluice.disable_history(\"table\" regclass) RETURNS void STRICT VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@'; COMMENT ON FUNCTION sluice.disable_history(regclass) IS 'Switches row history off for a table (idempotent). Stored versions are kept.';"
)]
fn disable_history(table: pg_sys::Oid) {
    disable(table, Feature::History);
}

/// Called by the DDL event trigger for tracked tables: re-attaches the triggers when the
/// primary key changed, and refuses DDL that would leave a tracked table without one.
#[pg_extern(
    sql = "CREATE FUNCTION sluice.refresh_tracking(\"table\" regclass) RETURNS void STRICT VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@'; COMMENT ON FUNCTION sluice.refresh_tracking(regclass) IS 'Re-attaches change triggers after DDL changed a tracked table''s primary key.';"
)]
fn refresh_tracking(table: pg_sys::Oid) {
    let info = table_info(table);
    let tracked = Spi::get_three_with_args::<bool, bool, Vec<String>>(
        "SELECT realtime, history, pk_columns FROM sluice.collections WHERE relid = $1",
        &[table.into()],
    )
    .unwrap_or_else(|e| raise(RegistryError::ReadCollections(e)));
    let (Some(realtime), Some(history), Some(recorded)) = tracked else {
        return;
    };
    if recorded == info.pk_columns {
        return;
    }
    if info.pk_columns.is_empty() {
        pgrx::pg_sys::panic::ErrorReport::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!(
                "sluice: cannot remove the primary key of \"{}\" while Sluice tracks it",
                info.qualified
            ),
            "sluice::registry",
        )
        .set_hint(format!(
            "Call sluice.disable_realtime('{0}') and sluice.disable_history('{0}') first.",
            info.qualified.replace('\'', "''")
        ))
        .report(PgLogLevel::ERROR);
    }
    // Record first: re-creating the triggers fires this event trigger again, which must
    // then find nothing to do.
    for (feature, on) in [(Feature::Realtime, realtime), (Feature::History, history)] {
        if on {
            record(table, feature, true, &info.pk_columns);
            create_triggers(&info, feature);
        }
    }
}
