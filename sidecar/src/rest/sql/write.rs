//! The one statement of a write: the mutation in a CTE, then the response body shaped from the
//! rows it returned by the read builder, how many rows it touched, and the key of the first.
//!
//! ```sql
//! WITH _sluice_rows AS (
//!     INSERT INTO "s"."t" AS _t0 ("a", "b")
//!     SELECT _r."a", _r."b"
//!     FROM json_array_elements($1::text::json) WITH ORDINALITY AS _e(j, n),
//!          LATERAL json_populate_record(NULL::"s"."t", _e.j) AS _r ORDER BY _e.n
//!     [ON CONFLICT ("id") DO UPDATE SET "a" = EXCLUDED."a" … | DO NOTHING]
//!     RETURNING _t0.*),
//!   _sluice_page AS (SELECT <select> FROM _sluice_rows _t0)
//! SELECT <body of _sluice_page> AS body, (SELECT count(*) FROM _sluice_rows) AS affected,
//!        <the first row's primary key as a JSON object> AS location
//! ```
//! The body travels as one bound `json` parameter that Postgres reads into the table's row type;
//! so every value is typed by the table itself. `RETURNING` asks only for what the response
//! shows: `_t0.*` for a representation, the key for `Location`, else nothing (`1`), so that a
//! role may write what it may not read.

use super::filter::predicate_sql;
use super::guard;
use super::ident::{qualified, quote};
use super::read::{alias, csv_body, node_select_from, order_and_page, GEOJSON_BODY};
use super::Params;
use crate::rest::parse::{MediaType, Representation};
use crate::rest::plan::write::{Mutation, WritePlan};

/// SQL text and its parameters; the single row has `body text`, `affected int8`,
/// `location text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteStatement {
    pub sql: String,
    pub params: Params,
}

/// `rows` is the payload as a JSON array of objects (empty for DELETE). A merging upsert's row
/// has a fourth column, `inserted int8`: how many of its rows were new.
pub fn write(plan: &WritePlan, rows: &str) -> WriteStatement {
    write_shaped(plan, rows, false)
}

