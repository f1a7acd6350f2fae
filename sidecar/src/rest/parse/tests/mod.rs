//! Unit tests of the parser, one file per grammar, plus hostile input.

mod decode;
mod filter;
mod hostile;
mod limits;
mod logic;
mod media;
mod order;
mod page;
mod prefer;
mod request;
mod select;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::*;

/// A GET that must parse.
fn read(query: &str) -> RestRequest {
    parse_read(query, &HeaderMap::new()).unwrap_or_else(|err| panic!("{query}: {err}"))
}

/// A GET that must fail.
fn read_err(query: &str) -> ParseError {
    match parse_read(query, &HeaderMap::new()) {
        Ok(parsed) => panic!("{query} parsed: {parsed:?}"),
        Err(err) => err,
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// Percent-encodes everything but unreserved characters, as `URLSearchParams` would.
fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn col(name: &str) -> Field {
    Field::column(name)
}

fn key(name: &str) -> JsonOperand {
    JsonOperand::Key(name.to_owned())
}

fn step(arrow: JsonArrow, operand: JsonOperand) -> JsonStep {
    JsonStep { arrow, operand }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The code, status and column of a `PGRST100`, for compact assertions.
fn invalid_at(err: &ParseError) -> usize {
    match err {
        ParseError::InvalidParameter { column, .. } => *column,
        other => panic!("expected InvalidParameter, got {other:?}"),
    }
}
