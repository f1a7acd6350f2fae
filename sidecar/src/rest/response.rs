//! A read's result row into an HTTP response: status, `Content-Range`, content type and body, as
//! PostgREST answers (`RangeQuery.rangeStatusHeader`).

use axum::body::Body;
use axum::http::header::{HeaderValue, CONTENT_TYPE, LOCATION};
use axum::http::{Method, StatusCode};
use axum::response::Response;

use super::error::RestError;
use super::parse::{MediaType, Representation};
use super::plan::write::{WriteMethod, WritePlan};
use super::plan::{ReadPlan, TotalCount};

/// What the read statement returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadResult {
    pub body: Option<String>,
    pub page_count: i64,
    pub total: Option<i64>,
}

/// `Content-Range: first-last/total`; `*` for an empty page and for an unknown total.
pub(crate) fn content_range(offset: u64, page_count: i64, total: Option<i64>) -> String {
    let total_text = total.map_or_else(|| "*".to_owned(), |total| total.to_string());
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    if page_count > 0 && total != Some(0) {
        format!("{offset}-{}/{total_text}", offset + page_count - 1)
    } else {
        format!("*/{total_text}")
    }
}

/// 200, or 206 when a known total has more rows than the page; an offset past a known total is
/// an error (416).
pub(crate) fn status(
    offset: u64,
    page_count: i64,
    total: Option<i64>,
) -> Result<StatusCode, RestError> {
    let Some(total) = total else {
        return Ok(StatusCode::OK);
    };
    if i64::try_from(offset).map_or(true, |offset| offset > total) {
        return Err(RestError::OffsetBeyondTotal { offset, total });
    }
    Ok(if page_count < total {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    })
}

pub(crate) fn read_response(
    plan: &ReadPlan,
    method: &Method,
    result: ReadResult,
    content_profile: Option<&str>,
) -> Result<Response, RestError> {
    if plan.media == MediaType::SingleObject && result.page_count != 1 {
        return Err(RestError::NotOneRow {
            rows: result.page_count,
        });
    }
    let status = status(plan.root.page.offset, result.page_count, result.total)?;
    let content_type = match plan.media {
        MediaType::Json => "application/json; charset=utf-8",
        MediaType::SingleObject => "application/vnd.pgrst.object+json; charset=utf-8",
        MediaType::Csv => "text/csv; charset=utf-8",
        MediaType::GeoJson => "application/geo+json; charset=utf-8",
        MediaType::OpenApi => "application/openapi+json; charset=utf-8",
    };
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(result.body.unwrap_or_default())
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Digits, `-`, `/` and `*` only: always a valid header value.
    let range = content_range(plan.root.page.offset, result.page_count, result.total);
    if let Ok(range) = HeaderValue::from_str(&range) {
        headers.insert("content-range", range);
    }
    if let (Some(count), Some(_)) = (plan.count, result.total) {
        let applied = match count {
            TotalCount::Exact => "count=exact",
            TotalCount::Planned => "count=planned",
            TotalCount::Estimated { .. } => "count=estimated",
        };
        headers.insert("preference-applied", HeaderValue::from_static(applied));
    }
    if let Some(profile) = content_profile.and_then(|p| HeaderValue::from_str(p).ok()) {
        headers.insert("content-profile", profile);
    }
    Ok(response)
}

/// What the write statement returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WriteResult {
    /// The shaped rows, with `return=representation`.
    pub body: Option<String>,
    pub affected: i64,
    /// The first written row's primary key as a JSON object, with `return=headers-only`.
    pub location: Option<String>,
    /// How many rows a merging upsert inserted (the others existed already).
    pub inserted: Option<i64>,
}

