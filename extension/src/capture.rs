//! The change triggers. `sluice.capture_change` appends one event per row (and one per
//! TRUNCATE statement) to `sluice.changes`; `sluice.capture_history` stores a numbered version of
//! the row in `sluice.history_entries`. Both are attached by `sluice.enable_realtime` /
//! `sluice.enable_history` with the table's primary-key columns as trigger arguments.
//!
//! Each trigger runs one prepared statement, cached per backend and table, which builds the
//! jsonb of the row inside Postgres (`to_jsonb` of the row passed as a composite parameter).

use crate::changelog;
use crate::claims;
use crate::elevate::AsExtensionOwner;
use crate::error::{raise, report};
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::{quote_identifier, quote_literal, OwnedPreparedStatement, SpiError};
use std::cell::RefCell;
use std::collections::HashMap;

/// What can go wrong while capturing a change. All of it happens inside the writer's trigger,
/// so the codes are of class 09 (triggered action exception), except a trigger function called
/// the wrong way (39P01, as Postgres itself reports it).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("sluice: could not prepare change capture: {0}")]
    Prepare(SpiError),
    #[error("sluice: could not record change: {0}")]
    Record(SpiError),
    #[error("sluice: could not record history before TRUNCATE: {0}")]
    TruncateHistory(SpiError),
    #[error("sluice: {0}")]
    Trigger(PgTriggerError),
}

impl CaptureError {
    pub fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            CaptureError::Trigger(_) => PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
            _ => PgSqlErrorCode::ERRCODE_TRIGGERED_ACTION_EXCEPTION,
        }
    }
}

