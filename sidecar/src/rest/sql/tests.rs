use super::*;
use crate::rest::plan::tests::plan;

/// The SQL of `query` on `todos`, after checking that no request value appears in it.
fn sql_for(query: &str, values: &[&str]) -> ReadStatement {
    let statement = read(&plan(query, &[]).unwrap());
    for value in values {
        assert!(
            !statement.sql.contains(value),
            "{value:?} leaked into {}",
            statement.sql
        );
    }
    statement
}

#[test]
fn a_plain_read_is_one_statement_shaped_as_json() {
    let statement = read(&plan("", &[]).unwrap());
    assert_eq!(
        statement.sql,
        "WITH _sluice_page AS (SELECT _t0.* FROM \"public\".\"todos\" _t0 LIMIT $1::text::int8) \
         SELECT coalesce(json_agg(_p), '[]')::text AS body, count(*) AS page_count, \
         NULL::int8 AS total FROM _sluice_page _p"
    );
    assert_eq!(statement.params.texts(), ["100"]);
}

#[test]
fn filter_values_are_parameters_cast_to_the_column_type() {
    let statement = sql_for(
        "id=eq.4242&title=like.secret*&owner=in.(u-1,u-2)&data->>k=neq.jsonval",
        &["4242", "secret", "u-1", "jsonval", "'k'"],
    );
    assert!(
        statement.sql.contains("_t0.\"id\" = $1::text::bigint"),
        "{}",
        statement.sql
    );
    assert!(statement.sql.contains("_t0.\"title\" LIKE $2::text::text"));
    assert!(statement
        .sql
        .contains("_t0.\"owner\" = ANY($3::text[]::uuid[])"));
    assert!(statement
        .sql
        .contains("_t0.\"data\"->>$4::text <> $5::text::text"));
    assert_eq!(
        statement.params.texts(),
        [
            "4242",
            "secret%",
            "[\"u-1\", \"u-2\"]",
            "k",
            "jsonval",
            "100"
        ]
    );
}

#[test]
fn hostile_values_never_reach_the_text() {
    let encoded = "x%27)%3B%20DROP%20TABLE%20todos%3B%20--";
    for query in [
        format!("title=eq.{encoded}"),
        format!("title=fts(english).{encoded}"),
        format!("or=(title.eq.\"{encoded}\",id.lt.5)"),
        "select=k:data->x%27%20DROP%20TABLE%20todos".to_owned(),
        format!("title=isdistinct.{encoded}"),
        format!("tags=cs.{{{encoded}}}"),
        format!("title=like(any).{{{encoded}}}"),
    ] {
        let statement = sql_for(&query, &["DROP TABLE"]);
        assert!(
            statement
                .params
                .texts()
                .iter()
                .any(|v| v.contains("DROP TABLE")),
            "{query}: {:?}",
            statement.params
        );
    }
}

#[test]
fn every_operator_family_has_its_sql() {
    let cases = [
        ("id=gte.1", "_t0.\"id\" >= $1::text::bigint"),
        ("id=not.lt.1", "NOT (_t0.\"id\" < $1::text::bigint)"),
        ("title=ilike.*a*", "_t0.\"title\" ILIKE $1::text::text"),
        ("id=match.^1", "(_t0.\"id\")::text ~ $1::text::text"),
        ("title=imatch.x", "_t0.\"title\" ~* $1::text::text"),
        ("title=is.null", "_t0.\"title\" IS NULL"),
        ("title=not.is.null", "NOT (_t0.\"title\" IS NULL)"),
        ("title=isdistinct.a", "_t0.\"title\" IS DISTINCT FROM $1::text::text"),
        ("tags=cs.{a}", "_t0.\"tags\" @> $1::text::text[]"),
        ("tags=cd.{a}", "_t0.\"tags\" <@ $1::text::text[]"),
        ("tags=ov.{a}", "_t0.\"tags\" && $1::text::text[]"),
        ("id=sl.x", "_t0.\"id\" << $1::text::bigint"),
        ("id=sr.x", "_t0.\"id\" >> $1::text::bigint"),
        ("id=nxr.x", "_t0.\"id\" &< $1::text::bigint"),
        ("id=nxl.x", "_t0.\"id\" &> $1::text::bigint"),
        ("id=adj.x", "_t0.\"id\" -|- $1::text::bigint"),
        ("id=eq(any).{1,2}", "_t0.\"id\" = ANY($1::text::bigint[])"),
        ("id=gt(all).{1,2}", "_t0.\"id\" > ALL($1::text::bigint[])"),
        (
            "title=fts(english).cat",
            "to_tsvector($1::text::regconfig, (_t0.\"title\")::text) @@ to_tsquery($1::text::regconfig, $2::text)",
        ),
        ("title=plfts.cat", "to_tsvector((_t0.\"title\")::text) @@ plainto_tsquery($1::text)"),
        ("title=phfts.cat", "@@ phraseto_tsquery($1::text)"),
        ("title=wfts.cat", "@@ websearch_to_tsquery($1::text)"),
        ("data->a=eq.1", "(_t0.\"data\"->$1::text)::jsonb = $2::text::jsonb"),
        ("data->0->>b=eq.1", "_t0.\"data\"->(0)->>$1::text = $2::text::text"),
        (
            "or=(id.eq.1,and(title.eq.a,id.not.eq.2))",
            "(_t0.\"id\" = $1::text::bigint OR (_t0.\"title\" = $2::text::text AND NOT (_t0.\"id\" = $3::text::bigint)))",
        ),
        ("not.or=(id.eq.1,id.eq.2)", "NOT ((_t0.\"id\" = $1::text::bigint OR _t0.\"id\" = $2::text::bigint))"),
    ];
    for (query, expected) in cases {
        let statement = read(&plan(query, &[]).unwrap());
        assert!(
            statement.sql.contains(expected),
            "{query}: expected {expected} in {}",
            statement.sql
        );
    }
}