/// As PostgREST answers a write: POST 201; PATCH, PUT and DELETE 200 with a representation and
/// 204 without; `Content-Range: */N` with `Prefer: count=exact`; `Location` for headers-only.
pub(crate) fn write_response(
    plan: &WritePlan,
    method: WriteMethod,
    relation: &str,
    result: WriteResult,
    content_profile: Option<&str>,
) -> Result<Response, RestError> {
    let full = plan.representation == Representation::Full;
    if full && plan.media == MediaType::SingleObject && result.affected != 1 {
        return Err(RestError::NotOneRow {
            rows: result.affected,
        });
    }
    // As PostgREST: an upsert in which every row existed already is 200, not 201; PUT with a
    // representation is 201 when it inserted its row.
    let status = match (method, result.inserted) {
        (WriteMethod::Post, Some(0)) => StatusCode::OK,
        (WriteMethod::Post, _) => StatusCode::CREATED,
        (WriteMethod::Put, Some(inserted)) if full && inserted > 0 => StatusCode::CREATED,
        _ if full => StatusCode::OK,
        _ => StatusCode::NO_CONTENT,
    };
    let body = if full {
        Body::from(result.body.unwrap_or_default())
    } else {
        Body::empty()
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if full {
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(content_type(plan.media)),
        );
    }
    let range = if plan.count {
        format!("*/{}", result.affected)
    } else if full {
        content_range(0, result.affected, None)
    } else {
        "*/*".to_owned()
    };
    if let Ok(range) = HeaderValue::from_str(&range) {
        headers.insert("content-range", range);
    }
    let mut applied = vec![match plan.representation {
        Representation::Full => "return=representation",
        Representation::Minimal => "return=minimal",
        Representation::HeadersOnly => "return=headers-only",
    }];
    applied.extend(plan.applied.iter().copied());
    if plan.count {
        applied.push("count=exact");
    }
    if let Ok(applied) = HeaderValue::from_str(&applied.join(", ")) {
        headers.insert("preference-applied", applied);
    }
    if let Some(location) = result
        .location
        .as_deref()
        .and_then(|key| location(relation, key))
        .and_then(|location| HeaderValue::from_str(&location).ok())
    {
        headers.insert(LOCATION, location);
    }
    if let Some(profile) = content_profile.and_then(|p| HeaderValue::from_str(p).ok()) {
        headers.insert("content-profile", profile);
    }
    Ok(response)
}

fn content_type(media: MediaType) -> &'static str {
    match media {
        MediaType::Json => "application/json; charset=utf-8",
        MediaType::SingleObject => "application/vnd.pgrst.object+json; charset=utf-8",
        MediaType::Csv => "text/csv; charset=utf-8",
        MediaType::GeoJson => "application/geo+json; charset=utf-8",
        MediaType::OpenApi => "application/openapi+json; charset=utf-8",
    }
}

/// `/todos?id=eq.5` from the key `{"id": 5}`, names and values percent-encoded.
fn location(relation: &str, key: &str) -> Option<String> {
    let key: serde_json::Map<String, serde_json::Value> = serde_json::from_str(key).ok()?;
    let filters = key
        .iter()
        .map(|(name, value)| {
            let value = match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            format!("{}=eq.{}", percent_encode(name), percent_encode(&value))
        })
        .collect::<Vec<_>>();
    Some(format!(
        "/{}?{}",
        percent_encode(relation),
        filters.join("&")
    ))
}

/// Every byte but RFC 3986's unreserved characters as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_follows_postgrest() {
        assert_eq!(content_range(0, 10, None), "0-9/*");
        assert_eq!(content_range(5, 3, Some(8)), "5-7/8");
        assert_eq!(content_range(0, 0, None), "*/*");
        assert_eq!(content_range(0, 0, Some(0)), "*/0");
        assert_eq!(content_range(4, 0, Some(4)), "*/4");
    }

    #[test]
    fn location_encodes_names_and_values() {
        assert_eq!(
            location("todos", r#"{"id": 5}"#).as_deref(),
            Some("/todos?id=eq.5")
        );
        assert_eq!(
            location("a b", r#"{"k": "x&y=z"}"#).as_deref(),
            Some("/a%20b?k=eq.x%26y%3Dz")
        );
    }

    #[test]
    fn status_is_206_only_for_a_partial_page_of_a_known_total() {
        assert_eq!(status(0, 10, None).unwrap(), StatusCode::OK);
        assert_eq!(status(0, 2, Some(2)).unwrap(), StatusCode::OK);
        assert_eq!(status(0, 2, Some(5)).unwrap(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(status(0, 0, Some(0)).unwrap(), StatusCode::OK);
        assert_eq!(status(5, 0, Some(5)).unwrap(), StatusCode::PARTIAL_CONTENT);
        assert!(matches!(
            status(6, 0, Some(5)),
            Err(RestError::OffsetBeyondTotal {
                offset: 6,
                total: 5
            })
        ));
    }
}