impl From<CaptureError> for ErrorReport {
    fn from(error: CaptureError) -> Self {
        report(error.sqlstate(), &error, "sluice::capture")
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum StatementKind {
    ChangeRow,
    ChangeTruncate,
    HistoryRow,
}

#[derive(PartialEq, Eq, Hash)]
struct StatementKey {
    kind: StatementKind,
    relid: pg_sys::Oid,
    row_type: pg_sys::Oid,
    pk_columns: Vec<String>,
}

thread_local! {
    static STATEMENTS: RefCell<HashMap<StatementKey, OwnedPreparedStatement>> =
        RefCell::new(HashMap::new());
}

/// `jsonb_build_object('id', ($n).id, ...)`: the primary key of the row passed as parameter `n`.
fn pk_expression(pk_columns: &[String], param: usize) -> String {
    let pairs: Vec<String> = pk_columns
        .iter()
        .map(|c| format!("{}, (${param}).{}", quote_literal(c), quote_identifier(c)))
        .collect();
    format!("jsonb_build_object({})", pairs.join(", "))
}

fn statement_sql(kind: StatementKind, pk_columns: &[String]) -> String {
    match kind {
        // $1 seq, $2 schema, $3 table, $4 op, $5 new row, $6 old row, $7 key row, $8 actor
        StatementKind::ChangeRow => format!(
            "INSERT INTO sluice.changes (seq, schema_name, table_name, op, pk, record, old_record, actor) \
             VALUES ($1, $2, $3, $4, {}, to_jsonb($5), to_jsonb($6), $8)",
            pk_expression(pk_columns, 7)
        ),
        StatementKind::ChangeTruncate => "INSERT INTO sluice.changes (seq, schema_name, table_name, op, actor) \
             VALUES ($1, $2, $3, 'TRUNCATE', $4)"
            .to_owned(),
        // $1 relid, $2 op, $3 row, $4 actor
        StatementKind::HistoryRow => format!(
            "INSERT INTO sluice.history_entries (relid, pk, version, op, record, actor) \
             SELECT $1, k.pk, coalesce((SELECT max(h.version) FROM sluice.history_entries h \
                                         WHERE h.relid = $1 AND h.pk = k.pk), 0) + 1, \
                    $2, to_jsonb($3), $4 \
             FROM (SELECT {} AS pk) AS k",
            pk_expression(pk_columns, 3)
        ),
    }
}

fn argument_types(kind: StatementKind, row_type: pg_sys::Oid) -> Vec<pg_sys::PgOid> {
    use pg_sys::PgOid;
    let text = PgOid::BuiltIn(pg_sys::BuiltinOid::TEXTOID);
    let row = PgOid::Custom(row_type);
    let uuid = PgOid::BuiltIn(pg_sys::BuiltinOid::UUIDOID);
    let int8 = PgOid::BuiltIn(pg_sys::BuiltinOid::INT8OID);
    match kind {
        StatementKind::ChangeRow => vec![int8, text, text, text, row, row, row, uuid],
        StatementKind::ChangeTruncate => vec![int8, text, text, uuid],
        StatementKind::HistoryRow => {
            vec![PgOid::BuiltIn(pg_sys::BuiltinOid::OIDOID), text, row, uuid]
        }
    }
}

fn run_cached(key: StatementKey, args: &[DatumWithOid<'_>]) {
    STATEMENTS.with(|cache| {
        let mut cache = cache.borrow_mut();
        Spi::connect_mut(|client| {
            let statement = cache.entry(key).or_insert_with_key(|key| {
                let sql = statement_sql(key.kind, &key.pk_columns);
                let types = argument_types(key.kind, key.row_type);
                client
                    .prepare_mut(sql.as_str(), &types)
                    .unwrap_or_else(|e| raise(CaptureError::Prepare(e)))
                    .keep()
            });
            client
                .update(&*statement, None, args)
                .unwrap_or_else(|e| raise(CaptureError::Record(e)));
        })
    })
}

struct TriggeredTable {
    relid: pg_sys::Oid,
    row_type: pg_sys::Oid,
    schema: String,
    name: String,
    pk_columns: Vec<String>,
}

fn triggered_table(trigger: &PgTrigger<'_>) -> TriggeredTable {
    let data = trigger.trigger_data();
    // SAFETY: Postgres hands a trigger a valid, open relation.
    let (relid, row_type) = unsafe {
        let rel = &*data.tg_relation;
        (rel.rd_id, (*rel.rd_rel).reltype)
    };
    TriggeredTable {
        relid,
        row_type,
        schema: trigger
            .table_schema()
            .unwrap_or_else(|e| raise(CaptureError::Trigger(e))),
        name: trigger
            .table_name()
            .unwrap_or_else(|e| raise(CaptureError::Trigger(e))),
        pk_columns: trigger
            .extra_args()
            .unwrap_or_else(|e| raise(CaptureError::Trigger(e))),
    }
}

fn row_datum<'a>(
    tuple: Option<PgHeapTuple<'_, AllocatedByPostgres>>,
    row_type: pg_sys::Oid,
) -> DatumWithOid<'a> {
    match tuple.and_then(|t| t.into_composite_datum()) {
        // SAFETY: the datum is a composite of the table's row type, copied into the current
        // memory context, which outlives the statement it is passed to.
        Some(datum) => unsafe { DatumWithOid::new(datum, row_type) },
        None => DatumWithOid::null_oid(row_type),
    }
}

fn actor_datum<'a>() -> DatumWithOid<'a> {
    match claims::current_uid() {
        Some(uid) => pgrx::Uuid::from_bytes(*uid.as_bytes()).into(),
        None => DatumWithOid::null::<pgrx::Uuid>(),
    }
}

fn op_name(trigger: &PgTrigger<'_>) -> &'static str {
    match trigger
        .op()
        .unwrap_or_else(|e| raise(CaptureError::Trigger(e)))
    {
        PgTriggerOperation::Insert => "INSERT",
        PgTriggerOperation::Update => "UPDATE",
        PgTriggerOperation::Delete => "DELETE",
        PgTriggerOperation::Truncate => "TRUNCATE",
    }
}

/// AFTER INSERT OR UPDATE OR DELETE (row) and AFTER TRUNCATE (statement) on a realtime table.
#[pg_trigger]
fn capture_change<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    let table = triggered_table(trigger);
    if restored_from_a_dump(table.relid) {
        return Ok(None);
    }
    let op = op_name(trigger);
    let seq = changelog::next_event_seq();
    let _owner = AsExtensionOwner::begin();
    if op == "TRUNCATE" {
        let key = StatementKey {
            kind: StatementKind::ChangeTruncate,
            relid: table.relid,
            row_type: table.row_type,
            pk_columns: Vec::new(),
        };
        run_cached(
            key,
            &[
                seq.into(),
                table.schema.into(),
                table.name.into(),
                actor_datum(),
            ],
        );
        return Ok(None);
    }
    if table.pk_columns.is_empty() {
        missing_key_arguments(&table);
    }
    let new_row = if op == "DELETE" { None } else { trigger.new() };
    let old_row = if op == "INSERT" { None } else { trigger.old() };
    let key_row = if op == "DELETE" {
        trigger.old()
    } else {
        trigger.new()
    };
    let args = [
        seq.into(),
        table.schema.into(),
        table.name.into(),
        op.into(),
        row_datum(new_row, table.row_type),
        row_datum(old_row, table.row_type),
        row_datum(key_row, table.row_type),
        actor_datum(),
    ];
    let key = StatementKey {
        kind: StatementKind::ChangeRow,
        relid: table.relid,
        row_type: table.row_type,
        pk_columns: table.pk_columns,
    };
    run_cached(key, &args);
    Ok(None)
}

/// AFTER INSERT OR UPDATE OR DELETE (row) on a table with history on.
#[pg_trigger]
fn capture_history<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    let table = triggered_table(trigger);
    let op = op_name(trigger);
    if table.pk_columns.is_empty() {
        missing_key_arguments(&table);
    }
    let _owner = AsExtensionOwner::begin();
    if op == "TRUNCATE" {
        snapshot_before_truncate(&table);
        return Ok(None);
    }
    let row = if op == "DELETE" {
        trigger.old()
    } else {
        trigger.new()
    };
    let args = [
        table.relid.into(),
        op.into(),
        row_datum(row, table.row_type),
        actor_datum(),
    ];
    let key = StatementKey {
        kind: StatementKind::HistoryRow,
        relid: table.relid,
        row_type: table.row_type,
        pk_columns: table.pk_columns,
    };
    run_cached(key, &args);
    Ok(None)
}

