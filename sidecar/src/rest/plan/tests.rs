use axum::http::HeaderMap;

use super::*;
use crate::rest::parse::parse_read;

pub(crate) use crate::schema::fixtures::cache;

pub(crate) fn plan(
    query: &str,
    headers: &[(&'static str, &'static str)],
) -> Result<ReadPlan, RestError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(*name, value.parse().unwrap());
    }
    let table = if headers.iter().any(|(_, v)| *v == "api") {
        "things"
    } else {
        "todos"
    };
    plan_read(&cache(), table, parse_read(query, &map)?, Some(100))
}

#[test]
fn names_resolve_against_the_cache() {
    let plan = plan("select=id,t:title,data->>a&id=eq.1&order=id.desc", &[]).unwrap();
    assert_eq!(plan.root.schema, "public");
    assert_eq!(plan.root.table, "todos");
    assert_eq!(plan.root.select.len(), 3);
    match &plan.root.select[1] {
        Projection::Field { alias, field, .. } => {
            assert_eq!(alias, "t");
            assert_eq!(field.column_type, "text");
        }
        other => panic!("{other:?}"),
    }
    match &plan.root.select[2] {
        Projection::Field { alias, field, .. } => {
            assert_eq!(alias, "a");
            assert_eq!(field.value_type(), "text");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(plan.root.filters.len(), 1);
    assert_eq!(plan.root.order.len(), 1);
}

#[test]
fn max_rows_caps_the_limit() {
    assert_eq!(plan("", &[]).unwrap().root.page.limit, Some(100));
    assert_eq!(plan("limit=5", &[]).unwrap().root.page.limit, Some(5));
    assert_eq!(plan("limit=500", &[]).unwrap().root.page.limit, Some(100));
}

#[test]
fn accept_profile_picks_an_exposed_schema_only() {
    let plan_api = plan("", &[("accept-profile", "api")]).unwrap();
    assert_eq!(plan_api.root.schema, "api");
    for schema in ["auth", "sluice", "pg_catalog", "nope"] {
        let mut headers = HeaderMap::new();
        headers.insert("accept-profile", schema.parse().unwrap());
        let request = parse_read("", &headers).unwrap();
        let err = plan_read(&cache(), "todos", request, None).unwrap_err();
        assert_eq!(err.code(), "PGRST106");
        assert_eq!(err.http_status(), 406);
        assert_eq!(
            err.to_string(),
            "The schema must be one of the following: public, api"
        );
    }
}

#[test]
fn unknown_names_are_clear_errors() {
    let request = parse_read("", &HeaderMap::new()).unwrap();
    let err = plan_read(&cache(), "nope", request, None).unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("PGRST205", 404));
    assert_eq!(
        err.to_string(),
        "Could not find the table 'public.nope' in the schema cache"
    );
    for query in [
        "select=nope",
        "nope=eq.1",
        "or=(id.eq.1,nope.eq.2)",
        "order=nope",
    ] {
        let err = plan(query, &[]).unwrap_err();
        assert_eq!((err.code(), err.http_status()), ("42703", 400), "{query}");
        assert_eq!(err.to_string(), "column todos.nope does not exist");
    }
}

#[test]
fn casts_must_be_one_plain_type_name() {
    assert!(plan("select=id::text", &[]).is_ok());
    let err = plan("select=id::double precision", &[]).unwrap_err();
    assert_eq!(err.code(), "SLUICE120");
}

#[test]
fn embeddings_resolve_through_foreign_keys() {
    let plan = plan(
        "select=id,author:users!todos_owner_fkey(name)&author.name=eq.x&author.limit=1",
        &[],
    )
    .unwrap();
    let Projection::Embed(embed) = &plan.root.select[1] else {
        panic!("{:?}", plan.root.select)
    };
    assert_eq!(embed.key, "author");
    assert!(embed.to_one && !embed.inner);
    assert_eq!(
        embed.link,
        Link::Direct(vec![("owner".into(), "id".into())])
    );
    assert_eq!(embed.node.table, "users");
    assert_eq!(embed.node.filters.len(), 1);
    assert_eq!(embed.node.page.limit, Some(1));
    assert!(plan.root.filters.is_empty());

    let back = plan_read(
        &cache(),
        "users",
        parse_read("select=*,todos!owner(*)", &HeaderMap::new()).unwrap(),
        None,
    )
    .unwrap();
    let Projection::Embed(embed) = &back.root.select[1] else {
        panic!("{:?}", back.root.select)
    };
    assert!(!embed.to_one);
    assert_eq!(
        embed.link,
        Link::Direct(vec![("id".into(), "owner".into())])
    );
}

#[test]
fn embedding_errors_follow_postgrest() {
    let ambiguous = plan("select=*,users(*)", &[]).unwrap_err();
    assert_eq!(
        (ambiguous.code(), ambiguous.http_status()),
        ("PGRST201", 300)
    );
    assert!(ambiguous
        .hint()
        .unwrap()
        .contains("'users!todos_editor_fkey'"));
    let details = ambiguous.details_value().unwrap();
    assert_eq!(details.as_array().map(Vec::len), Some(2), "{details}");
    assert_eq!(details[0]["cardinality"], "many-to-one");
    let none = plan("select=*,things(*)", &[]).unwrap_err();
    assert_eq!((none.code(), none.http_status()), ("PGRST200", 400));
    let not_selected = plan("users.name=eq.x", &[]).unwrap_err();
    assert_eq!(
        (not_selected.code(), not_selected.http_status()),
        ("PGRST108", 400)
    );
    let to_one = plan("select=*,users!owner(*)&order=users(name)", &[]).unwrap();
    let related = to_one.root.order[0].related.as_ref().unwrap();
    assert_eq!(related.table, "users");
    assert_eq!(
        related.link,
        Link::Direct(vec![("owner".into(), "id".into())])
    );
    let not_embedded = plan("order=users(name)", &[]).unwrap_err();
    assert_eq!(
        (not_embedded.code(), not_embedded.http_status()),
        ("PGRST118", 400)
    );
}

#[test]
fn two_embeddings_of_one_name_are_refused() {
    let err = plan("select=users!owner(*),users!owner(id)", &[]).unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("42712", 400));
    assert_eq!(
        err.to_string(),
        "table name \"todos_users_1\" specified more than once"
    );
    assert!(plan("select=users!owner(*),u:users!owner(id)", &[]).is_ok());
}

