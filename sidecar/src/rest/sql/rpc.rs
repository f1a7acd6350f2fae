//! The one statement of a function call. Like a read's, its single row is `body text`,
//! `page_count int8`, `total int8`.
//!
//! Named arguments are read by Postgres from one bound JSON object, each as its catalog type:
//!
//! ```sql
//! SELECT to_json("s"."f"("a" := _a."a", "b" := _a."b"))::text, 1::int8, NULL::int8
//! FROM json_to_record($1::text::json) AS _a("a" integer, "b" text)
//! ```
//!
//! so a JSON array becomes a Postgres array, an object a `json` value, and a string the input
//! text of the type (`"2026-01-01"` a date). The body of `f(json)` is bound whole and cast.
//!
//! A function returning rows is read with the read builder: its statement reads the function's
//! rows from a materialized CTE (`WITH _sluice_call AS MATERIALIZED (SELECT _c.* FROM … "s"."f"(…)
//! _c)`, evaluated once even when the total is counted) in place of the relation it names.

use super::guard;
use super::ident::{qualified, quote};
use super::read::read;
use super::Params;
use crate::rest::parse::MediaType;
use crate::rest::plan::rpc::{CallArgs, CallPlan, CallResult};

/// SQL text and its parameters; the single row has `body text`, `page_count int8`, `total int8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallStatement {
    pub sql: String,
    pub params: Params,
}

/// The read builder's statement starts so; the call's CTE goes in front of its own.
const READ_PREFIX: &str = "WITH _sluice_page AS (";

pub(crate) fn call(plan: &CallPlan) -> CallStatement {
    let statement = call_rows(plan);
    match plan.max_affected {
        None => statement,
        Some(max) => at_most(statement, max),
    }
}

/// `statement` failing (see `guard`) when its page has more than `max` rows: the call's writes
/// are undone with it.
fn at_most(statement: CallStatement, max: u64) -> CallStatement {
    let mut params = statement.params;
    let max = params.typed(&max.to_string(), "int8");
    CallStatement {
        sql: format!(
            "SELECT _m.body, CASE WHEN _m.page_count > {max} THEN {}::int8 \
             ELSE _m.page_count END AS page_count, _m.total FROM ({}) _m",
            guard::too_many_rows("_m.page_count"),
            statement.sql
        ),
        params,
    }
}

fn call_rows(plan: &CallPlan) -> CallStatement {
    match &plan.result {
        CallResult::Rows {
            read: read_plan,
            set,
        } => {
            let statement = read(read_plan);
            let mut params = statement.params;
            let (call, from) = call_sql(plan, &mut params);
            let relation = format!(
                "{} _t0",
                qualified(&read_plan.root.schema, &read_plan.root.table)
            );
            let rows = match from {
                Some(from) => format!("SELECT _c.* {from} CROSS JOIN LATERAL {call} _c"),
                None => format!("SELECT _c.* FROM {call} _c"),
            };
            // The top-level relation is the only one aliased `_t0` (embeddings are `_t1` and
            // deeper), and the read's SQL text holds nothing else but quoted names and
            // placeholders, so this replaces exactly the relation the function stands for.
            let body = statement.sql.replace(&relation, "_sluice_call _t0");
            let body = body.strip_prefix(READ_PREFIX).unwrap_or(&body);
            let mut sql =
                format!("WITH _sluice_call AS MATERIALIZED ({rows}), _sluice_page AS ({body}");
            if !set && read_plan.media == MediaType::Json {
                // Without SETOF the answer is the row itself, an object (null when filtered out).
                sql = format!(
                    "SELECT coalesce((_r.body::json->0)::text, 'null') AS body, _r.page_count, \
                     _r.total FROM ({sql}) _r"
                );
            }
            CallStatement { sql, params }
        }
        CallResult::Void
        | CallResult::Scalar { set: false }
        | CallResult::Records { set: false } => {
            let mut params = Params::default();
            let (call, from) = call_sql(plan, &mut params);
            let value = match plan.result {
                CallResult::Void => format!("({call})::text"),
                _ => format!("to_json({call})::text"),
            };
            // One call, one row: its count is 1.
            let total = if plan.count.is_some() { "1" } else { "NULL" };
            CallStatement {
                sql: format!(
                    "SELECT {value} AS body, 1::int8 AS page_count, {total}::int8 AS total{}",
                    from.map(|from| format!(" {from}")).unwrap_or_default()
                ),
                params,
            }
        }
        CallResult::Scalar { set: true } | CallResult::Records { set: true } => {
            let mut params = Params::default();
            let (call, from) = call_sql(plan, &mut params);
            let (item, value) = match plan.result {
                CallResult::Scalar { .. } => (format!("{call} _c(v)"), "_c.v"),
                _ => (format!("{call} _c"), "_c"),
            };
            let from = match from {
                Some(from) => format!("{from} CROSS JOIN LATERAL {item}"),
                None => format!("FROM {item}"),
            };
            let all = format!("SELECT {value} AS _v {from}");
            // Counted, every row is made once (a materialized CTE) and both the page and the
            // total read it.
            let (counted, mut rows, total) = if plan.count.is_some() {
                (
                    format!("WITH _sluice_call AS MATERIALIZED ({all}) "),
                    "SELECT _v FROM _sluice_call".to_owned(),
                    "(SELECT count(*) FROM _sluice_call)",
                )
            } else {
                (String::new(), all, "NULL::int8")
            };
            if let Some(limit) = plan.page.limit {
                let limit = params.typed(&limit.to_string(), "int8");
                rows.push_str(&format!(" LIMIT {limit}"));
            }
            if plan.page.offset > 0 {
                let offset = params.typed(&plan.page.offset.to_string(), "int8");
                rows.push_str(&format!(" OFFSET {offset}"));
            }
            CallStatement {
                sql: format!(
                    "{counted}SELECT coalesce(json_agg(_s._v), '[]')::text AS body, \
                     count(*) AS page_count, {total} AS total FROM ({rows}) _s"
                ),
                params,
            }
        }
    }
}

