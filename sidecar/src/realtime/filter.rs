//! What a channel subscribes to: postgres_changes bindings (schema, table, event, and one column
//! filter written as in Supabase: `col=eq.v`, `neq`, `lt`, `lte`, `gt`, `gte`, `in.(a,b)`), and
//! the topic shorthand `posts.*` / `posts.created` / `posts.updated` / `posts.deleted`.
//!
//! `TRUNCATE` events reach bindings whose event is `*` or `TRUNCATE`, whatever their column
//! filter: the statement removed every row, the filtered ones too. (Supabase's postgres_changes
//! today has no TRUNCATE; its first realtime server sent them in this shape, filtered by schema and
//! table only, and realtime-js hands them to `*` listeners with empty `new` and `old`.)

use serde_json::{json, Map, Value};

pub(crate) use crate::changelog::Op;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnFilter {
    pub column: String,
    pub compare: Compare,
    pub values: Vec<String>,
}

/// One postgres_changes binding of a channel. `config` is echoed back in the join reply with
/// its id, so the client can match it to its own binding.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub id: u32,
    pub schema: String,
    pub table: Option<String>,
    /// `None` for `*`.
    pub event: Option<Op>,
    pub filter: Option<ColumnFilter>,
    pub config: Value,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum FilterError {
    #[error("postgres_changes entries must be objects with event, schema and optionally table and filter")]
    NotAnObject,
    #[error("unknown postgres_changes event {0:?}; use INSERT, UPDATE, DELETE, TRUNCATE or *")]
    Event(String),
    #[error(
        "invalid filter {0:?}; use column=op.value with op one of eq, neq, lt, lte, gt, gte, in"
    )]
    Filter(String),
}

pub(crate) fn parse_filter(text: &str) -> Result<ColumnFilter, FilterError> {
    let bad = || FilterError::Filter(text.to_owned());
    let (column, rest) = text.split_once('=').ok_or_else(bad)?;
    let (op, value) = rest.split_once('.').ok_or_else(bad)?;
    let compare = match op {
        "eq" => Compare::Eq,
        "neq" => Compare::Neq,
        "lt" => Compare::Lt,
        "lte" => Compare::Lte,
        "gt" => Compare::Gt,
        "gte" => Compare::Gte,
        "in" => Compare::In,
        _ => return Err(bad()),
    };
    let values = if compare == Compare::In {
        let inner = value
            .strip_prefix('(')
            .and_then(|v| v.strip_suffix(')'))
            .ok_or_else(bad)?;
        inner
            .split(',')
            .map(|v| v.trim().trim_matches('"').to_owned())
            .collect()
    } else {
        vec![value.to_owned()]
    };
    if column.is_empty() {
        return Err(bad());
    }
    Ok(ColumnFilter {
        column: column.to_owned(),
        compare,
        values,
    })
}

/// The postgres_changes entries of a join payload, numbered from `first_id`.
pub(crate) fn parse_bindings(
    entries: &[Value],
    first_id: u32,
) -> Result<Vec<Binding>, FilterError> {
    let mut bindings = Vec::with_capacity(entries.len());
    for (n, entry) in entries.iter().enumerate() {
        let Value::Object(map) = entry else {
            return Err(FilterError::NotAnObject);
        };
        let text = |key: &str| map.get(key).and_then(Value::as_str);
        let event = match text("event").unwrap_or("*") {
            "*" => None,
            other => Some(
                Op::parse(&other.to_ascii_uppercase())
                    .ok_or_else(|| FilterError::Event(other.to_owned()))?,
            ),
        };
        let filter = match text("filter") {
            Some(f) if !f.is_empty() => Some(parse_filter(f)?),
            _ => None,
        };
        bindings.push(Binding {
            id: first_id + n as u32,
            schema: text("schema").unwrap_or("public").to_owned(),
            table: text("table").filter(|t| *t != "*").map(str::to_owned),
            event,
            filter,
            config: entry.clone(),
        });
    }
    Ok(bindings)
}

/// `posts.*`, `posts.created`, `posts.updated`, `posts.deleted` (after the `realtime:` prefix) as
/// the equivalent postgres_changes entry on `public.posts`; `schema.posts.created` names a schema.
pub(crate) fn shorthand(subtopic: &str) -> Option<Value> {
    let (relation, action) = subtopic.rsplit_once('.')?;
    let event = match action {
        "*" => "*",
        "created" => "INSERT",
        "updated" => "UPDATE",
        "deleted" => "DELETE",
        _ => return None,
    };
    let (schema, table) = relation.split_once('.').unwrap_or(("public", relation));
    if table.is_empty() || schema.is_empty() {
        return None;
    }
    Some(json!({"event": event, "schema": schema, "table": table}))
}

