//! The one statement of a read: the page of rows already shaped as the response body by
//! Postgres, how many rows the page has, and (with `Prefer: count=exact`) the total.
//!
//! ```sql
//! WITH _sluice_page AS (
//!     SELECT <columns> FROM "schema"."table" _t0 WHERE <filters> ORDER BY <order> LIMIT $n OFFSET $m)
//! SELECT coalesce(json_agg(_p), '[]')::text AS body,       -- CSV: text built from the page
//!        count(*) AS page_count,
//!        (SELECT count(*) FROM "schema"."table" _t0 WHERE <filters>) AS total   -- or NULL
//! FROM _sluice_page _p
//! ```
//! The total reuses the filters' placeholders, so its values are bound once.
//!
//! An embedding is a correlated subquery among the columns, as in PostgREST:
//! `(SELECT coalesce(json_agg(_e1), '[]') FROM (SELECT … FROM "s"."child" _t1
//! WHERE _t1."parent_id" = _t0."id" …) _e1)` for to-many, `row_to_json` for to-one; `!inner`
//! adds `EXISTS (…)` to the parent's filters. Each level's alias is `_t<depth>`.

use super::filter::predicate_sql;
use super::ident::{qualified, quote};
use super::Params;
use crate::rest::parse::{Direction, JsonArrow, JsonOperand, MediaType, NullsOrder, Page};
use crate::rest::plan::{
    EmbedPlan, Link, Node, Ordering, Projection, ReadPlan, ResolvedField, TotalCount,
};

/// SQL text and its parameters; the single row has `body text`, `page_count int8`, `total int8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadStatement {
    pub sql: String,
    pub params: Params,
}

pub fn read(plan: &ReadPlan) -> ReadStatement {
    let mut params = Params::default();
    let root = &plan.root;
    let relation = format!("{} {}", qualified(&root.schema, &root.table), alias(0));
    let conditions = conditions(root, 0, &mut params);
    let where_clause = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let page = node_select(root, 0, &where_clause, &mut params);
    let total = match plan.count {
        None => "NULL::int8".to_owned(),
        Some(TotalCount::Exact) => format!("(SELECT count(*) FROM {relation}{where_clause})"),
        Some(TotalCount::Planned) => planned_rows(&relation, &where_clause, &mut params),
        Some(TotalCount::Estimated { exact_up_to }) => {
            let planned = planned_rows(&relation, &where_clause, &mut params);
            let limit = exact_up_to.saturating_add(1);
            format!(
                "(SELECT CASE WHEN _c.n > {exact_up_to} THEN greatest(_c.n, {planned}) ELSE _c.n END \
                 FROM (SELECT count(*) AS n FROM \
                 (SELECT 1 FROM {relation}{where_clause} LIMIT {limit}) _l) _c)"
            )
        }
    };
    // JSON bodies and the page count come from one aggregate over the page (the CTE, read
    // once, is inlined by the planner); CSV reads the page twice (header and lines).
    let (body, from) = match plan.media {
        MediaType::Json => (
            "coalesce(json_agg(_p), '[]')::text",
            " FROM _sluice_page _p",
        ),
        MediaType::SingleObject => ("(json_agg(_p)->0)::text", " FROM _sluice_page _p"),
        MediaType::GeoJson => (GEOJSON_BODY, " FROM _sluice_page _p"),
        MediaType::Csv => ("", ""),
        // Refused before planning (only the root answers it); JSON if it ever got here.
        MediaType::OpenApi => (
            "coalesce(json_agg(_p), '[]')::text",
            " FROM _sluice_page _p",
        ),
    };
    let sql = if plan.media == MediaType::Csv {
        format!(
            "WITH _sluice_page AS ({page}) SELECT {} AS body, \
             (SELECT count(*) FROM _sluice_page) AS page_count, {total} AS total",
            csv_body()
        )
    } else {
        format!(
            "WITH _sluice_page AS ({page}) SELECT {body} AS body, count(*) AS page_count, \
             {total} AS total{from}"
        )
    };
    ReadStatement { sql, params }
}

