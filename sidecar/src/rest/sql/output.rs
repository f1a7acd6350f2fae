//! What a statement's body becomes for PostgREST's vendor media types, as a wrapper around the
//! statement built for the plain format: `nulls=stripped` (`json_strip_nulls` of the body) and
//! the plan media types (`EXPLAIN (…)` of the whole statement, as PostgREST explains its main
//! query). Both are SQL text around our own SQL text; the parameters stay as they were.

use crate::rest::parse::Explain;

/// `sql` whose first column, `body`, loses its null-valued keys; `rest` names the other
/// columns, kept as they are.
pub(crate) fn strip_nulls(sql: &str, rest: &[&str]) -> String {
    let rest: String = rest.iter().map(|column| format!(", _o.{column}")).collect();
    format!("SELECT json_strip_nulls(_o.body::json)::text AS body{rest} FROM ({sql}) _o")
}

/// `EXPLAIN (FORMAT …, <options>) <sql>`: one row of JSON, or one row per line of text.
pub(crate) fn explain(sql: &str, explain: Explain) -> String {
    let mut options = vec![if explain.json {
        "FORMAT JSON"
    } else {
        "FORMAT TEXT"
    }];
    for (on, option) in [
        (explain.analyze, "ANALYZE"),
        (explain.verbose, "VERBOSE"),
        (explain.settings, "SETTINGS"),
        (explain.buffers, "BUFFERS"),
        (explain.wal, "WAL"),
    ] {
        if on {
            options.push(option);
        }
    }
    format!("EXPLAIN ({}) {sql}", options.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_nulls_wraps_the_body_only() {
        assert_eq!(
            strip_nulls("SELECT 1", &["page_count", "total"]),
            "SELECT json_strip_nulls(_o.body::json)::text AS body, _o.page_count, _o.total \
             FROM (SELECT 1) _o"
        );
    }

    #[test]
    fn explain_names_the_options_asked_for() {
        let plain = Explain::default();
        assert_eq!(explain("SELECT 1", plain), "EXPLAIN (FORMAT TEXT) SELECT 1");
        let all = Explain {
            json: true,
            analyze: true,
            verbose: true,
            settings: true,
            buffers: true,
            wal: true,
        };
        assert_eq!(
            explain("SELECT 1", all),
            "EXPLAIN (FORMAT JSON, ANALYZE, VERBOSE, SETTINGS, BUFFERS, WAL) SELECT 1"
        );
    }
}