/// BEFORE TRUNCATE: a TRUNCATE removes rows without row triggers, so record each row's last
/// state as a 'TRUNCATE' version while the rows are still there. Rare, so not cached.
fn snapshot_before_truncate(table: &TriggeredTable) {
    let qualified = format!(
        "{}.{}",
        quote_identifier(&table.schema),
        quote_identifier(&table.name)
    );
    let key = table
        .pk_columns
        .iter()
        .map(|c| format!("{}, t.{}", quote_literal(c), quote_identifier(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO sluice.history_entries (relid, pk, version, op, record, actor) \
         SELECT $1, k.pk, coalesce((SELECT max(h.version) FROM sluice.history_entries h \
                                     WHERE h.relid = $1 AND h.pk = k.pk), 0) + 1, \
                'TRUNCATE', k.record, $2 \
         FROM (SELECT jsonb_build_object({key}) AS pk, to_jsonb(t) AS record FROM {qualified} AS t) AS k"
    );
    Spi::connect_mut(|client| {
        client
            .update(sql.as_str(), None, &[table.relid.into(), actor_datum()])
            .unwrap_or_else(|e| raise(CaptureError::TruncateHistory(e)));
    });
}

/// Whether this row is loaded by a `COPY` into a table of an extension: a restore of `pg_dump`
/// output (plain or through pg_restore) into `auth.users`, whose change trigger CREATE EXTENSION
/// creates before the data is loaded. The dump already holds those rows' change events; recording
/// them again would duplicate them, and number them below the positions the dump then restores
/// (which collide, losing the restored log). User tables are not concerned: pg_dump creates their
/// triggers after loading their rows. So rows COPY'd into `auth.users` record no event, which an
/// administrator importing users that way should know (README, "Backups").
fn restored_from_a_dump(relid: pg_sys::Oid) -> bool {
    // SAFETY: ActivePortal is the portal running the current top-level statement, or NULL.
    let copying = unsafe {
        let portal = pg_sys::ActivePortal;
        !portal.is_null()
            && matches!(
                (*portal).commandTag,
                pg_sys::CommandTag::CMDTAG_COPY | pg_sys::CommandTag::CMDTAG_COPY_FROM
            )
    };
    copying
        && Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_depend \
             WHERE classid = 'pg_catalog.pg_class'::regclass AND objid = $1 \
               AND refclassid = 'pg_catalog.pg_extension'::regclass AND deptype = 'e')",
            &[relid.into()],
        )
        .ok()
        .flatten()
        .unwrap_or(false)
}

fn missing_key_arguments(table: &TriggeredTable) -> ! {
    ereport!(
        ERROR,
        PgSqlErrorCode::ERRCODE_TRIGGERED_ACTION_EXCEPTION,
        format!(
            "sluice: the change trigger on {}.{} has no primary-key arguments; call sluice.enable_realtime or sluice.enable_history again",
            table.schema, table.name
        )
    );
}