/// `sluice.planned_rows(<the count query>, <the parameters bound so far>)`: the query's text is
/// itself a bound parameter (our own SQL of quoted names and placeholders), and it reads the
/// filters' values from the array, by the same `$n` numbers.
fn planned_rows(relation: &str, where_clause: &str, params: &mut Params) -> String {
    let values: Vec<String> = (1..=params.len()).map(|n| format!("${n}::text")).collect();
    let query = params.text(&format!("SELECT 1 FROM {relation}{where_clause}"));
    format!(
        "sluice.planned_rows({query}, ARRAY[{}]::text[])",
        values.join(", ")
    )
}

/// The table alias of the relation at nesting `depth`: a child's conditions name its parent by
/// the alias one level up.
pub(super) fn alias(depth: usize) -> String {
    format!("_t{depth}")
}

/// `SELECT <columns> FROM <relation> _tN <where> ORDER BY … LIMIT … OFFSET …`.
fn node_select(node: &Node, depth: usize, where_clause: &str, params: &mut Params) -> String {
    let relation = qualified(&node.schema, &node.table);
    node_select_from(node, &relation, depth, where_clause, params)
}

/// `node_select` reading `relation` (a table, or a write's returned rows) as `_tN`.
pub(super) fn node_select_from(
    node: &Node,
    relation: &str,
    depth: usize,
    where_clause: &str,
    params: &mut Params,
) -> String {
    let grouped = node
        .select
        .iter()
        .any(|projection| matches!(projection, Projection::Aggregate { .. }));
    let mut columns = Vec::with_capacity(node.select.len());
    // With an aggregate, the rows are grouped by every other output, by position (a JSON path's
    // keys are parameters, which Postgres would not match between the list and the clause). An
    // embedding is grouped by its value, as PostgREST groups it: as `jsonb` (`json` has no
    // equality), so that two parents whose embeddings are equal fall in one group.
    let mut group_by = Vec::new();
    for projection in node.select.iter().filter(|p| !is_empty_embed(p)) {
        if !grouped {
            columns.push(select_item(projection, depth, params));
            continue;
        }
        match projection {
            Projection::Field { .. } => {
                columns.push(select_item(projection, depth, params));
                group_by.push(columns.len().to_string());
            }
            Projection::Star => {
                columns.push(select_item(projection, depth, params));
                group_by.push(alias(depth));
            }
            Projection::Embed(embed) => {
                columns.push(format!(
                    "({})::jsonb AS {}",
                    embed_sql(embed, depth, params),
                    quote(&embed.key)
                ));
                group_by.push(columns.len().to_string());
            }
            Projection::Spread(embed) => {
                for item in spread_item_list(embed, depth, true, params) {
                    columns.push(item);
                    group_by.push(columns.len().to_string());
                }
            }
            Projection::Aggregate { .. } => columns.push(select_item(projection, depth, params)),
        }
    }
    // An order by a to-one embedding's column (`order=rel(col)`) reads it with a subquery of this
    // row. Grouped, that value is grouped by too (the same text, so Postgres matches the two) when
    // the embedding is selected with that column: its value is then part of the group's, and
    // grouping by it splits nothing. Any other such order is left to Postgres, which refuses it
    // (42803, as it refuses PostgREST's) unless the columns it reads by are grouped by.
    let order: Vec<String> = node
        .order
        .iter()
        .map(|term| order_expr(term, depth, params))
        .collect();
    if grouped {
        for (term, expr) in node.order.iter().zip(&order) {
            if term.related.is_some() && selected_with(node, term) {
                group_by.push(expr.clone());
            }
        }
    }
    let mut sql = format!(
        "SELECT {} FROM {relation} {}{where_clause}",
        columns.join(", "),
        alias(depth)
    );
    if !group_by.is_empty() {
        sql.push_str(" GROUP BY ");
        sql.push_str(&group_by.join(", "));
    }
    sql.push_str(&ordered_page(&node.order, order, node.page, params));
    sql
}

