//! `order=`: `order=created_at.desc.nullslast,id`, `comments.order=id.desc`.
//!
//! ```text
//! order := term (',' term)*
//! term  := (relation '(' field ')' | field) ['.' ('asc'|'desc')] ['.' ('nullsfirst'|'nullslast')]
//! ```
//! `relation(field)` orders by a column of a to-one embedded resource; the planner checks the
//! cardinality.

use super::cursor::{Cursor, Failure};
use super::field::{self, Field};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTerm {
    /// Set for `relation(field)` terms.
    pub relation: Option<String>,
    pub field: Field,
    pub direction: Option<Direction>,
    pub nulls: Option<NullsOrder>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullsOrder {
    First,
    Last,
}

pub(crate) fn parse_order(value: &str) -> Result<Vec<OrderTerm>, Failure> {
    let mut c = Cursor::new(value);
    let mut terms = Vec::new();
    loop {
        c.skip_ws();
        terms.push(term(&mut c)?);
        c.skip_ws();
        if !c.eat(',') {
            break;
        }
    }
    c.expect_end("',' or the end of the order")?;
    Ok(terms)
}

fn term(c: &mut Cursor) -> Result<OrderTerm, Failure> {
    let name = field::name(c)?;
    let after_name = c.pos();
    c.skip_ws();
    let (relation, field) = if c.eat('(') {
        c.skip_ws();
        let field = field::field(c)?;
        c.skip_ws();
        c.expect(')')?;
        (Some(name), field)
    } else {
        c.reset(after_name);
        let json_path = field::json_path(c)?;
        (None, Field { name, json_path })
    };
    c.skip_ws();
    let mut direction = None;
    let mut nulls = None;
    while c.eat('.') {
        let at = c.pos();
        match c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
            "asc" if direction.is_none() && nulls.is_none() => direction = Some(Direction::Asc),
            "desc" if direction.is_none() && nulls.is_none() => direction = Some(Direction::Desc),
            "nullsfirst" if nulls.is_none() => nulls = Some(NullsOrder::First),
            "nullslast" if nulls.is_none() => nulls = Some(NullsOrder::Last),
            _ => {
                return Err(Failure::syntax(
                    at,
                    "expected asc or desc, then nullsfirst or nullslast",
                ))
            }
        }
    }
    Ok(OrderTerm {
        relation,
        field,
        direction,
        nulls,
    })
}