impl Binding {
    /// Whether an event on `schema.table` of kind `op`, whose delivered row is `row`, matches.
    pub fn matches(
        &self,
        schema: &str,
        table: &str,
        op: Op,
        row: Option<&Map<String, Value>>,
    ) -> bool {
        if self.schema != schema
            || self.table.as_deref().is_some_and(|t| t != table)
            || self.event.is_some_and(|e| e != op)
        {
            return false;
        }
        if op == Op::Truncate {
            return true;
        }
        match &self.filter {
            None => true,
            Some(filter) => row
                .and_then(|row| row.get(&filter.column))
                .is_some_and(|value| filter.accepts(value)),
        }
    }
}

impl ColumnFilter {
    pub fn accepts(&self, value: &Value) -> bool {
        let text = match value {
            Value::Null => return false,
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let order = |wanted: &str| match (text.parse::<f64>(), wanted.parse::<f64>()) {
            (Ok(a), Ok(b)) => a.partial_cmp(&b),
            _ => Some(text.as_str().cmp(wanted)),
        };
        use std::cmp::Ordering::*;
        let first = self.values[0].as_str();
        match self.compare {
            Compare::Eq => order(first) == Some(Equal),
            Compare::Neq => order(first) != Some(Equal),
            Compare::Lt => order(first) == Some(Less),
            Compare::Lte => matches!(order(first), Some(Less | Equal)),
            Compare::Gt => order(first) == Some(Greater),
            Compare::Gte => matches!(order(first), Some(Greater | Equal)),
            Compare::In => self.values.iter().any(|v| order(v) == Some(Equal)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn filters_compare_like_supabase() {
        let r = row(json!({"id": 5, "name": "ann", "done": true, "gone": null}));
        let check = |f: &str| {
            let b = &parse_bindings(
                &[json!({"event": "*", "schema": "public", "table": "t", "filter": f})],
                1,
            )
            .unwrap()[0];
            b.matches("public", "t", Op::Insert, Some(&r))
        };
        assert!(check("id=eq.5"));
        assert!(!check("id=eq.50"));
        assert!(check("id=neq.4"));
        assert!(check("id=lt.10")); // numerically, though "5" > "10" as text
        assert!(check("id=lte.5"));
        assert!(check("id=gt.4.5"));
        assert!(!check("id=gte.6"));
        assert!(check("id=in.(1,5,9)"));
        assert!(check("name=eq.ann"));
        assert!(check("name=in.(\"bob\",\"ann\")"));
        assert!(check("done=eq.true"));
        assert!(!check("gone=eq.null"));
        assert!(!check("missing=eq.1"));
    }

    #[test]
    fn bad_filters_and_events_are_refused() {
        for f in ["id", "id=like.x", "=eq.1", "id=in.1,2"] {
            assert!(parse_filter(f).is_err(), "{f}");
        }
        let err = parse_bindings(&[json!({"event": "UPSERT", "schema": "public"})], 1).unwrap_err();
        assert_eq!(err, FilterError::Event("UPSERT".into()));
        assert!(parse_bindings(&[json!("x")], 1).is_err());
    }

    #[test]
    fn schema_table_and_event_narrow_a_binding() {
        let b = &parse_bindings(
            &[json!({"event": "DELETE", "schema": "public", "table": "t"})],
            7,
        )
        .unwrap()[0];
        assert_eq!(b.id, 7);
        assert!(b.matches("public", "t", Op::Delete, None));
        assert!(!b.matches("public", "t", Op::Insert, None));
        assert!(!b.matches("public", "u", Op::Delete, None));
        assert!(!b.matches("other", "t", Op::Delete, None));
        let all = &parse_bindings(&[json!({"event": "*", "schema": "public"})], 1).unwrap()[0];
        assert!(all.matches("public", "anything", Op::Update, None));
    }

    #[test]
    fn a_truncate_reaches_star_and_truncate_bindings_of_its_table_whatever_their_filter() {
        let bindings = parse_bindings(
            &[
                json!({"event": "*", "schema": "public", "table": "t", "filter": "id=eq.1"}),
                json!({"event": "truncate", "schema": "public", "table": "t"}),
                json!({"event": "DELETE", "schema": "public", "table": "t"}),
                json!({"event": "*", "schema": "public", "table": "u"}),
            ],
            1,
        )
        .unwrap();
        let reached: Vec<u32> = bindings
            .iter()
            .filter(|b| b.matches("public", "t", Op::Truncate, None))
            .map(|b| b.id)
            .collect();
        assert_eq!(reached, [1, 2]);
    }

    #[test]
    fn topic_shorthand() {
        assert_eq!(
            shorthand("posts.*"),
            Some(json!({"event": "*", "schema": "public", "table": "posts"}))
        );
        assert_eq!(shorthand("posts.created").unwrap()["event"], "INSERT");
        assert_eq!(shorthand("posts.updated").unwrap()["event"], "UPDATE");
        assert_eq!(
            shorthand("app.posts.deleted"),
            Some(json!({"event": "DELETE", "schema": "app", "table": "posts"}))
        );
        assert_eq!(shorthand("room1"), None);
        assert_eq!(shorthand("posts.other"), None);
    }
}
