use axum::http::HeaderValue;

use super::*;

fn accept(value: &str) -> Result<MediaType, ParseError> {
    parse_read("", &headers(&[("Accept", value)])).map(|parsed| parsed.media)
}

#[test]
fn json_without_an_accept_header_or_with_an_empty_one() {
    assert_eq!(read("").media, MediaType::Json);
    assert_eq!(accept("").unwrap(), MediaType::Json);
    assert_eq!(accept(" , ").unwrap(), MediaType::Json);
}

#[test]
fn the_media_types_we_produce() {
    let cases = [
        ("application/json", MediaType::Json),
        ("*/*", MediaType::Json),
        ("application/*", MediaType::Json),
        ("text/csv", MediaType::Csv),
        ("application/vnd.pgrst.object+json", MediaType::SingleObject),
        ("application/vnd.pgrst.object", MediaType::SingleObject),
        ("Application/JSON", MediaType::Json),
        ("application/json; charset=utf-8", MediaType::Json),
    ];
    for (value, expected) in cases {
        assert_eq!(accept(value).unwrap(), expected, "{value}");
    }
}

#[test]
fn quality_orders_the_choices() {
    assert_eq!(
        accept("text/csv;q=0.5, application/json").unwrap(),
        MediaType::Json
    );
    assert_eq!(
        accept("application/json;q=0.4, text/csv;q=0.9").unwrap(),
        MediaType::Csv
    );
    assert_eq!(
        accept("text/html, application/json;q=0.1").unwrap(),
        MediaType::Json
    );
}

#[test]
fn specificity_breaks_ties() {
    assert_eq!(accept("*/*, text/csv").unwrap(), MediaType::Csv);
    assert_eq!(
        accept("application/*, application/vnd.pgrst.object+json").unwrap(),
        MediaType::SingleObject
    );
}

#[test]
fn a_browser_accept_header_gets_json() {
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";
    assert_eq!(accept(browser).unwrap(), MediaType::Json);
}

#[test]
fn unreadable_weights_count_as_one() {
    assert_eq!(
        accept("text/csv;q=abc, application/json;q=0.5").unwrap(),
        MediaType::Csv
    );
    assert_eq!(
        accept("text/csv;q=NaN, application/json;q=0.5").unwrap(),
        MediaType::Csv
    );
}

#[test]
fn nothing_we_produce_is_406() {
    for value in [
        "text/html",
        "application/xml",
        "application/json;q=0",
        "image/*, text/plain",
    ] {
        let err = accept(value).unwrap_err();
        assert_eq!(err.code(), "PGRST107", "{value}");
        assert_eq!(err.http_status(), 406);
        // PostgREST's body: no details, no hint.
        assert_eq!((err.details(), err.hint()), (None, None));
    }
    assert_eq!(
        accept("text/html, text/plain;q=0.5")
            .unwrap_err()
            .to_string(),
        "None of these media types are available: text/html, text/plain"
    );
}

#[test]
fn a_non_ascii_accept_header_is_400() {
    let mut map = HeaderMap::new();
    map.insert("accept", HeaderValue::from_bytes(b"text/\xffcsv").unwrap());
    let err = parse_read("", &map).unwrap_err();
    assert_eq!(err.code(), "SLUICE113");
    assert_eq!(err.http_status(), 400);
}

#[test]
fn several_accept_headers_combine() {
    let parsed = parse_read(
        "",
        &headers(&[("Accept", "text/html"), ("Accept", "text/csv")]),
    );
    assert_eq!(parsed.unwrap().media, MediaType::Csv);
}

fn output(value: &str) -> (MediaType, Output) {
    let parsed = parse_read("", &headers(&[("Accept", value)])).unwrap();
    (parsed.media, parsed.output)
}

