//! Filters as SQL: `col=op.value` conditions and `or`/`and` trees. The operator and its SQL
//! spelling are fixed here; the value is always a bound parameter cast to the compared type.

use super::read::field_expr;
use super::Params;
use crate::rest::parse::{
    FtsOperator, IsValue, JsonArrow, LogicOperator, Operation, Operator, Quantifier,
};
use crate::rest::plan::{Predicate, ResolvedField};

/// The field as a comparison's left side: after `->` as `jsonb`, so that `=` and `@>` exist
/// whether the column is `json` or `jsonb`.
fn compared_expr(field: &ResolvedField, depth: usize, params: &mut Params) -> String {
    let expr = field_expr(field, depth, params);
    match field.json_path.last() {
        Some(step) if step.arrow == JsonArrow::Json => format!("({expr})::jsonb"),
        _ => expr,
    }
}

fn is_textual(type_name: &str) -> bool {
    matches!(
        type_name,
        "text" | "character varying" | "character" | "name" | "citext" | "public.citext"
    )
}

pub(super) fn predicate_sql(predicate: &Predicate, depth: usize, params: &mut Params) -> String {
    let (negated, sql) = match predicate {
        Predicate::Condition {
            field,
            negated,
            operation,
        } => (*negated, condition_sql(field, operation, depth, params)),
        Predicate::Group {
            negated,
            operator,
            children,
        } => {
            let (joiner, empty) = match operator {
                LogicOperator::And => (" AND ", "TRUE"),
                LogicOperator::Or => (" OR ", "FALSE"),
            };
            let parts = children
                .iter()
                .map(|child| predicate_sql(child, depth, params))
                .collect::<Vec<_>>();
            let sql = if parts.is_empty() {
                empty.to_owned()
            } else {
                format!("({})", parts.join(joiner))
            };
            (*negated, sql)
        }
    };
    if negated {
        format!("NOT ({sql})")
    } else {
        sql
    }
}

fn condition_sql(
    field: &ResolvedField,
    operation: &Operation,
    depth: usize,
    params: &mut Params,
) -> String {
    let value_type = field.value_type().to_owned();
    let lhs = compared_expr(field, depth, params);
    match operation {
        Operation::Compare {
            operator,
            quantifier,
            value,
        } => {
            let (op, pattern) = operator_sql(*operator);
            // Pattern operators work on text: the column is read as text, the value stays text.
            let (lhs, value_type) = if pattern && !is_textual(&value_type) {
                (format!("({lhs})::text"), "text".to_owned())
            } else if pattern {
                (lhs, "text".to_owned())
            } else {
                (lhs, value_type)
            };
            match quantifier {
                None => format!("{lhs} {op} {}", params.typed(value, &value_type)),
                Some(quantifier) => {
                    let word = match quantifier {
                        Quantifier::Any => "ANY",
                        Quantifier::All => "ALL",
                    };
                    format!("{lhs} {op} {word}({}::{value_type}[])", params.text(value))
                }
            }
        }
        Operation::In(values) => {
            format!("{lhs} = ANY({}::{value_type}[])", params.text_array(values))
        }
        Operation::Is(value) => {
            let word = match value {
                IsValue::Null => "NULL",
                IsValue::NotNull => "NOT NULL",
                IsValue::True => "TRUE",
                IsValue::False => "FALSE",
                IsValue::Unknown => "UNKNOWN",
            };
            format!("{lhs} IS {word}")
        }
        Operation::IsDistinct(value) => {
            format!(
                "{lhs} IS DISTINCT FROM {}",
                params.typed(value, &value_type)
            )
        }
        Operation::FullText {
            operator,
            language,
            query,
        } => {
            let function = match operator {
                FtsOperator::Fts => "to_tsquery",
                FtsOperator::Plain => "plainto_tsquery",
                FtsOperator::Phrase => "phraseto_tsquery",
                FtsOperator::Websearch => "websearch_to_tsquery",
            };
            let language = language
                .as_deref()
                .map(|language| params.typed(language, "regconfig"));
            let query = params.text(query);
            let document = match (&language, value_type == "tsvector") {
                (_, true) => lhs,
                (Some(language), false) => format!("to_tsvector({language}, ({lhs})::text)"),
                (None, false) => format!("to_tsvector(({lhs})::text)"),
            };
            match language {
                Some(language) => format!("{document} @@ {function}({language}, {query})"),
                None => format!("{document} @@ {function}({query})"),
            }
        }
    }
}

/// The SQL operator, and whether it matches text patterns.
fn operator_sql(operator: Operator) -> (&'static str, bool) {
    match operator {
        Operator::Eq => ("=", false),
        Operator::Neq => ("<>", false),
        Operator::Gt => (">", false),
        Operator::Gte => (">=", false),
        Operator::Lt => ("<", false),
        Operator::Lte => ("<=", false),
        Operator::Like => ("LIKE", true),
        Operator::Ilike => ("ILIKE", true),
        Operator::Match => ("~", true),
        Operator::Imatch => ("~*", true),
        Operator::Contains => ("@>", false),
        Operator::ContainedIn => ("<@", false),
        Operator::Overlaps => ("&&", false),
        Operator::StrictlyLeft => ("<<", false),
        Operator::StrictlyRight => (">>", false),
        Operator::NotExtendsRight => ("&<", false),
        Operator::NotExtendsLeft => ("&>", false),
        Operator::Adjacent => ("-|-", false),
    }
}
