//! `limit`/`offset` parameters and the `Range` header into pages of rows.
//!
//! The top level's page is the intersection of `limit`/`offset` with `Range: first-last`
//! (PostgREST's rule), and `limit=0` wins over everything (a count-only request). The `Range`
//! header is read only on GET, as RFC 9110 allows; a value that is not `digits-[digits]` is
//! ignored, as PostgREST ignores it. `Range-Unit` is not checked (PostgREST does not either).

use super::error::{shorten, ParseError, RangeError};

/// Rows `offset ..` and at most `limit` of them (`None`: no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    pub offset: u64,
    pub limit: Option<u64>,
}

/// `Range: first-last`, inclusive; `last` may be open (`Range: 10-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderRange {
    pub first: u64,
    pub last: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    Limit,
    Offset,
}

/// The value of a `limit` or `offset` parameter. Stricter than PostgREST, which silently ignores
/// a value it cannot read: a typo should not turn into "all rows".
pub(crate) fn parse_bound(key: &str, value: &str, bound: Bound) -> Result<u64, ParseError> {
    let text = value.trim();
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(key, value, "expected a non-negative integer"));
    }
    if text.starts_with('-') && digits.bytes().any(|b| b != b'0') {
        return match bound {
            Bound::Limit => Err(ParseError::InvalidRange(RangeError::NegativeLimit)),
            Bound::Offset => Err(invalid(key, value, "an offset cannot be negative")),
        };
    }
    digits
        .parse()
        .map_err(|_| ParseError::InvalidRange(RangeError::BoundTooLarge))
}

fn invalid(key: &str, value: &str, problem: &str) -> ParseError {
    ParseError::InvalidParameter {
        param: shorten(key),
        input: shorten(value),
        column: 1,
        problem: problem.to_owned(),
        hint: None,
    }
}

/// `Range: 0-9`; `None` when the value is not of that form.
pub(crate) fn parse_range_header(value: &[u8]) -> Result<Option<HeaderRange>, ParseError> {
    let Ok(text) = std::str::from_utf8(value) else {
        return Ok(None);
    };
    let Some((first, last)) = text.split_once('-') else {
        return Ok(None);
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if first.is_empty() || !all_digits(first) || !all_digits(last) {
        return Ok(None);
    }
    let number = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| ParseError::InvalidRange(RangeError::BoundTooLarge))
    };
    let first = number(first)?;
    let last = if last.is_empty() {
        None
    } else {
        Some(number(last)?)
    };
    Ok(Some(HeaderRange { first, last }))
}

/// The top level's page from its query parameters and, on GET, the `Range` header.
pub(crate) fn top_level(query: Page, header: Option<HeaderRange>) -> Result<Page, ParseError> {
    if query.limit == Some(0) {
        return Ok(query);
    }
    let Some(header) = header else {
        return Ok(query);
    };
    if header.last.is_some_and(|last| last < header.first) {
        return Err(ParseError::InvalidRange(RangeError::LowerGreaterThanUpper));
    }
    let first = query.offset.max(header.first);
    // `limit >= 1` here, so the inclusive last row exists.
    let query_last = query
        .limit
        .map(|limit| query.offset.saturating_add(limit - 1));
    let last = match (query_last, header.last) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    match last {
        Some(last) if last < first => Err(ParseError::InvalidRange(RangeError::Disjoint)),
        Some(last) => Ok(Page {
            offset: first,
            limit: Some((last - first).saturating_add(1)),
        }),
        None => Ok(Page {
            offset: first,
            limit: None,
        }),
    }
}