#[test]
fn select_order_and_page() {
    let statement = sql_for(
        "select=id,label:title::text,\"weird \\\"name\\\"\",data->>k&order=title.desc.nullslast,id&offset=7&limit=3",
        &["'k'", "'7'", "'3'"],
    );
    assert!(
        statement.sql.contains(
            "SELECT _t0.\"id\" AS \"id\", (_t0.\"title\")::text AS \"label\", \
             _t0.\"weird \"\"name\"\"\" AS \"weird \"\"name\"\"\", _t0.\"data\"->>$1::text AS \"k\" \
             FROM \"public\".\"todos\" _t0 ORDER BY _t0.\"title\" DESC NULLS LAST, _t0.\"id\" ASC \
             LIMIT $2::text::int8 OFFSET $3::text::int8"
        ),
        "{}",
        statement.sql
    );
    assert_eq!(statement.params.texts(), ["k", "3", "7"]);
}

#[test]
fn count_repeats_the_filters_with_the_same_parameters() {
    let mut plan = plan("id=gt.1", &[]).unwrap();
    plan.count = Some(crate::rest::plan::TotalCount::Exact);
    let statement = read(&plan);
    assert!(statement.sql.contains(
        "(SELECT count(*) FROM \"public\".\"todos\" _t0 WHERE _t0.\"id\" > $1::text::bigint) AS total"
    ));
    assert_eq!(statement.params.len(), 2);
}

#[test]
fn csv_and_single_object_bodies() {
    let mut plan = plan("", &[]).unwrap();
    plan.media = crate::rest::parse::MediaType::SingleObject;
    assert!(read(&plan).sql.contains("(json_agg(_p)->0)::text"));
    plan.media = crate::rest::parse::MediaType::Csv;
    assert!(read(&plan)
        .sql
        .contains("substring(_p::text, 2, length(_p::text) - 2)"));
}

#[test]
fn embeddings_are_correlated_subqueries() {
    let statement = sql_for(
        "select=id,author:users!owner(name)&author.name=eq.someone&author.limit=1",
        &["someone"],
    );
    assert!(
        statement.sql.contains(
            "(SELECT row_to_json(_e1) FROM (SELECT _t1.\"name\" AS \"name\" FROM \"public\".\"users\" _t1 \
             WHERE _t1.\"id\" = _t0.\"owner\" AND _t1.\"name\" = $1::text::text LIMIT $2::text::int8) _e1) AS \"author\""
        ),
        "{}",
        statement.sql
    );
    let inner = sql_for(
        "select=id,users!owner!inner(name)&users.name=eq.someone",
        &["someone"],
    );
    assert!(
        inner.sql.contains(
            "WHERE EXISTS (SELECT 1 FROM \"public\".\"users\" _t1 WHERE _t1.\"id\" = _t0.\"owner\" \
             AND _t1.\"name\" = $"
        ),
        "{}",
        inner.sql
    );
}

#[test]
fn array_parameters_become_array_literals_that_keep_every_character() {
    let mut params = Params::default();
    params.text_array(&[
        "a,b".to_owned(),
        "say \"hi\"".to_owned(),
        "back\\slash".to_owned(),
        "NULL".to_owned(),
        "{}".to_owned(),
        String::new(),
    ]);
    assert_eq!(
        params.as_text(),
        vec![Some(
            r#"{"a,b","say \"hi\"","back\\slash","NULL","{}",""}"#.to_owned()
        )]
    );
}
