//! The raw query string into decoded key/value pairs, the way PostgREST (http-types'
//! `parseQueryReplacePlus True`) reads it:
//!
//! - a leading `?` is dropped; pairs are separated by `&` *or* `;`; empty pairs are skipped;
//! - a key without `=` has no value (and is then ignored by every parameter);
//! - `+` is a space in keys and values alike, *before* percent-decoding, so `%2B` is a literal `+`;
//! - `%XY` with two hex digits is a byte; a `%` not followed by two hex digits stays as it is;
//! - the decoded bytes must be UTF-8.

use super::error::{shorten, ParseError};

/// Longer query strings are refused before any work is done. Far above what clients send (a
/// 1000-element `in.(…)` of UUIDs is under 40 KB), low enough to bound the work per request.
pub const MAX_QUERY_LEN: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawPair {
    pub key: String,
    pub value: Option<String>,
}

pub(crate) fn split_query(raw: &str) -> Result<Vec<RawPair>, ParseError> {
    if raw.len() > MAX_QUERY_LEN {
        return Err(ParseError::QueryTooLong {
            length: raw.len(),
            limit: MAX_QUERY_LEN,
        });
    }
    let raw = raw.strip_prefix('?').unwrap_or(raw);
    raw.split(['&', ';'])
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = match pair.split_once('=') {
                Some((key, value)) => (key, Some(value)),
                None => (pair, None),
            };
            let key_text = decode(key).map_err(|bytes| invalid_utf8(&bytes))?;
            let value = match value {
                Some(value) => Some(decode(value).map_err(|_| invalid_utf8(key_text.as_bytes()))?),
                None => None,
            };
            Ok(RawPair {
                key: key_text,
                value,
            })
        })
        .collect()
}

fn invalid_utf8(key: &[u8]) -> ParseError {
    ParseError::InvalidUtf8 {
        param: shorten(&String::from_utf8_lossy(key)),
    }
}

/// Percent- and plus-decoding of one key or value; on invalid UTF-8, the decoded bytes.
pub(crate) fn decode(text: &str) -> Result<String, Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(hex),
                bytes.get(i + 2).and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push((high << 4) | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|err| err.into_bytes())
}

fn hex(byte: &u8) -> Option<u8> {
    (*byte as char).to_digit(16).map(|digit| digit as u8)
}