/// The call expression, and the `FROM json_to_record(…)` its named arguments come from.
fn call_sql(plan: &CallPlan, params: &mut Params) -> (String, Option<String>) {
    let function = qualified(&plan.schema, &plan.function);
    match &plan.args {
        CallArgs::Body { type_name, body } if type_name == "bytea" => {
            let value = format!("decode({}, 'hex')", params.text(body));
            (format!("{function}({value})"), None)
        }
        CallArgs::Body { type_name, body } => {
            let value = params.typed(body, type_name);
            (format!("{function}({value})"), None)
        }
        CallArgs::Named { args, .. } if args.is_empty() => (format!("{function}()"), None),
        CallArgs::Named { args, values } => {
            let named = args
                .iter()
                .map(|arg| {
                    let variadic = if arg.variadic { "VARIADIC " } else { "" };
                    format!("{variadic}{} := _a.{}", quote(&arg.name), quote(&arg.name))
                })
                .collect::<Vec<_>>()
                .join(", ");
            let columns = args
                .iter()
                .map(|arg| format!("{} {}", quote(&arg.name), arg.type_name))
                .collect::<Vec<_>>()
                .join(", ");
            let values = params.typed(values, "json");
            (
                format!("{function}({named})"),
                Some(format!("FROM json_to_record({values}) AS _a({columns})")),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::plan::rpc::NamedArg;

    fn plan(args: CallArgs, result: CallResult) -> CallPlan {
        CallPlan {
            schema: "public".into(),
            function: "add \"them\"".into(),
            args,
            result,
            read_only: true,
            rollback: false,
            page: Default::default(),
            count: None,
            max_affected: None,
        }
    }

    #[test]
    fn named_arguments_come_from_one_json_parameter() {
        let args = CallArgs::Named {
            args: vec![
                NamedArg {
                    name: "a".into(),
                    type_name: "integer".into(),
                    variadic: false,
                },
                NamedArg {
                    name: "b\"x".into(),
                    type_name: "text[]".into(),
                    variadic: true,
                },
            ],
            values: r#"{"a": 1, "b\"x": ["y"]}"#.into(),
        };
        let statement = call(&plan(args, CallResult::Scalar { set: false }));
        assert_eq!(
            statement.sql,
            "SELECT to_json(\"public\".\"add \"\"them\"\"\"(\"a\" := _a.\"a\", \
             VARIADIC \"b\"\"x\" := _a.\"b\"\"x\"))::text AS body, 1::int8 AS page_count, \
             NULL::int8 AS total FROM json_to_record($1::text::json) AS _a(\"a\" integer, \
             \"b\"\"x\" text[])"
        );
        assert_eq!(statement.params.texts(), [r#"{"a": 1, "b\"x": ["y"]}"#]);
    }

    #[test]
    fn a_body_argument_is_bound_whole_and_a_set_is_aggregated() {
        let args = CallArgs::Body {
            type_name: "jsonb".into(),
            body: "[1, 2]".into(),
        };
        let statement = call(&plan(args, CallResult::Scalar { set: true }));
        assert_eq!(
            statement.sql,
            "SELECT coalesce(json_agg(_s._v), '[]')::text AS body, count(*) AS page_count, \
             NULL::int8 AS total FROM (SELECT _c.v AS _v FROM \
             \"public\".\"add \"\"them\"\"\"($1::text::jsonb) _c(v)) _s"
        );
        assert_eq!(statement.params.texts(), ["[1, 2]"]);
    }

    #[test]
    fn rows_are_read_from_the_call_in_place_of_the_relation() {
        let request = crate::rest::parse::parse_read("select=id&id=eq.1", &Default::default());
        let cache = crate::rest::plan::tests::cache();
        let read = crate::rest::plan::plan_read(&cache, "todos", request.unwrap(), None).unwrap();
        let args = CallArgs::Named {
            args: vec![NamedArg {
                name: "n".into(),
                type_name: "integer".into(),
                variadic: false,
            }],
            values: r#"{"n": 1}"#.into(),
        };
        let rows = CallResult::Rows {
            read: Box::new(read),
            set: true,
        };
        let statement = call(&plan(args, rows));
        assert!(
            statement.sql.starts_with(
                "WITH _sluice_call AS MATERIALIZED (SELECT _c.* FROM json_to_record($2::text::json) \
                 AS _a(\"n\" integer) CROSS JOIN LATERAL \"public\".\"add \"\"them\"\"\"(\"n\" := \
                 _a.\"n\") _c), _sluice_page AS (SELECT "
            ),
            "{}",
            statement.sql
        );
        assert!(statement.sql.contains("FROM _sluice_call _t0 WHERE"));
        assert!(!statement.sql.contains("\"public\".\"todos\""));
        assert_eq!(statement.params.texts(), ["1", r#"{"n": 1}"#]);
    }

    #[test]
    fn a_counted_set_reads_every_row_once_and_max_affected_guards_the_page() {
        let mut counted = plan(
            CallArgs::Named {
                args: Vec::new(),
                values: "{}".into(),
            },
            CallResult::Scalar { set: true },
        );
        counted.count = Some(crate::rest::parse::Count::Exact);
        counted.page.limit = Some(2);
        let statement = call(&counted);
        assert_eq!(
            statement.sql,
            "WITH _sluice_call AS MATERIALIZED (SELECT _c.v AS _v FROM \
             \"public\".\"add \"\"them\"\"\"() _c(v)) SELECT coalesce(json_agg(_s._v), '[]')::text \
             AS body, count(*) AS page_count, (SELECT count(*) FROM _sluice_call) AS total FROM \
             (SELECT _v FROM _sluice_call LIMIT $1::text::int8) _s"
        );
        counted.max_affected = Some(5);
        let guarded = call(&counted);
        assert!(guarded.sql.starts_with(
            "SELECT _m.body, CASE WHEN _m.page_count > $2::text::int8 THEN \
             sluice.raise_error('SL124', 'Query result exceeds max-affected preference \
             constraint', (_m.page_count)::text)::int8 ELSE _m.page_count END AS page_count, \
             _m.total FROM (WITH _sluice_call"
        ));
        assert_eq!(guarded.params.texts(), ["2", "5"]);
    }

    #[test]
    fn void_without_arguments() {
        let args = CallArgs::Named {
            args: Vec::new(),
            values: "{}".into(),
        };
        let statement = call(&plan(args, CallResult::Void));
        assert_eq!(
            statement.sql,
            "SELECT (\"public\".\"add \"\"them\"\"\"())::text AS body, 1::int8 AS page_count, \
             NULL::int8 AS total"
        );
        assert!(statement.params.is_empty());
    }
}