/// `write`, its body without null-valued keys when `strip_nulls` (`nulls=stripped`).
pub fn write_shaped(plan: &WritePlan, rows: &str, strip_nulls: bool) -> WriteStatement {
    let mut params = Params::default();
    let table = qualified(&plan.schema, &plan.table);
    let t0 = alias(0);
    let returning = match plan.representation {
        Representation::Full => format!("{t0}.*"),
        Representation::HeadersOnly if !plan.primary_key.is_empty() => plan
            .primary_key
            .iter()
            .map(|column| format!("{t0}.{}", quote(column)))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "1".to_owned(),
    };
    let mutation = match &plan.mutation {
        Mutation::Insert { defaults, conflict } => {
            let values = plan
                .columns
                .iter()
                .map(|column| {
                    let value = format!("_r.{}", quote(column));
                    match defaults.iter().find(|(name, _)| name == column) {
                        // The default is catalog text (`pg_get_expr`), not request text.
                        Some((_, default)) => format!(
                            "CASE WHEN _e.j::jsonb ? {} THEN {value} ELSE ({default}) END",
                            params.text(column)
                        ),
                        None => value,
                    }
                })
                .collect::<Vec<_>>();
            let target = if plan.columns.is_empty() {
                String::new()
            } else {
                format!(" ({})", quoted_list(&plan.columns))
            };
            // A merging upsert counts the rows it inserts as PostgREST does: +1 per row offered,
            // -1 per row merged into an existing one (the answer is 200 when none was new).
            let merging = counts_inserts(plan);
            let offered = if merging {
                format!(" WHERE {INSERTED_PLUS_ONE} <> '0'")
            } else {
                String::new()
            };
            let source = format!(
                "FROM json_array_elements({}::json) WITH ORDINALITY AS _e(j, n), \
                 LATERAL json_populate_record(NULL::{table}, _e.j) AS _r{offered} ORDER BY _e.n",
                params.text(rows)
            );
            let on_conflict = match conflict {
                None => String::new(),
                Some(conflict) => {
                    let action = if conflict.merge && !plan.columns.is_empty() {
                        let sets = plan
                            .columns
                            .iter()
                            .map(|column| format!("{0} = EXCLUDED.{0}", quote(column)))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let merged = if merging {
                            // Never -1: each merged row was counted +1 when offered.
                            format!(" WHERE {INSERTED_MINUS_ONE} <> '-1'")
                        } else {
                            String::new()
                        };
                        format!("DO UPDATE SET {sets}{merged}")
                    } else {
                        "DO NOTHING".to_owned()
                    };
                    format!(" ON CONFLICT ({}) {action}", quoted_list(&conflict.columns))
                }
            };
            format!(
                "INSERT INTO {table} AS {t0}{target} SELECT {} {source}{on_conflict} \
                 RETURNING {returning}",
                values.join(", ")
            )
        }
        Mutation::Update if plan.columns.is_empty() => {
            // Nothing to set: PostgREST touches no row.
            format!("SELECT {returning} FROM {table} {t0} WHERE false")
        }
        Mutation::Update => {
            let sets = plan
                .columns
                .iter()
                .map(|column| format!("{0} = _r.{0}", quote(column)))
                .collect::<Vec<_>>()
                .join(", ");
            let object = params.text(rows);
            let where_clause = where_clause(plan, &mut params);
            format!(
                "UPDATE {table} AS {t0} SET {sets} \
                 FROM json_populate_record(NULL::{table}, ({object}::json)->0) AS _r\
                 {where_clause} RETURNING {returning}"
            )
        }
        Mutation::Delete => {
            let where_clause = where_clause(plan, &mut params);
            format!("DELETE FROM {table} AS {t0}{where_clause} RETURNING {returning}")
        }
    };

    let mut ctes = vec![format!("_sluice_rows AS ({mutation})")];
    let body = if plan.representation == Representation::Full {
        let page = node_select_from(&plan.returning, "_sluice_rows", 0, "", &mut params);
        ctes.push(format!("_sluice_page AS ({page})"));
        match plan.media {
            MediaType::Json | MediaType::OpenApi => {
                "(SELECT coalesce(json_agg(_p), '[]')::text FROM _sluice_page _p)".to_owned()
            }
            // Not exactly one row must undo the write: the statement fails (see `guard`).
            MediaType::SingleObject => format!(
                "CASE WHEN (SELECT count(*) FROM _sluice_page) = 1 \
                 THEN (SELECT (json_agg(_p)->0)::text FROM _sluice_page _p) \
                 ELSE {} END",
                guard::not_one_row("SELECT count(*) FROM _sluice_page")
            ),
            MediaType::Csv => csv_body(),
            MediaType::GeoJson => format!("(SELECT {GEOJSON_BODY} FROM _sluice_page _p)"),
        }
    } else {
        "NULL::text".to_owned()
    };
    let location = if plan.representation == Representation::HeadersOnly
        && !plan.primary_key.is_empty()
        && matches!(plan.mutation, Mutation::Insert { .. })
    {
        "(SELECT row_to_json(_l)::text FROM _sluice_rows _l LIMIT 1)"
    } else {
        "NULL::text"
    };
    // More rows than `max-affected` fail the statement, which undoes the write (see `guard`).
    let affected = match plan.max_affected {
        None => "(SELECT count(*) FROM _sluice_rows)".to_owned(),
        Some(max) => format!(
            "(SELECT CASE WHEN count(*) > {} \
             THEN {}::int8 ELSE count(*) END FROM _sluice_rows)",
            params.typed(&max.to_string(), "int8"),
            guard::too_many_rows("count(*)")
        ),
    };
    let counts_inserts = counts_inserts(plan);
    let sql = if counts_inserts || strip_nulls {
        // The answer's row is made first (a materialized CTE: the write has run to completion
        // when it exists), then shaped: nulls stripped from the body, the inserted rows read
        // from the setting the write counted them in.
        let shown = if strip_nulls {
            "json_strip_nulls(_o.body::json)::text"
        } else {
            "_o.body"
        };
        let inserted = if counts_inserts {
            format!(
                ", coalesce(nullif(current_setting('{INSERTED}', true), ''), '0')::int8 \
                 AS inserted"
            )
        } else {
            String::new()
        };
        format!(
            "WITH {}, _sluice_out AS MATERIALIZED (SELECT {body} AS body, {affected} AS affected, \
             {location} AS location) SELECT {shown} AS body, _o.affected, _o.location{inserted} \
             FROM _sluice_out _o",
            ctes.join(", ")
        )
    } else {
        format!(
            "WITH {} SELECT {body} AS body, {affected} AS affected, {location} AS location",
            ctes.join(", ")
        )
    };
    WriteStatement { sql, params }
}

/// The transaction-local setting a merging upsert counts its inserted rows in.
const INSERTED: &str = "sluice_write.inserted";
const INSERTED_PLUS_ONE: &str = "set_config('sluice_write.inserted', \
     (coalesce(nullif(current_setting('sluice_write.inserted', true), ''), '0')::int8 + 1)::text, \
     true)";
const INSERTED_MINUS_ONE: &str = "set_config('sluice_write.inserted', \
     (coalesce(nullif(current_setting('sluice_write.inserted', true), ''), '0')::int8 - 1)::text, \
     true)";

/// An insert that merges conflicting rows (POST with `resolution=merge-duplicates`, PUT): its
/// status depends on whether any row was new.
fn counts_inserts(plan: &WritePlan) -> bool {
    matches!(&plan.mutation, Mutation::Insert { conflict: Some(conflict), .. }
        if conflict.merge && !plan.columns.is_empty())
}

