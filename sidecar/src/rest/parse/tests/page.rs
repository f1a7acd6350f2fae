use axum::http::Method;

use super::*;

fn page(offset: u64, limit: Option<u64>) -> Page {
    Page { offset, limit }
}

fn with_range(query: &str, range: &str) -> Result<RestRequest, ParseError> {
    parse_read(
        query,
        &headers(&[("Range", range), ("Range-Unit", "items")]),
    )
}

fn range_error(err: &ParseError) -> RangeError {
    match err {
        ParseError::InvalidRange(why) => *why,
        other => panic!("expected InvalidRange, got {other:?}"),
    }
}

#[test]
fn no_paging_by_default() {
    assert_eq!(read("").page, Page::default());
    assert_eq!(Page::default(), page(0, None));
}

#[test]
fn limit_and_offset() {
    assert_eq!(read("limit=10").page, page(0, Some(10)));
    assert_eq!(read("offset=5").page, page(5, None));
    assert_eq!(read("limit=10&offset=20").page, page(20, Some(10)));
    assert_eq!(read("limit=0").page, page(0, Some(0)));
}

#[test]
fn the_last_limit_wins() {
    assert_eq!(read("limit=5&limit=7").page, page(0, Some(7)));
}

#[test]
fn blanks_and_minus_zero_are_read_as_postgrest_reads_them() {
    assert_eq!(read("limit=%205%20").page, page(0, Some(5)));
    assert_eq!(read("offset=-0").page, page(0, None));
}

#[test]
fn embedded_limits_carry_their_path() {
    let parsed = read("comments.limit=2&comments.offset=1&posts.likes.limit=3&limit=1");
    assert_eq!(parsed.page, page(0, Some(1)));
    assert_eq!(
        parsed.embedded_pages,
        vec![
            Scoped {
                path: strings(&["comments"]),
                item: page(1, Some(2))
            },
            Scoped {
                path: strings(&["posts", "likes"]),
                item: page(0, Some(3))
            },
        ]
    );
}

#[test]
fn a_negative_limit_is_416_anywhere() {
    for query in ["limit=-1", "comments.limit=-3"] {
        let err = read_err(query);
        assert_eq!(err.code(), "PGRST103");
        assert_eq!(err.http_status(), 416);
        assert_eq!(range_error(&err), RangeError::NegativeLimit);
        assert_eq!(
            err.details().as_deref(),
            Some("Limit should be greater than or equal to zero.")
        );
    }
}

#[test]
fn unreadable_bounds_are_400() {
    for query in [
        "offset=-1",
        "limit=abc",
        "limit=",
        "limit=1.5",
        "offset=%2B1",
        "limit=--1",
    ] {
        let err = read_err(query);
        assert_eq!(err.code(), "PGRST100", "{query}");
        assert!(err.to_string().contains("parameter"), "{err}");
    }
}

#[test]
fn a_raw_plus_is_a_space_so_it_reads_as_a_blank() {
    assert_eq!(read("offset=+1").page, page(1, None));
}

#[test]
fn a_bound_beyond_u64_is_416() {
    let err = read_err("limit=99999999999999999999999");
    assert_eq!(range_error(&err), RangeError::BoundTooLarge);
}

#[test]
fn range_header_alone() {
    assert_eq!(with_range("", "0-9").unwrap().page, page(0, Some(10)));
    assert_eq!(with_range("", "10-").unwrap().page, page(10, None));
    assert_eq!(with_range("", "5-5").unwrap().page, page(5, Some(1)));
}

#[test]
fn range_header_intersects_limit_and_offset() {
    assert_eq!(with_range("limit=5", "0-9").unwrap().page, page(0, Some(5)));
    assert_eq!(
        with_range("offset=5", "0-9").unwrap().page,
        page(5, Some(5))
    );
    assert_eq!(
        with_range("offset=2&limit=100", "0-9").unwrap().page,
        page(2, Some(8))
    );
    assert_eq!(with_range("offset=12", "10-").unwrap().page, page(12, None));
}

#[test]
fn disjoint_range_and_limit_are_416() {
    for (query, range) in [("limit=5", "10-19"), ("limit=3", "10-")] {
        let err = with_range(query, range).unwrap_err();
        assert_eq!(range_error(&err), RangeError::Disjoint);
        assert_eq!(err.http_status(), 416);
    }
}

#[test]
fn a_backwards_range_is_416_unless_limit_is_zero() {
    let err = with_range("", "5-2").unwrap_err();
    assert_eq!(range_error(&err), RangeError::LowerGreaterThanUpper);
    assert_eq!(err.code(), "PGRST103");
    assert_eq!(with_range("limit=0", "5-2").unwrap().page, page(0, Some(0)));
}

#[test]
fn malformed_range_headers_are_ignored() {
    for range in ["items=0-9", "abc", "-5", "1-2-3", " 0-9", "0 - 9", ""] {
        assert_eq!(
            with_range("", range).unwrap().page,
            Page::default(),
            "{range:?}"
        );
    }
}

#[test]
fn huge_range_headers() {
    let err = with_range("", "0-99999999999999999999").unwrap_err();
    assert_eq!(range_error(&err), RangeError::BoundTooLarge);
    let max = u64::MAX;
    assert_eq!(
        with_range("", &format!("0-{max}")).unwrap().page,
        page(0, Some(max))
    );
    assert_eq!(
        with_range(&format!("offset={max}&limit={max}"), &format!("0-{max}"))
            .unwrap()
            .page,
        page(max, Some(1))
    );
}

#[test]
fn range_header_is_read_on_get_only() {
    let h = headers(&[("Range", "0-9")]);
    for method in [Method::HEAD, Method::POST, Method::PATCH, Method::DELETE] {
        let parsed = parse_request(&method, Target::Relation, "", &h).unwrap();
        assert_eq!(parsed.page, Page::default(), "{method}");
    }
}

#[test]
fn put_refuses_limit_and_offset() {
    let put = |query: &str| parse_request(&Method::PUT, Target::Relation, query, &HeaderMap::new());
    for query in ["limit=1", "offset=3"] {
        let err = put(query).unwrap_err();
        assert_eq!(err.code(), "PGRST114");
        assert_eq!(err.http_status(), 400);
    }
    assert!(put("offset=0&id=eq.1").is_ok());
    assert!(put("comments.limit=1").is_ok());
}
