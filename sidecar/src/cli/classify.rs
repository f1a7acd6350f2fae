//! What a migration statement does, before it runs: whether it destroys data (parsed with
//! `sqlparser`'s PostgreSQL dialect), and whether it must run outside a transaction (read from
//! its leading keywords, which works for statements the parser does not know).

use sqlparser::ast::{AlterColumnOperation, AlterTableOperation, ObjectType, Statement as Ast};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

/// The verdict on one statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Safe,
    /// Destroys data or objects that hold data; the text says what.
    Destructive(String),
    /// `sqlparser` could not parse it, so it was not checked; the text is the parser's error.
    Unparsable(String),
}

/// Classifies one statement's text (without its `;`).
pub(crate) fn review(sql: &str) -> Verdict {
    let parsed = match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
        Ok(parsed) => parsed,
        Err(err) => return Verdict::Unparsable(err.to_string()),
    };
    let reasons: Vec<String> = parsed.iter().filter_map(destructive).collect();
    if reasons.is_empty() {
        Verdict::Safe
    } else {
        Verdict::Destructive(reasons.join("; "))
    }
}

fn names<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn destructive(statement: &Ast) -> Option<String> {
    match statement {
        Ast::Drop {
            object_type,
            names: dropped,
            ..
        } => match object_type {
            ObjectType::Table
            | ObjectType::ForeignTable
            | ObjectType::MaterializedView
            | ObjectType::Schema
            | ObjectType::Database
            | ObjectType::Sequence
            | ObjectType::Type => Some(format!("DROP {object_type} {}", names(dropped))),
            _ => None,
        },
        Ast::DropFunction(drop) => Some(format!(
            "DROP FUNCTION {}",
            names(&drop.func_desc.iter().map(|f| &f.name).collect::<Vec<_>>())
        )),
        Ast::DropProcedure { proc_desc, .. } => Some(format!(
            "DROP PROCEDURE {}",
            names(&proc_desc.iter().map(|f| &f.name).collect::<Vec<_>>())
        )),
        Ast::Truncate(truncate) => Some(format!(
            "TRUNCATE {}",
            names(
                &truncate
                    .table_names
                    .iter()
                    .map(|t| &t.name)
                    .collect::<Vec<_>>()
            )
        )),
        Ast::Delete(delete) if delete.selection.is_none() && delete.using.is_none() => {
            Some("DELETE without WHERE (every row)".to_owned())
        }
        Ast::Update(update) if update.selection.is_none() && update.from.is_none() => {
            Some(format!("UPDATE {} without WHERE (every row)", update.table))
        }
        Ast::AlterTable(alter) => {
            let table = &alter.name;
            let reasons: Vec<String> = alter
                .operations
                .iter()
                .filter_map(|op| match op {
                    AlterTableOperation::DropColumn { column_names, .. } => Some(format!(
                        "ALTER TABLE {table} DROP COLUMN {}",
                        names(column_names)
                    )),
                    AlterTableOperation::DropPrimaryKey { .. } => {
                        Some(format!("ALTER TABLE {table} drops its primary key"))
                    }
                    AlterTableOperation::DropConstraint { name, .. }
                        if name.value.ends_with("_pkey") =>
                    {
                        Some(format!(
                            "ALTER TABLE {table} DROP CONSTRAINT {name} (a primary key: history and \
                             the change log identify rows by it)"
                        ))
                    }
                    AlterTableOperation::AlterColumn {
                        column_name,
                        op: AlterColumnOperation::SetDataType { data_type, .. },
                    } => Some(format!(
                        "ALTER TABLE {table} ALTER COLUMN {column_name} TYPE {data_type} (rewrites \
                         the table; values that do not convert fail or change)"
                    )),
                    _ => None,
                })
                .collect();
            (!reasons.is_empty()).then(|| reasons.join("; "))
        }
        _ => None,
    }
}

/// The statement's words (keywords and identifiers) upper-cased, comments and punctuation left
/// out; `None` when it cannot even be tokenized.
fn words(sql: &str) -> Option<Vec<String>> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    Some(
        tokens
            .into_iter()
            .filter_map(|token| match token {
                Token::Word(word) if word.quote_style.is_none() => Some(word.value.to_uppercase()),
                _ => None,
            })
            .collect(),
    )
}