/// Whether `term` (an order by a to-one embedding's column) names a column that `node` selects
/// from that same embedding, as itself (no JSON path, not computed).
fn selected_with(node: &Node, term: &Ordering) -> bool {
    let Some(related) = &term.related else {
        return false;
    };
    node.select.iter().any(|projection| {
        let (Projection::Embed(embed) | Projection::Spread(embed)) = projection else {
            return false;
        };
        embed.to_one
            && embed.link == related.link
            && embed.node.schema == related.schema
            && embed.node.table == related.table
            && embed.node.select.iter().any(|item| {
                matches!(item, Projection::Field { field, .. }
                    if field.column == term.field.column
                        && field.json_path.is_empty()
                        && field.computed.is_none())
            })
    })
}

/// The JSON keys a node's rows have: what a spread of it adds to its parent.
fn output_keys(node: &Node) -> Vec<&str> {
    let mut keys = Vec::new();
    for projection in node.select.iter().filter(|p| !is_empty_embed(p)) {
        match projection {
            Projection::Field { alias, .. } | Projection::Aggregate { alias, .. } => {
                keys.push(alias.as_str())
            }
            Projection::Embed(embed) => keys.push(embed.key.as_str()),
            Projection::Spread(embed) => keys.extend(output_keys(&embed.node)),
            // A spread's star is expanded by the planner.
            Projection::Star => {}
        }
    }
    keys
}

/// `...rel(cols)`: each output column of the embedding as a column of the parent: its value for
/// a to-one (null without a row), the array of its values for a to-many (`[]` without rows).
fn spread_items(embed: &EmbedPlan, depth: usize, params: &mut Params) -> String {
    spread_item_list(embed, depth, false, params).join(", ")
}

/// The items of `spread_items`, one per key; a to-many's arrays as `jsonb` when `grouped` (the
/// parent groups by them).
fn spread_item_list(
    embed: &EmbedPlan,
    depth: usize,
    grouped: bool,
    params: &mut Params,
) -> Vec<String> {
    let child = depth + 1;
    let row = format!("_e{child}");
    let array_type = if grouped { "::jsonb" } else { "" };
    let mut items = Vec::new();
    for key in output_keys(&embed.node) {
        let rows = child_rows(embed, depth, params);
        let key = quote(key);
        items.push(if embed.to_one {
            format!("(SELECT {row}.{key} FROM ({rows}) {row}) AS {key}")
        } else {
            format!(
                "(SELECT coalesce(json_agg({row}.{key}), '[]') FROM ({rows}) {row}){array_type} AS {key}"
            )
        });
    }
    items
}

/// `rel()`: an embedding that selects nothing only filters (with `!inner`) and is left out of
/// the body, as PostgREST leaves it.
fn is_empty_embed(projection: &Projection) -> bool {
    match projection {
        Projection::Embed(embed) => embed.node.select.is_empty(),
        Projection::Spread(embed) => output_keys(&embed.node).is_empty(),
        _ => false,
    }
}

/// ` ORDER BY … LIMIT $n OFFSET $m`, each part only when there is one.
pub(super) fn order_and_page(
    order: &[Ordering],
    page: Page,
    depth: usize,
    params: &mut Params,
) -> String {
    let exprs = order
        .iter()
        .map(|term| order_expr(term, depth, params))
        .collect();
    ordered_page(order, exprs, page, params)
}

/// `order_and_page` with each term's expression already written (`exprs`, one per term).
fn ordered_page(order: &[Ordering], exprs: Vec<String>, page: Page, params: &mut Params) -> String {
    let mut sql = String::new();
    if !order.is_empty() {
        let terms = order
            .iter()
            .zip(exprs)
            .map(|(term, expr)| expr + &order_suffix(term))
            .collect::<Vec<_>>();
        sql.push_str(&format!(" ORDER BY {}", terms.join(", ")));
    }
    if let Some(limit) = page.limit {
        sql.push_str(&format!(
            " LIMIT {}",
            params.typed(&limit.to_string(), "int8")
        ));
    }
    if page.offset > 0 {
        sql.push_str(&format!(
            " OFFSET {}",
            params.typed(&page.offset.to_string(), "int8")
        ));
    }
    sql
}

