//! The `Accept` header: which of our response formats the client wants.
//!
//! Media ranges are ordered by `q` (highest first; `q=0` means "not this one") and, at equal `q`,
//! by specificity (`text/csv` before `text/*` before `*/*`), as wai's `parseHttpAccept` orders
//! them for PostgREST; the first one we can produce wins. No header, or an empty one, is JSON.

use axum::http::HeaderMap;

use super::error::ParseError;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MediaType {
    /// `application/json`, `application/*`, `*/*`: a JSON array.
    #[default]
    Json,
    /// `text/csv`.
    Csv,
    /// `application/vnd.pgrst.object+json`: exactly one row as a JSON object (supabase-js
    /// `.single()`); the responder answers 406 when the result is not one row.
    SingleObject,
}

pub(crate) fn parse_accept(headers: &HeaderMap) -> Result<MediaType, ParseError> {
    let mut ranges = Vec::new();
    for value in headers.get_all("accept") {
        let text = value.to_str().map_err(|_| ParseError::InvalidHeader {
            header: "Accept",
            problem: "not visible ASCII text".to_owned(),
        })?;
        ranges.extend(text.split(',').filter_map(MediaRange::parse));
    }
    if ranges.is_empty() {
        return Ok(MediaType::Json);
    }
    // Stable, so equal ranges keep the client's order.
    ranges.sort_by(|a, b| {
        b.quality
            .total_cmp(&a.quality)
            .then(b.specificity.cmp(&a.specificity))
    });
    let chosen = ranges
        .iter()
        .filter(|range| range.quality > 0.0)
        .find_map(|range| supported(&range.essence));
    chosen.ok_or_else(|| ParseError::NotAcceptable {
        requested: ranges.into_iter().map(|range| range.essence).collect(),
    })
}

struct MediaRange {
    /// `type/subtype`, lower case, without parameters.
    essence: String,
    quality: f32,
    /// 0 for `*/*`, 1 for `type/*`, 2 for `type/subtype`, 3 with parameters other than `q`.
    specificity: u8,
}

impl MediaRange {
    fn parse(item: &str) -> Option<MediaRange> {
        let mut parts = item.split(';');
        let essence = parts.next()?.trim().to_ascii_lowercase();
        if essence.is_empty() {
            return None;
        }
        let mut quality = 1.0;
        let mut has_params = false;
        for param in parts {
            match param.trim().split_once('=') {
                // An unreadable weight counts as 1, as in wai.
                Some((name, value)) if name.trim().eq_ignore_ascii_case("q") => {
                    quality = value
                        .trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| q.is_finite())
                        .map_or(1.0, |q| q.clamp(0.0, 1.0));
                }
                _ => has_params = true,
            }
        }
        let specificity = match essence.as_str() {
            "*/*" => 0,
            e if e.ends_with("/*") => 1,
            _ if has_params => 3,
            _ => 2,
        };
        Some(MediaRange {
            essence,
            quality,
            specificity,
        })
    }
}

fn supported(essence: &str) -> Option<MediaType> {
    match essence {
        "*/*" | "application/*" | "application/json" => Some(MediaType::Json),
        "text/csv" => Some(MediaType::Csv),
        "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" => {
            Some(MediaType::SingleObject)
        }
        _ => None,
    }
}
