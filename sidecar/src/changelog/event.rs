//! One event of the change log, as every consumer receives it.

use serde_json::{Map, Value};

/// What happened to the table. `TRUNCATE` is one event for the whole statement, with no row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Insert,
    Update,
    Delete,
    Truncate,
}

impl Op {
    /// The `op` column of `sluice.changes` (also what realtime-js calls the event's `type`).
    pub fn parse(op: &str) -> Option<Op> {
        match op {
            "INSERT" => Some(Op::Insert),
            "UPDATE" => Some(Op::Update),
            "DELETE" => Some(Op::Delete),
            "TRUNCATE" => Some(Op::Truncate),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "INSERT",
            Op::Update => "UPDATE",
            Op::Delete => "DELETE",
            Op::Truncate => "TRUNCATE",
        }
    }
}

/// One committed event from `sluice.changes`.
#[derive(Debug, Clone)]
pub struct Change {
    pub position: i64,
    pub commit_timestamp: String,
    pub schema: String,
    pub table: String,
    pub op: Op,
    /// The row's key (empty for TRUNCATE).
    pub pk: Map<String, Value>,
    /// The new row (INSERT, UPDATE).
    pub record: Option<Map<String, Value>>,
    /// The old row (UPDATE, DELETE).
    pub old_record: Option<Map<String, Value>>,
}

/// Events read in one go, in position order.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<Change>,
    /// The highest position read: a cursor may move here once the events are handled, even past
    /// rows that could not be decoded (logged, never fatal).
    pub through: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_of_the_log_round_trips() {
        for op in [Op::Insert, Op::Update, Op::Delete, Op::Truncate] {
            assert_eq!(Op::parse(op.as_str()), Some(op));
        }
        assert_eq!(Op::parse("insert"), None);
    }
}