/// The filters; for a limited write, the rows are those the filters, order and page pick, named
/// by `ctid` (a subquery's `_t0` is its own table, not the outer one).
fn where_clause(plan: &WritePlan, params: &mut Params) -> String {
    let conditions = plan
        .filters
        .iter()
        .map(|predicate| predicate_sql(predicate, 0, params))
        .collect::<Vec<_>>();
    let filters = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    match &plan.limit {
        None => filters,
        Some(limit) => {
            let t0 = alias(0);
            let table = qualified(&plan.schema, &plan.table);
            let order_and_page = order_and_page(&limit.order, limit.page, 0, params);
            format!(
                " WHERE {t0}.ctid = ANY (ARRAY(SELECT {t0}.ctid FROM {table} {t0}{filters}\
                 {order_and_page}))"
            )
        }
    }
}

fn quoted_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|column| quote(column))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::plan::write::tests::plan;
    use crate::rest::plan::write::WriteMethod;

    #[test]
    fn an_insert_reads_the_body_into_the_row_type() {
        let plan = plan(WriteMethod::Post, "", "", r#"{"id": 1}"#).unwrap();
        let statement = write(&plan, r#"[{"id": 1}]"#);
        assert_eq!(
            statement.sql,
            "WITH _sluice_rows AS (INSERT INTO \"public\".\"todos\" AS _t0 (\"id\") \
             SELECT _r.\"id\" FROM json_array_elements($1::text::json) WITH ORDINALITY \
             AS _e(j, n), LATERAL json_populate_record(NULL::\"public\".\"todos\", _e.j) AS _r \
             ORDER BY _e.n RETURNING 1) SELECT NULL::text AS body, \
             (SELECT count(*) FROM _sluice_rows) AS affected, NULL::text AS location"
        );
        assert_eq!(statement.params.texts(), [r#"[{"id": 1}]"#]);
    }

    #[test]
    fn an_upsert_sets_every_written_column_from_excluded() {
        let plan = plan(
            WriteMethod::Post,
            "select=id",
            "resolution=merge-duplicates, return=representation",
            r#"{"id": 1, "weird \"name\"": 2}"#,
        )
        .unwrap();
        let sql = write(&plan, "[]").sql;
        assert!(
            sql.contains(
                "ON CONFLICT (\"id\") DO UPDATE SET \"id\" = EXCLUDED.\"id\", \
                 \"weird \"\"name\"\"\" = EXCLUDED.\"weird \"\"name\"\"\" WHERE \
                 set_config('sluice_write.inserted', (coalesce(nullif(current_setting(\
                 'sluice_write.inserted', true), ''), '0')::int8 - 1)::text, true) <> '-1' \
                 RETURNING _t0.*"
            ),
            "{sql}"
        );
        // Each row offered counts +1, each merged -1: the answer reads how many were new.
        assert!(sql.contains(
            "AS _r WHERE set_config('sluice_write.inserted', (coalesce(nullif(current_setting(\
             'sluice_write.inserted', true), ''), '0')::int8 + 1)::text, true) <> '0' ORDER BY _e.n"
        ));
        assert!(sql.ends_with(
            "SELECT _o.body AS body, _o.affected, _o.location, coalesce(nullif(current_setting(\
             'sluice_write.inserted', true), ''), '0')::int8 AS inserted FROM _sluice_out _o"
        ));
        assert!(sql.contains("_sluice_page AS (SELECT _t0.\"id\" AS \"id\" FROM _sluice_rows _t0)"));
    }

    #[test]
    fn hostile_values_never_reach_the_text() {
        let hostile = "x'); DROP TABLE todos; --";
        let body = serde_json::json!({ "title": hostile }).to_string();
        let query = "title=eq.x%27)%3B%20DROP%20TABLE%20todos%3B%20--";
        for (method, body) in [
            (WriteMethod::Patch, body.as_str()),
            (WriteMethod::Delete, ""),
        ] {
            let plan = plan(method, query, "return=representation", body).unwrap();
            let statement = write(&plan, &format!("[{body}]"));
            assert!(!statement.sql.contains("DROP"), "{}", statement.sql);
            assert!(
                statement.sql.contains("_t0.\"title\" = $"),
                "{}",
                statement.sql
            );
        }
    }

    #[test]
    fn patch_and_delete_filter_the_target_rows() {
        let plan = plan(WriteMethod::Patch, "id=eq.4", "", r#"{"title": "t"}"#).unwrap();
        let sql = write(&plan, "[]").sql;
        assert!(
            sql.contains(
                "UPDATE \"public\".\"todos\" AS _t0 SET \"title\" = _r.\"title\" FROM \
             json_populate_record(NULL::\"public\".\"todos\", ($1::text::json)->0) AS _r \
             WHERE _t0.\"id\" = $2::text::bigint RETURNING 1"
            ),
            "{sql}"
        );
        let plan = plan_delete();
        let sql = write(&plan, "[]").sql;
        assert!(sql.contains(
            "DELETE FROM \"public\".\"todos\" AS _t0 WHERE _t0.\"id\" = $1::text::bigint RETURNING 1"
        ), "{sql}");
    }

    fn plan_delete() -> WritePlan {
        plan(WriteMethod::Delete, "id=eq.4", "", "").unwrap()
    }
}