/// The node's own filters and, for each `!inner` embedding, that a matching child exists.
fn conditions(node: &Node, depth: usize, params: &mut Params) -> Vec<String> {
    let mut all: Vec<String> = node
        .filters
        .iter()
        .map(|predicate| predicate_sql(predicate, depth, params))
        .collect();
    for projection in &node.select {
        if let Projection::Embed(embed) | Projection::Spread(embed) = projection {
            if embed.inner {
                let child = depth + 1;
                let mut child_conditions = vec![link_sql(&embed.link, child)];
                child_conditions.extend(conditions(&embed.node, child, params));
                all.push(format!(
                    "EXISTS (SELECT 1 FROM {} {} WHERE {})",
                    source(&embed.node.schema, &embed.node.table, &embed.link, child),
                    alias(child),
                    child_conditions.join(" AND ")
                ));
            }
        }
    }
    all
}

/// What the child at `depth` reads: its table, or for a computed relationship the function
/// called with the parent's row (`"s"."f"(_t0)`).
fn source(schema: &str, table: &str, link: &Link, depth: usize) -> String {
    match link {
        Link::Computed { schema, function } => {
            format!("{}({})", qualified(schema, function), alias(depth - 1))
        }
        _ => qualified(schema, table),
    }
}

/// How the child at `depth` joins its parent at `depth - 1`.
fn link_sql(link: &Link, depth: usize) -> String {
    let (parent, child) = (alias(depth - 1), alias(depth));
    match link {
        // The function already returns only the parent's rows.
        Link::Computed { .. } => "TRUE".to_owned(),
        Link::Direct(pairs) => pairs
            .iter()
            .map(|(ours, theirs)| format!("{child}.{} = {parent}.{}", quote(theirs), quote(ours)))
            .collect::<Vec<_>>()
            .join(" AND "),
        Link::Junction {
            schema,
            table,
            parent: parent_pairs,
            child: child_pairs,
        } => {
            let junction = format!("_j{depth}");
            let on = parent_pairs
                .iter()
                .map(|(ours, its)| format!("{junction}.{} = {parent}.{}", quote(its), quote(ours)))
                .chain(child_pairs.iter().map(|(theirs, its)| {
                    format!("{junction}.{} = {child}.{}", quote(its), quote(theirs))
                }))
                .collect::<Vec<_>>()
                .join(" AND ");
            format!(
                "EXISTS (SELECT 1 FROM {} {junction} WHERE {on})",
                qualified(schema, table)
            )
        }
    }
}

/// A correlated subquery: an array of the child rows (`[]` when none), or one object or null.
fn embed_sql(embed: &EmbedPlan, depth: usize, params: &mut Params) -> String {
    let rows = child_rows(embed, depth, params);
    let row = format!("_e{}", depth + 1);
    if embed.to_one {
        format!("(SELECT row_to_json({row}) FROM ({rows}) {row})")
    } else {
        format!("(SELECT coalesce(json_agg({row}), '[]') FROM ({rows}) {row})")
    }
}

/// The embedding's rows for one parent row at `depth`: its own select, filters, order and page,
/// joined to the parent.
fn child_rows(embed: &EmbedPlan, depth: usize, params: &mut Params) -> String {
    let child = depth + 1;
    let mut child_conditions = vec![link_sql(&embed.link, child)];
    child_conditions.extend(conditions(&embed.node, child, params));
    let where_clause = format!(" WHERE {}", child_conditions.join(" AND "));
    let relation = source(&embed.node.schema, &embed.node.table, &embed.link, child);
    node_select_from(&embed.node, &relation, child, &where_clause, params)
}

/// The page as a GeoJSON FeatureCollection, as PostgREST 12 writes it (`asGeoJsonF`): PostGIS's
/// `ST_AsGeoJSON` of each row makes a Feature of its geometry column, the other columns its
/// properties. Without PostGIS the function does not exist and Postgres says so.
pub(super) const GEOJSON_BODY: &str = "json_build_object('type', 'FeatureCollection', \
     'features', coalesce(json_agg(ST_AsGeoJSON(_p)::json), '[]'))::text";

