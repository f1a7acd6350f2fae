//! SQL text for REST requests, from quoted identifiers (`ident`), catalog type names and numbered
//! bound parameters (`Params`) only: no value from a request is ever part of the text.

mod filter;
pub(crate) mod guard;
pub(crate) mod ident;
pub(crate) mod output;
mod privileges;
mod read;
pub(crate) mod rpc;
mod write;

#[cfg(test)]
mod tests;

use tokio_postgres::types::ToSql;

pub use privileges::{privileges, PrivilegesStatement};
pub use read::{read, ReadStatement};
pub use write::{write, write_shaped, WriteStatement};

/// The bound parameters of one statement, in `$n` order. Every value is sent as `text` (or
/// `text[]`) and cast in SQL to the type it is compared with, so that Postgres, not the sidecar,
/// reads it: `$1::text::int4`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params {
    values: Vec<Param>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Param {
    Text(String),
    TextArray(Vec<String>),
}

impl Params {
    /// Binds `value` and returns its placeholder, `$n::text`.
    pub fn text(&mut self, value: &str) -> String {
        self.values.push(Param::Text(value.to_owned()));
        format!("${}::text", self.values.len())
    }

    /// Binds `values` as one array and returns its placeholder, `$n::text[]`.
    pub fn text_array(&mut self, values: &[String]) -> String {
        self.values.push(Param::TextArray(values.to_vec()));
        format!("${}::text[]", self.values.len())
    }

    /// Binds `value` and returns it cast to `type_name` (a catalog type name, or a quoted one).
    pub fn typed(&mut self, value: &str, type_name: &str) -> String {
        format!("{}::{type_name}", self.text(value))
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values, as `tokio_postgres` takes them.
    pub fn as_sql(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values
            .iter()
            .map(|param| match param {
                Param::Text(text) => text as &(dyn ToSql + Sync),
                Param::TextArray(values) => values as &(dyn ToSql + Sync),
            })
            .collect()
    }

    /// The values as text, for `sluice.run_request`, which binds every parameter as `text`: an
    /// array becomes its array literal, which the SQL's `$n::text[]` reads back.
    pub fn as_text(&self) -> Vec<Option<String>> {
        self.values
            .iter()
            .map(|param| match param {
                Param::Text(text) => Some(text.clone()),
                Param::TextArray(values) => Some(array_literal(values)),
            })
            .collect()
    }

    /// The values as text, for tests.
    #[cfg(test)]
    pub fn texts(&self) -> Vec<String> {
        self.values
            .iter()
            .map(|param| match param {
                Param::Text(text) => text.clone(),
                Param::TextArray(values) => format!("{values:?}"),
            })
            .collect()
    }
}

/// `{"a","b \"c\""}`: every element double-quoted, with `\` and `"` escaped, so that commas,
/// braces, blanks and the word NULL inside values stay values.
fn array_literal(values: &[String]) -> String {
    let mut literal = String::from("{");
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            literal.push(',');
        }
        literal.push('"');
        for ch in value.chars() {
            if ch == '"' || ch == '\\' {
                literal.push('\\');
            }
            literal.push(ch);
        }
        literal.push('"');
    }
    literal.push('}');
    literal
}
