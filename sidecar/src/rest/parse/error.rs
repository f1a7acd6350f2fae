//! Everything the parser can reject, each with a stable code and HTTP status.
//!
//! Codes follow PostgREST where it has one for the same failure, so clients that branch on
//! `code` (supabase-js users do) keep working; our own codes are `SLUICE11x`, in the "request"
//! group of `crate::http::error`.
//!
//! | Variant                | Code        | Status | When                                                        |
//! |------------------------|-------------|--------|-------------------------------------------------------------|
//! | `InvalidParameter`     | `PGRST100`  | 400    | a query parameter (key or value) does not follow the grammar |
//! | `InvalidRange`         | `PGRST103`  | 416    | negative `limit`, `Range: 5-2`, a bound beyond `u64`, `Range` and `limit` disjoint |
//! | `NotAcceptable`        | `PGRST107`  | 406    | no media type in `Accept` is one we can produce              |
//! | `PutLimitNotAllowed`   | `PGRST114`  | 400    | `limit`/`offset` on a `PUT`                                  |
//! | `InvalidPreferences`   | `PGRST122`  | 400    | unknown `Prefer` values together with `handling=strict`      |
//! | `AggregatesNotAllowed` | `PGRST123`  | 400    | `count()`, `col.sum()` and friends in `select`               |
//! | `TooDeep`              | `SLUICE110` | 400    | embeddings, logic trees or embed paths nested beyond 16      |
//! | `QueryTooLong`         | `SLUICE111` | 414    | the raw query string is longer than 1 MiB                    |
//! | `InvalidUtf8`          | `SLUICE112` | 400    | a key or value is not UTF-8 once percent-decoded             |
//! | `InvalidHeader`        | `SLUICE113` | 400    | a header we read is not valid text                           |
//! | `Unsupported`          | `SLUICE114` | 400    | PostgREST syntax we do not implement (spread `...rel(*)`)    |
//! | `TooComplex`           | `SLUICE115` | 400    | more filters, or/and branches, select items, order terms or nesting than `QueryLimits` allow |

use super::limits::Limit;

/// How many characters of client input an error message repeats. Inputs can be a megabyte long;
/// the message only needs enough to find the spot.
const ECHO_LIMIT: usize = 120;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("failed to parse the '{param}' parameter at column {column}: {problem}")]
    InvalidParameter {
        /// The query key as the client wrote it (decoded, shortened).
        param: String,
        /// The text that failed: the key or the value (decoded, shortened).
        input: String,
        /// 1-based character position in `input`.
        column: usize,
        problem: String,
        hint: Option<String>,
    },
    #[error("Requested range not satisfiable")]
    InvalidRange(RangeError),
    #[error("None of these media types are available: {}", .requested.join(", "))]
    NotAcceptable { requested: Vec<String> },
    #[error("limit/offset querystring parameters are not allowed for PUT")]
    PutLimitNotAllowed,
    #[error("Invalid preferences given with handling=strict")]
    InvalidPreferences { invalid: Vec<String> },
    #[error("Use of aggregate functions is not allowed (in the '{param}' parameter)")]
    AggregatesNotAllowed { param: String },
    #[error("the '{param}' parameter nests deeper than {limit} levels")]
    TooDeep { param: String, limit: usize },
    #[error("the query string is {length} bytes long, more than the {limit} allowed")]
    QueryTooLong { length: usize, limit: usize },
    #[error("the query parameter '{param}' is not valid UTF-8 once percent-decoded")]
    InvalidUtf8 { param: String },
    #[error("the {header} header is invalid: {problem}")]
    InvalidHeader {
        header: &'static str,
        problem: String,
    },
    #[error("{feature} (in the '{param}' parameter) is not supported")]
    Unsupported {
        param: String,
        feature: &'static str,
    },
    #[error("the request has {value} {}, more than the {max} allowed", .limit.what())]
    TooComplex {
        limit: Limit,
        value: usize,
        max: usize,
    },
}

/// Why a requested range cannot be served, worded as PostgREST words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeError {
    NegativeLimit,
    LowerGreaterThanUpper,
    BoundTooLarge,
    /// The `Range` header and `limit`/`offset` select no row in common.
    Disjoint,
}

impl ParseError {
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::InvalidParameter { .. } => "PGRST100",
            ParseError::InvalidRange(_) => "PGRST103",
            ParseError::NotAcceptable { .. } => "PGRST107",
            ParseError::PutLimitNotAllowed => "PGRST114",
            ParseError::InvalidPreferences { .. } => "PGRST122",
            ParseError::AggregatesNotAllowed { .. } => "PGRST123",
            ParseError::TooDeep { .. } => "SLUICE110",
            ParseError::QueryTooLong { .. } => "SLUICE111",
            ParseError::InvalidUtf8 { .. } => "SLUICE112",
            ParseError::InvalidHeader { .. } => "SLUICE113",
            ParseError::Unsupported { .. } => "SLUICE114",
            ParseError::TooComplex { .. } => "SLUICE115",
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            ParseError::InvalidRange(_) => 416,
            ParseError::NotAcceptable { .. } => 406,
            ParseError::QueryTooLong { .. } => 414,
            _ => 400,
        }
    }

    /// The `details` field of the error body.
    pub fn details(&self) -> Option<String> {
        match self {
            ParseError::InvalidParameter { input, .. } => Some(format!("while parsing: {input}")),
            ParseError::InvalidRange(why) => Some(
                match why {
                    RangeError::NegativeLimit => "Limit should be greater than or equal to zero.",
                    RangeError::LowerGreaterThanUpper => {
                        "The lower boundary must be lower than or equal to the upper boundary in the Range header."
                    }
                    RangeError::BoundTooLarge => "A range boundary is larger than 18446744073709551615.",
                    RangeError::Disjoint => {
                        "The Range header and the limit/offset parameters have no row in common."
                    }
                }
                .to_owned(),
            ),
            ParseError::InvalidPreferences { invalid } => {
                Some(format!("Invalid preferences: {}", invalid.join(", ")))
            }
            _ => None,
        }
    }

    /// The `hint` field of the error body.
    pub fn hint(&self) -> Option<String> {
        match self {
            ParseError::InvalidParameter { hint, .. } => hint.clone(),
            ParseError::TooDeep { .. } => Some("flatten the request or split it".to_owned()),
            ParseError::TooComplex { limit, .. } => {
                let (env, flag) = limit.setting();
                Some(format!(
                    "split the request, or raise the server's limit with {env} ({flag})"
                ))
            }
            _ => None,
        }
    }
}

/// `text` cut to at most `ECHO_LIMIT` characters, marked when cut.
pub(crate) fn shorten(text: &str) -> String {
    match text.char_indices().nth(ECHO_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
