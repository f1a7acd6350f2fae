//! Logic trees: `or=(a.eq.1,and(b.gt.2,c.lt.3))`, `not.and=(…)`, `author.or=(…)`.
//!
//! ```text
//! key   := [embed '.']* ['not' '.'] ('and' | 'or')
//! value := '(' child (',' child)* ')'
//! child := ['not.'] ('and' | 'or') '(' child (',' child)* ')'
//!        | field '.' operation                      (operation as in `filter`, values end at , or ))
//! ```
//! Spaces and tabs may surround children and parentheses. Nesting is limited to `MAX_DEPTH`.

use super::cursor::{Cursor, Failure, MAX_DEPTH};
use super::field;
use super::filter::{self, Condition, ValueEnd};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogicTree {
    Condition(Condition),
    Group {
        negated: bool,
        operator: LogicOperator,
        children: Vec<LogicTree>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogicOperator {
    And,
    Or,
}

/// The key of a logic parameter: its embed path, and whether it is `not.`-ed and which operator.
pub(crate) fn parse_key(key: &str) -> Result<(Vec<String>, bool, LogicOperator), Failure> {
    let mut c = Cursor::new(key);
    let mut names = field::dotted_names(&mut c)?;
    c.expect_end("'.' or the end of the key")?;
    let operator = match names.pop().as_deref() {
        Some("and") => LogicOperator::And,
        Some("or") => LogicOperator::Or,
        _ => return Err(Failure::syntax(0, "a logic key must end in 'and' or 'or'")),
    };
    let negated = names.last().is_some_and(|name| name == "not");
    if negated {
        names.pop();
    }
    Ok((names, negated, operator))
}

/// The value of a logic parameter, given what its key said.
pub(crate) fn parse_value(
    value: &str,
    negated: bool,
    operator: LogicOperator,
) -> Result<LogicTree, Failure> {
    let mut c = Cursor::new(value);
    c.skip_ws();
    let children = children(&mut c, 1)?;
    c.expect_end("the end of the value")?;
    Ok(LogicTree::Group {
        negated,
        operator,
        children,
    })
}

/// `(child, …)` at nesting level `depth`, and the blanks after it.
fn children(c: &mut Cursor, depth: usize) -> Result<Vec<LogicTree>, Failure> {
    c.expect('(')?;
    let mut children = Vec::new();
    loop {
        c.skip_ws();
        children.push(child(c, depth)?);
        c.skip_ws();
        if !c.eat(',') {
            break;
        }
    }
    c.expect(')').map_err(|_| c.unexpected("',' or ')'"))?;
    c.skip_ws();
    Ok(children)
}

fn child(c: &mut Cursor, depth: usize) -> Result<LogicTree, Failure> {
    if let Some((negated, operator)) = group_head(c) {
        if depth + 1 > MAX_DEPTH {
            return Err(Failure::TooDeep);
        }
        let children = children(c, depth + 1)?;
        return Ok(LogicTree::Group {
            negated,
            operator,
            children,
        });
    }
    let field = field::field(c)?;
    c.skip_ws();
    c.expect('.')?;
    let (negated, operation) = filter::operation(c, ValueEnd::LogicItem)?;
    Ok(LogicTree::Condition(Condition {
        field,
        negated,
        operation,
    }))
}

/// `not.and (` and the like: consumed up to the parenthesis when present, else nothing is. A
/// column named `and` stays a column: `and.eq.1` is a condition.
fn group_head(c: &mut Cursor) -> Option<(bool, LogicOperator)> {
    let start = c.pos();
    let negated = c.eat_str("not.");
    let operator = if c.eat_str("and") {
        Some(LogicOperator::And)
    } else if c.eat_str("or") {
        Some(LogicOperator::Or)
    } else {
        None
    };
    c.skip_ws();
    match operator {
        Some(operator) if c.peek() == Some('(') => Some((negated, operator)),
        _ => {
            c.reset(start);
            None
        }
    }
}