/// CSV of the page as PostgREST 12 writes it (`asCsvF`): a header line of the first row's keys
/// as they are, a line break (also when there are no rows), then each row as Postgres prints
/// the row (`record_out` without its parentheses): NULL is empty, and a value that is empty or
/// holds a comma, quote, backslash, parenthesis or white space is quoted, quotes and backslashes
/// doubled; booleans are `t`/`f`, json and arrays their text.
pub(super) fn csv_body() -> String {
    "(SELECT coalesce(string_agg(_k, ','), '') FROM json_object_keys(\
     (SELECT row_to_json(_p) FROM _sluice_page _p LIMIT 1)) AS _k) || chr(10) || \
     coalesce((SELECT string_agg(substring(_p::text, 2, length(_p::text) - 2), chr(10)) \
     FROM _sluice_page _p), '')"
        .to_owned()
}

fn select_item(projection: &Projection, depth: usize, params: &mut Params) -> String {
    match projection {
        Projection::Star => format!("{}.*", alias(depth)),
        Projection::Field { field, alias, cast } => {
            let expr = field_expr(field, depth, params);
            match cast {
                Some(cast) => format!("({expr})::{cast} AS {}", quote(alias)),
                None => format!("{expr} AS {}", quote(alias)),
            }
        }
        Projection::Embed(embed) => {
            format!(
                "{} AS {}",
                embed_sql(embed, depth, params),
                quote(&embed.key)
            )
        }
        Projection::Spread(embed) => spread_items(embed, depth, params),
        Projection::Aggregate {
            function,
            field,
            input_cast,
            alias,
            cast,
        } => {
            let argument = match (field, input_cast) {
                (None, _) => "*".to_owned(),
                (Some(field), None) => field_expr(field, depth, params),
                (Some(field), Some(input)) => {
                    format!("({})::{input}", field_expr(field, depth, params))
                }
            };
            let call = format!("{}({argument})", function.name());
            match cast {
                Some(cast) => format!("({call})::{cast} AS {}", quote(alias)),
                None => format!("{call} AS {}", quote(alias)),
            }
        }
    }
}

/// `_tN."col"`, or `_tN."col"->$1::text->>(0)` for a JSON path: keys are bound, indexes are
/// integers (parsed, so not request text), parenthesised so that a negative one stays one token.
pub(super) fn field_expr(field: &ResolvedField, depth: usize, params: &mut Params) -> String {
    let mut expr = match &field.computed {
        None => format!("{}.{}", alias(depth), quote(&field.column)),
        Some((schema, function)) => format!("{}({})", qualified(schema, function), alias(depth)),
    };
    for step in &field.json_path {
        expr.push_str(match step.arrow {
            JsonArrow::Json => "->",
            JsonArrow::Text => "->>",
        });
        match &step.operand {
            JsonOperand::Key(key) => expr.push_str(&params.text(key)),
            JsonOperand::Index(index) => expr.push_str(&format!("({index})")),
        }
    }
    expr
}

/// What an order term sorts by: a column of the row at `depth`, or of a to-one embedding (a
/// subquery of the row).
fn order_expr(term: &Ordering, depth: usize, params: &mut Params) -> String {
    match &term.related {
        None => field_expr(&term.field, depth, params),
        Some(related) => format!(
            "(SELECT {} FROM {} {} WHERE {})",
            field_expr(&term.field, depth + 1, params),
            source(&related.schema, &related.table, &related.link, depth + 1),
            alias(depth + 1),
            link_sql(&related.link, depth + 1)
        ),
    }
}

/// ` ASC`/` DESC` and ` NULLS FIRST`/` NULLS LAST` of an order term.
fn order_suffix(term: &Ordering) -> String {
    let mut sql = String::new();
    sql.push_str(match term.direction {
        Some(Direction::Desc) => " DESC",
        Some(Direction::Asc) | None => " ASC",
    });
    match term.nulls {
        Some(NullsOrder::First) => sql.push_str(" NULLS FIRST"),
        Some(NullsOrder::Last) => sql.push_str(" NULLS LAST"),
        None => {}
    }
    sql
}
