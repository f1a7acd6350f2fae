use axum::http::{HeaderValue, Method};

use super::*;

#[test]
fn reserved_keys_are_never_filters() {
    let parsed = read(
        "select=id&order=id&limit=1&offset=0&on_conflict=id&columns=id\
         &or=(a.eq.1)&and=(b.eq.2)&not.or=(c.eq.3)&not.and=(d.eq.4)\
         &author.order=id&author.limit=1&author.offset=1&author.or=(e.eq.5)",
    );
    assert!(parsed.filters.is_empty(), "{:?}", parsed.filters);
    assert!(parsed.params.is_empty(), "{:?}", parsed.params);
    assert_eq!(parsed.logic.len(), 5);
}

#[test]
fn columns_and_on_conflict() {
    let parsed = read("columns=a,b&on_conflict=id,%20tenant");
    assert_eq!(parsed.columns, Some(strings(&["a", "b"])));
    assert_eq!(parsed.on_conflict, Some(strings(&["id", "tenant"])));
    assert_eq!(read("").columns, None);
}

#[test]
fn columns_as_postgrest_js_sends_them_quoted() {
    let query = format!("columns={}", enc("\"id\",\"first name\",\"a,b\""));
    assert_eq!(
        read(&query).columns,
        Some(strings(&["id", "first name", "a,b"]))
    );
}

#[test]
fn column_list_errors() {
    for query in [
        "columns=",
        "columns=a,",
        "columns=,a",
        "on_conflict=a,,b",
        "on_conflict=a)",
    ] {
        assert_eq!(read_err(query).code(), "PGRST100", "{query}");
    }
}

#[test]
fn the_first_select_columns_and_on_conflict_count() {
    let parsed = read("select=a&select=b&columns=x&columns=y&on_conflict=p&on_conflict=q");
    assert_eq!(parsed.select.len(), 1);
    assert_eq!(parsed.columns, Some(strings(&["x"])));
    assert_eq!(parsed.on_conflict, Some(strings(&["p"])));
    // A later, broken duplicate is ignored like any later duplicate.
    assert!(parse_read("select=a&select=(", &HeaderMap::new()).is_ok());
}

#[test]
fn a_bare_not_key_is_a_column_named_not() {
    let parsed = read("not=eq.1");
    assert_eq!(parsed.filters[0].item.field, col("not"));
}

#[test]
fn non_reserved_pairs_are_exposed_raw_in_order() {
    let parsed = read("b=eq.2&select=id&a.x=lt.1");
    assert_eq!(
        parsed.params,
        vec![("b".into(), "eq.2".into()), ("a.x".into(), "lt.1".into())]
    );
}

#[test]
fn a_value_without_operator_is_an_error_on_tables() {
    let err = read_err("name=bob");
    assert_eq!(err.code(), "PGRST100");
    assert!(err.to_string().contains("'name'"), "{err}");
}

#[test]
fn function_reads_split_arguments_from_filters() {
    for method in [Method::GET, Method::HEAD] {
        let parsed = parse_request(
            &method,
            Target::Function,
            "name=bob&age=gt.3&n=5&select=id&or=(a.eq.1)",
            &HeaderMap::new(),
        )
        .unwrap();
        assert_eq!(
            parsed.args,
            vec![("name".into(), "bob".into()), ("n".into(), "5".into())]
        );
        assert_eq!(parsed.filters.len(), 1);
        assert_eq!(parsed.filters[0].item.field, col("age"));
        assert_eq!(parsed.params.len(), 3);
        assert_eq!(parsed.logic.len(), 1);
    }
}

#[test]
fn function_arguments_keep_any_key_and_value() {
    let query = format!("{}={}", enc("weird key.x"), enc("not.a filter"));
    let parsed = parse_request(&Method::GET, Target::Function, &query, &HeaderMap::new()).unwrap();
    assert_eq!(
        parsed.args,
        vec![("weird key.x".into(), "not.a filter".into())]
    );
}

