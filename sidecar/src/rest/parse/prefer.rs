//! The `Prefer` header (RFC 7240), read as PostgREST reads it: every `Prefer` header, each split
//! at commas, each token trimmed and matched exactly (`count=exact`). The first token of each
//! kind wins. Tokens we do not know are collected in `invalid` and otherwise ignored, unless the
//! client also sent `handling=strict`, which turns them into an error.

use axum::http::HeaderMap;

use super::error::ParseError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    pub resolution: Option<Resolution>,
    pub representation: Option<Representation>,
    pub count: Option<Count>,
    pub transaction: Option<Transaction>,
    pub missing: Option<Missing>,
    pub handling: Option<Handling>,
    /// `timezone=…` as written; the planner checks it against `pg_timezone_names`.
    pub timezone: Option<String>,
    /// `max-affected=N`: fail a mutation touching more rows (honoured with `handling=strict`).
    pub max_affected: Option<u64>,
    /// `params=single-object`: an RPC body is the one `json`/`jsonb` argument, whatever its keys.
    pub single_object: bool,
    /// Tokens that are none of the above, in order.
    pub invalid: Vec<String>,
}

/// `resolution=`: what an upsert does with a conflicting row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    MergeDuplicates,
    IgnoreDuplicates,
}

/// `return=`: what a mutation answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// `return=representation`: the affected rows.
    Full,
    /// `return=minimal`: nothing.
    Minimal,
    /// `return=headers-only`: a `Location` header.
    HeadersOnly,
}

/// `count=`: how to fill `Content-Range`'s total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Exact,
    Planned,
    Estimated,
}

/// `tx=`: commit (the default) or roll back after answering; the config decides if it is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transaction {
    Commit,
    Rollback,
}

/// `missing=`: what a column absent from a payload row gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Default,
    Null,
}

/// `handling=`: whether unknown preferences are an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    Strict,
    Lenient,
}

pub(crate) fn parse_prefer(headers: &HeaderMap) -> Result<Preferences, ParseError> {
    let mut prefs = Preferences::default();
    let tokens = headers
        .get_all("prefer")
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(|token| String::from_utf8_lossy(token).trim().to_owned())
        .filter(|token| !token.is_empty());
    for token in tokens {
        if !apply(&mut prefs, &token) {
            prefs.invalid.push(token);
        }
    }
    if prefs.handling == Some(Handling::Strict) && !prefs.invalid.is_empty() {
        return Err(ParseError::InvalidPreferences {
            invalid: prefs.invalid,
        });
    }
    Ok(prefs)
}

/// Records `token` unless its kind is already set; false when the token is unknown.
fn apply(prefs: &mut Preferences, token: &str) -> bool {
    fn first<T>(slot: &mut Option<T>, value: T) -> bool {
        slot.get_or_insert(value);
        true
    }
    match token {
        "resolution=merge-duplicates" => first(&mut prefs.resolution, Resolution::MergeDuplicates),
        "resolution=ignore-duplicates" => {
            first(&mut prefs.resolution, Resolution::IgnoreDuplicates)
        }
        "return=representation" => first(&mut prefs.representation, Representation::Full),
        "return=minimal" => first(&mut prefs.representation, Representation::Minimal),
        "return=headers-only" => first(&mut prefs.representation, Representation::HeadersOnly),
        "count=exact" => first(&mut prefs.count, Count::Exact),
        "count=planned" => first(&mut prefs.count, Count::Planned),
        "count=estimated" => first(&mut prefs.count, Count::Estimated),
        "tx=commit" => first(&mut prefs.transaction, Transaction::Commit),
        "tx=rollback" => first(&mut prefs.transaction, Transaction::Rollback),
        "missing=default" => first(&mut prefs.missing, Missing::Default),
        "missing=null" => first(&mut prefs.missing, Missing::Null),
        "handling=strict" => first(&mut prefs.handling, Handling::Strict),
        "handling=lenient" => first(&mut prefs.handling, Handling::Lenient),
        "params=single-object" => !std::mem::replace(&mut prefs.single_object, true),
        _ => {
            if let Some(zone) = token.strip_prefix("timezone=").filter(|z| !z.is_empty()) {
                first(&mut prefs.timezone, zone.to_owned())
            } else if let Some(Ok(n)) = token.strip_prefix("max-affected=").map(str::parse::<u64>) {
                first(&mut prefs.max_affected, n)
            } else {
                false
            }
        }
    }
}