#[test]
fn nulls_stripped_is_the_only_parameter_of_the_vendor_types() {
    let stripped = Output {
        strip_nulls: true,
        explain: None,
    };
    assert_eq!(
        output("application/vnd.pgrst.array+json;nulls=stripped"),
        (MediaType::Json, stripped)
    );
    assert_eq!(
        output("application/vnd.pgrst.object+json; nulls=stripped"),
        (MediaType::SingleObject, stripped)
    );
    assert_eq!(
        output("application/vnd.pgrst.array+json"),
        (MediaType::Json, Output::default())
    );
    assert_eq!(
        output("application/vnd.pgrst.object+json;nulls=stripped;x=y"),
        (MediaType::SingleObject, Output::default())
    );
    assert_eq!(output("application/geo+json").0, MediaType::GeoJson);
    // The OpenAPI media type is the root's only: elsewhere it is not produced.
    assert_eq!(
        accept("application/openapi+json").unwrap_err().code(),
        "PGRST107"
    );
    assert_eq!(
        accept("application/openapi+json, application/json;q=0.5").unwrap(),
        MediaType::Json
    );
}

#[test]
fn plan_media_types_carry_their_target_and_options() {
    // As postgrest-js's explain() writes it.
    let (media, out) =
        output("application/vnd.pgrst.plan+text; for=\"text/csv\"; options=analyze|verbose|wal;");
    assert_eq!(media, MediaType::Csv);
    let explain = out.explain.unwrap();
    assert!(!explain.json && explain.analyze && explain.verbose && explain.wal);
    assert!(!explain.settings && !explain.buffers);
    assert_eq!(
        explain.mime(media),
        "application/vnd.pgrst.plan+text; for=\"text/csv\"; options=analyze|verbose|wal"
    );
    let (media, out) = output("application/vnd.pgrst.plan+json");
    assert_eq!(media, MediaType::Json);
    assert_eq!(
        out.explain.unwrap().mime(media),
        "application/vnd.pgrst.plan+json; for=\"application/json\""
    );
    let (media, out) = output("application/vnd.pgrst.plan");
    assert_eq!(media, MediaType::Json);
    assert!(!out.explain.unwrap().json);
    assert_eq!(
        accept("application/vnd.pgrst.plan+json; for=\"image/png\"")
            .unwrap_err()
            .code(),
        "PGRST107"
    );
}

#[test]
fn without_plans_a_plan_type_is_passed_over_for_the_next_one() {
    let negotiate = |value: &str| negotiate_without_plans(&headers(&[("Accept", value)]));
    let plain = |media| Ok((media, Output::default()));
    assert_eq!(
        negotiate("application/vnd.pgrst.plan+json, application/json"),
        plain(MediaType::Json)
    );
    assert_eq!(
        negotiate("text/csv;q=0.5, application/vnd.pgrst.plan+text"),
        plain(MediaType::Csv)
    );
    assert_eq!(
        negotiate("application/vnd.pgrst.plan; options=analyze, */*;q=0.1"),
        plain(MediaType::Json)
    );
    assert_eq!(
        negotiate(
            "application/vnd.pgrst.plan+json, application/vnd.pgrst.array+json;nulls=stripped"
        ),
        Ok((
            MediaType::Json,
            Output {
                strip_nulls: true,
                explain: None
            }
        ))
    );
    // Nothing left: 406 naming each range as PostgREST's toMime writes it.
    let refused = negotiate(
        "application/vnd.pgrst.plan+json; for=\"text/csv\"; options=analyze, text/html;q=0.2, application/vnd.pgrst.plan;q=0",
    )
    .unwrap_err();
    assert_eq!((refused.code(), refused.http_status()), ("PGRST107", 406));
    assert_eq!(
        refused.to_string(),
        "None of these media types are available: \
         application/vnd.pgrst.plan+json; for=\"text/csv\"; options=analyze, text/html, \
         application/vnd.pgrst.plan+text; for=\"application/json\""
    );
    // With plans allowed, the plan is chosen.
    assert!(accept("application/vnd.pgrst.plan+json, application/json").is_ok());
    let planned = parse_read(
        "",
        &headers(&[(
            "Accept",
            "application/vnd.pgrst.plan+json, application/json",
        )]),
    )
    .unwrap();
    assert!(planned.output.explain.is_some());
}