#[test]
fn function_posts_take_arguments_from_the_body_so_parameters_are_filters() {
    let err = parse_request(
        &Method::POST,
        Target::Function,
        "name=bob",
        &HeaderMap::new(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "PGRST100");
    let ok = parse_request(
        &Method::POST,
        Target::Function,
        "id=eq.1",
        &HeaderMap::new(),
    )
    .unwrap();
    assert!(ok.args.is_empty());
    assert_eq!(ok.filters.len(), 1);
}

#[test]
fn profiles_follow_the_method() {
    let h = headers(&[("Accept-Profile", "api"), ("Content-Profile", "admin")]);
    let profile = |method: Method| {
        parse_request(&method, Target::Relation, "", &h)
            .unwrap()
            .profile
    };
    assert_eq!(profile(Method::GET).as_deref(), Some("api"));
    assert_eq!(profile(Method::HEAD).as_deref(), Some("api"));
    for method in [Method::POST, Method::PATCH, Method::PUT, Method::DELETE] {
        assert_eq!(profile(method).as_deref(), Some("admin"));
    }
    assert_eq!(read("").profile, None);
}

#[test]
fn a_non_ascii_profile_is_400() {
    let mut map = HeaderMap::new();
    map.insert("accept-profile", HeaderValue::from_bytes(b"\xe9").unwrap());
    let err = parse_read("", &map).unwrap_err();
    assert_eq!(err.code(), "SLUICE113");
    assert!(err.to_string().contains("Accept-Profile"), "{err}");
}

#[test]
fn a_supabase_js_read() {
    let query = "select=id,title,author:users!author_id(name,avatar_url),comments(id,body)\
                 &author.name=ilike.*bob*&order=created_at.desc.nullslast&comments.order=id.desc\
                 &comments.limit=2&limit=10&offset=20&id=in.%28%221%2C2%22%2C3%29";
    let h = headers(&[
        ("Prefer", "count=exact"),
        ("Accept", "application/vnd.pgrst.object+json"),
        ("Accept-Profile", "public"),
    ]);
    let parsed = parse_read(query, &h).unwrap();
    assert_eq!(parsed.select.len(), 4);
    let SelectItem::Embed(author) = &parsed.select[2] else {
        panic!()
    };
    assert_eq!(author.alias.as_deref(), Some("author"));
    assert_eq!(author.relation, "users");
    assert_eq!(author.hint.as_deref(), Some("author_id"));
    assert_eq!(parsed.filters.len(), 2);
    assert_eq!(
        parsed.filters[1].item.operation,
        Operation::In(strings(&["1,2", "3"]))
    );
    assert_eq!(parsed.order.len(), 2);
    assert_eq!(
        parsed.page,
        Page {
            offset: 20,
            limit: Some(10)
        }
    );
    assert_eq!(parsed.embedded_pages.len(), 1);
    assert_eq!(parsed.prefer.count, Some(Count::Exact));
    assert_eq!(parsed.media, MediaType::SingleObject);
    assert_eq!(parsed.profile.as_deref(), Some("public"));
}

#[test]
fn a_supabase_js_upsert() {
    let h = headers(&[
        (
            "Prefer",
            "resolution=merge-duplicates,return=representation,missing=default",
        ),
        ("Content-Profile", "public"),
    ]);
    let parsed = parse_request(
        &Method::POST,
        Target::Relation,
        "on_conflict=id&columns=%22id%22,%22name%22&select=*",
        &h,
    )
    .unwrap();
    assert_eq!(parsed.on_conflict, Some(strings(&["id"])));
    assert_eq!(parsed.columns, Some(strings(&["id", "name"])));
    assert_eq!(parsed.prefer.resolution, Some(Resolution::MergeDuplicates));
    assert_eq!(parsed.prefer.representation, Some(Representation::Full));
    assert_eq!(parsed.prefer.missing, Some(Missing::Default));
}

#[test]
fn errors_in_the_query_come_before_errors_in_headers() {
    let h = headers(&[("Accept", "text/html")]);
    assert_eq!(parse_read("id=foo", &h).unwrap_err().code(), "PGRST100");
    assert_eq!(parse_read("id=eq.1", &h).unwrap_err().code(), "PGRST107");
}

#[test]
fn every_error_has_its_code_and_status() {
    let cases: Vec<(ParseError, &str, u16)> = vec![
        (read_err("id=x"), "PGRST100", 400),
        (read_err("limit=-1"), "PGRST103", 416),
        (
            ParseError::NotAcceptable { requested: vec![] },
            "PGRST107",
            406,
        ),
        (ParseError::PutLimitNotAllowed, "PGRST114", 400),
        (
            ParseError::InvalidPreferences { invalid: vec![] },
            "PGRST122",
            400,
        ),
        (
            ParseError::AggregatesNotAllowed {
                param: "select".into(),
            },
            "PGRST123",
            400,
        ),
        (
            read_err(&format!("select={}", "a(".repeat(20))),
            "SLUICE110",
            400,
        ),
        (read_err(&"a".repeat(MAX_QUERY_LEN + 1)), "SLUICE111", 414),
        (read_err("a=%FF"), "SLUICE112", 400),
        (
            ParseError::InvalidHeader {
                header: "Accept",
                problem: String::new(),
            },
            "SLUICE113",
            400,
        ),
        (
            ParseError::Unsupported {
                param: "select".into(),
                feature: "x",
            },
            "SLUICE114",
            400,
        ),
    ];
    for (err, code, status) in cases {
        assert_eq!(err.code(), code, "{err:?}");
        assert_eq!(err.http_status(), status, "{err:?}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn long_inputs_are_shortened_in_messages() {
    let value = format!("eq.{}", "x".repeat(10_000));
    let err = read_err(&format!("{}=({value}", "k".repeat(5_000)));
    let message = err.to_string();
    assert!(message.len() < 400, "{}", message.len());
    assert!(err.details().unwrap().len() < 400);
}