#[test]
fn aggregates_need_the_setting_and_group_by_the_rest() {
    let off = plan("select=id.count()", &[]).unwrap_err();
    assert_eq!((off.code(), off.http_status()), ("PGRST123", 400));
    assert_eq!(off.to_string(), "Use of aggregate functions is not allowed");

    let mut request = parse_read(
        "select=title,total:id.sum()::text,count(),users!owner(name)",
        &HeaderMap::new(),
    )
    .unwrap();
    request.aggregates_enabled = true;
    let on = plan_read(&cache(), "todos", request, None).unwrap();
    assert!(matches!(
        &on.root.select[1],
        Projection::Aggregate { function: AggregateFunction::Sum, alias, cast: Some(_), .. }
            if alias == "total"
    ));
    let sql = crate::rest::sql::read(&on).sql;
    assert!(sql.contains("sum(_t0.\"id\")"), "{sql}");
    assert!(sql.contains("count(*) AS \"count\""), "{sql}");
    // The embedding is grouped by its value (as jsonb), by position like the column.
    assert!(sql.contains(")::jsonb AS \"users\""), "{sql}");
    assert!(sql.contains(" GROUP BY 1, 4"), "{sql}");

    // The database's `pgrst.db_aggregates_enabled` turns them on too.
    let enabled = cache().with_aggregates_enabled(true);
    let request = parse_read("select=id.max()", &HeaderMap::new()).unwrap();
    assert!(plan_read(&enabled, "todos", request, None).is_ok());
}

#[test]
fn a_spread_star_is_its_columns() {
    let spread = plan("select=id,...users!owner(*)", &[]).unwrap();
    let Projection::Spread(embed) = &spread.root.select[1] else {
        panic!("{:?}", spread.root.select)
    };
    assert!(embed.to_one);
    assert_eq!(embed.node.select.len(), 2);
    assert!(!embed.node.select.contains(&Projection::Star));
}