/// How a statement must be run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Inside the migration's transaction.
    InTransaction,
    /// Alone, outside any transaction (Postgres refuses it in a transaction block).
    Alone,
    /// `BEGIN`/`COMMIT` written in the file: the file already runs in a transaction, so skipped.
    TransactionControl,
}

/// Statements Postgres refuses inside a transaction block.
pub(crate) fn placement(sql: &str) -> Placement {
    let Some(words) = words(sql) else {
        return Placement::InTransaction;
    };
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let has = |word: &str| w.contains(&word);
    match w.as_slice() {
        ["BEGIN" | "COMMIT" | "END" | "START", ..] if !has("FUNCTION") => {
            Placement::TransactionControl
        }
        ["CREATE", "INDEX" | "UNIQUE", ..] if has("CONCURRENTLY") => Placement::Alone,
        ["DROP", "INDEX", "CONCURRENTLY", ..] => Placement::Alone,
        ["REINDEX", ..] if has("CONCURRENTLY") || has("DATABASE") || has("SYSTEM") => {
            Placement::Alone
        }
        ["ALTER", "TABLE", ..] if has("DETACH") && has("CONCURRENTLY") => Placement::Alone,
        ["VACUUM", ..]
        | ["CREATE" | "DROP", "DATABASE" | "TABLESPACE", ..]
        | ["ALTER", "SYSTEM", ..]
        | ["CREATE" | "DROP", "SUBSCRIPTION", ..] => Placement::Alone,
        _ => Placement::InTransaction,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destructive_reason(sql: &str) -> String {
        match review(sql) {
            Verdict::Destructive(reason) => reason,
            other => panic!("{sql}: expected destructive, got {other:?}"),
        }
    }

    #[test]
    fn destructive_statements_are_named() {
        assert!(destructive_reason("DROP TABLE public.notes").contains("DROP TABLE public.notes"));
        assert!(destructive_reason("drop schema app cascade").contains("DROP SCHEMA app"));
        assert!(destructive_reason("DROP FUNCTION f(int)").contains("DROP FUNCTION f"));
        assert!(destructive_reason("TRUNCATE a, b").contains("TRUNCATE a, b"));
        assert!(destructive_reason("DELETE FROM notes").contains("without WHERE"));
        assert!(destructive_reason("UPDATE notes SET body = ''").contains("without WHERE"));
        assert!(
            destructive_reason("ALTER TABLE notes DROP COLUMN body").contains("DROP COLUMN body")
        );
        assert!(
            destructive_reason("ALTER TABLE notes ALTER COLUMN n TYPE bigint").contains("rewrites")
        );
        assert!(
            destructive_reason("ALTER TABLE notes DROP CONSTRAINT notes_pkey")
                .contains("primary key")
        );
    }

    #[test]
    fn ordinary_statements_are_safe() {
        for sql in [
            "CREATE TABLE notes (id bigint PRIMARY KEY, body text)",
            "DELETE FROM notes WHERE id = 1",
            "UPDATE notes SET body = '' WHERE id = 1",
            "ALTER TABLE notes ADD COLUMN title text",
            "DROP INDEX notes_body_idx",
            "DROP VIEW v",
            "CREATE INDEX CONCURRENTLY notes_body_idx ON notes (body)",
        ] {
            assert_eq!(review(sql), Verdict::Safe, "{sql}");
        }
    }

    #[test]
    fn unparsable_statements_are_reported_not_guessed() {
        assert!(matches!(review("DROPP TABLE x"), Verdict::Unparsable(_)));
    }

    #[test]
    fn statements_that_cannot_run_in_a_transaction_are_found() {
        for sql in [
            "CREATE INDEX CONCURRENTLY i ON t (x)",
            "create unique index concurrently if not exists i on t (x)",
            "DROP INDEX CONCURRENTLY i",
            "REINDEX INDEX CONCURRENTLY i",
            "VACUUM FULL t",
            "-- why\nALTER SYSTEM SET work_mem = '8MB'",
        ] {
            assert_eq!(placement(sql), Placement::Alone, "{sql}");
        }
        for sql in [
            "CREATE INDEX i ON t (x)",
            "CREATE TABLE \"concurrently\" (x int)",
            "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN END $$",
        ] {
            assert_eq!(placement(sql), Placement::InTransaction, "{sql}");
        }
        assert_eq!(placement("begin"), Placement::TransactionControl);
        assert_eq!(placement("COMMIT"), Placement::TransactionControl);
    }
}
