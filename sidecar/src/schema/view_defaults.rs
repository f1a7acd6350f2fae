//! The defaults an INSERT through a view applies to the columns it leaves out: the view column's
//! own default, else (the view being auto-updatable) that of the column it shows, one view down
//! and so on to the base table. `Prefer: missing=default` writes a missing key's default itself
//! (row by row), so a view column without a default of its own gets the one Postgres would apply,
//! as PostgREST reads it through the view's column dependencies.
//!
//! Which column a view column shows comes from the view's `_RETURN` rule: each top-level target
//! entry of its query carries `resorigtbl`/`resorigcol`, the relation and column a plain column
//! reference reads (zero for an expression). That is exact through renames (`status AS state`),
//! unlike matching names.

use std::collections::HashMap;

use tokio_postgres::{GenericClient, Row};

use super::model::Table;

/// Every view's `_RETURN` rule outside the system schemas (views of views may read views that are
/// not exposed).
pub(super) const VIEW_RULES: &str = "
SELECT v.oid AS view_oid, r.ev_action::text AS action
FROM pg_catalog.pg_class v
JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace
JOIN pg_catalog.pg_rewrite r ON r.ev_class = v.oid AND r.rulename = '_RETURN'
WHERE v.relkind IN ('v', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')";

/// The default of each (relation, column) asked for, as an INSERT applies it when the column is
/// left out: its own, else its domain's; an identity's next value with its sequence named (a view
/// has none of its own); none for generated and `GENERATED ALWAYS` identity columns.
const COLUMN_DEFAULTS: &str = "
SELECT k.rel AS rel, k.col AS col,
       CASE WHEN a.attgenerated <> '' OR a.attidentity = 'a' THEN NULL
            WHEN a.attidentity = 'd'
            THEN pg_catalog.format('nextval(%L::pg_catalog.regclass)',
                     pg_catalog.pg_get_serial_sequence(
                         pg_catalog.format('%I.%I', n.nspname, c.relname), a.attname))
            ELSE COALESCE(pg_catalog.pg_get_expr(ad.adbin, ad.adrelid),
                          pg_catalog.pg_get_expr(t.typdefaultbin, 0))
       END AS default_expr
FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.oid[]),
               pg_catalog.unnest($2::pg_catalog.int2[])) AS k(rel, col)
JOIN pg_catalog.pg_attribute a ON a.attrelid = k.rel AND a.attnum = k.col AND NOT a.attisdropped
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum";

/// How many views deep a column is followed.
const MAX_HOPS: usize = 16;

/// (relation oid, attnum).
type ColumnRef = (u32, i16);

/// Gives each view column without a default of its own the default an INSERT through the view
/// applies (see the module): one more query, only when some view column can be traced.
pub(super) async fn inherit(
    client: &impl GenericClient,
    tables: &mut [Table],
    rules: &[Row],
) -> Result<(), tokio_postgres::Error> {
    let mut shows: HashMap<ColumnRef, ColumnRef> = HashMap::new();
    for row in rules {
        let view: u32 = row.try_get("view_oid")?;
        let action: Option<String> = row.try_get("action")?;
        for (resno, table, column) in action.as_deref().map(target_origins).unwrap_or_default() {
            shows.insert((view, resno), (table, column));
        }
    }
    // For each view column to fill, the columns it shows, outermost first.
    let mut chains: Vec<(usize, usize, Vec<ColumnRef>)> = Vec::new();
    for (t, table) in tables.iter().enumerate() {
        if !table.kind.is_view() {
            continue;
        }
        for (c, column) in table.columns.iter().enumerate() {
            if column.default.is_some() || column.identity.is_some() || column.generated {
                continue;
            }
            let mut chain = Vec::new();
            let mut at = (table.oid, column.position);
            while let Some(&next) = shows.get(&at) {
                if chain.len() == MAX_HOPS || chain.contains(&next) {
                    break;
                }
                chain.push(next);
                at = next;
            }
            if !chain.is_empty() {
                chains.push((t, c, chain));
            }
        }
    }
    if chains.is_empty() {
        return Ok(());
    }
    let mut asked: Vec<ColumnRef> = chains.iter().flat_map(|(_, _, c)| c.clone()).collect();
    asked.sort_unstable();
    asked.dedup();
    let (rels, cols): (Vec<u32>, Vec<i16>) = asked.into_iter().unzip();
    let mut defaults: HashMap<ColumnRef, String> = HashMap::new();
    for row in client.query(COLUMN_DEFAULTS, &[&rels, &cols]).await? {
        if let Some(default) = row.try_get::<_, Option<String>>("default_expr")? {
            defaults.insert((row.try_get("rel")?, row.try_get("col")?), default);
        }
    }
    for (t, c, chain) in chains {
        tables[t].columns[c].default = chain.iter().find_map(|at| defaults.get(at).cloned());
    }
    Ok(())
}

/// `(resno, resorigtbl, resorigcol)` of each top-level target entry of a rule's query (the text of
/// `pg_rewrite.ev_action`, a list of one `{QUERY …}` node) that reads a column outright. The node
/// text escapes `(){}`, whitespace and `\` inside names with a backslash, so nesting is counted
/// on the bare characters; the query's own fields are at depth 2, its `:targetList` entries' at 4.
fn target_origins(action: &str) -> Vec<(i16, u32, i16)> {
    let bytes = action.as_bytes();
    let mut origins = Vec::new();
    let mut depth = 0usize;
    let mut in_targets = false;
    let mut entry: (Option<i16>, Option<u32>, Option<i16>) = (None, None, None);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'(' | b'{' => depth += 1,
            b')' | b'}' => {
                if in_targets && depth == 4 && bytes[i] == b'}' {
                    if let (Some(resno), Some(table), Some(column)) = entry {
                        if table != 0 && column > 0 {
                            origins.push((resno, table, column));
                        }
                    }
                    entry = (None, None, None);
                }
                depth = depth.saturating_sub(1);
                if in_targets && depth <= 2 {
                    break;
                }
            }
            b':' if depth == 2 || (in_targets && depth == 4) => {
                let name = word(bytes, i + 1);
                let value = word(bytes, i + 2 + name.len());
                match (depth, name) {
                    (2, "targetList") => in_targets = value.starts_with('('),
                    (4, "resno") => entry.0 = value.parse().ok(),
                    (4, "resorigtbl") => entry.1 = value.parse().ok(),
                    (4, "resorigcol") => entry.2 = value.parse().ok(),
                    _ => {}
                }
            }
            _ => {}
        }
        i += 1;
    }
    origins
}

/// The run of bytes from `start` up to the next whitespace (or the end).
fn word(bytes: &[u8], start: usize) -> &str {
    let rest = bytes.get(start..).unwrap_or_default();
    let end = rest
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::target_origins;

    /// A view's rule as Postgres 15 writes it (shortened: fields that do not matter left out), with
    /// a renamed column, an expression, a sub-select in the target list and names that need escapes.
    const RULE: &str = r#"({QUERY :commandType 1 :rtable ({RANGETBLENTRY :eref {ALIAS :aliasname old :colnames ("id" "a\)b")} :relid 9}) :jointree {FROMEXPR :fromlist ({RANGETBLREF :rtindex 3}) :quals {OPEXPR :opno 96 :args ({VAR :varno 3 :varattno 1} {CONST :consttype 23 :constvalue 4 [ 1 0 0 0 ]})}} :targetList ({TARGETENTRY :expr {VAR :varno 3 :varattno 1} :resno 1 :resname id :ressortgroupref 0 :resorigtbl 22111 :resorigcol 1 :resjunk false} {TARGETENTRY :expr {VAR :varno 3 :varattno 3} :resno 2 :resname state :ressortgroupref 0 :resorigtbl 22111 :resorigcol 3 :resjunk false} {TARGETENTRY :expr {OPEXPR :opno 551 :args ({VAR :varno 3 :varattno 4} {CONST :constvalue 4 [ 1 0 0 0 ]})} :resno 3 :resname plus\ one :ressortgroupref 0 :resorigtbl 0 :resorigcol 0 :resjunk false} {TARGETENTRY :expr {SUBLINK :subselect {QUERY :targetList ({TARGETENTRY :expr {VAR :varno 1 :varattno 2} :resno 1 :resname x :ressortgroupref 0 :resorigtbl 555 :resorigcol 2 :resjunk false})}} :resno 4 :resname sub :ressortgroupref 0 :resorigtbl 0 :resorigcol 0 :resjunk false} {TARGETENTRY :expr {VAR :varno 3 :varattno 2} :resno 5 :resname a\)b :ressortgroupref 0 :resorigtbl 22111 :resorigcol 2 :resjunk false}) :override 0 :returningList <> :havingQual <>})"#;

    #[test]
    fn the_top_level_entries_that_read_a_column() {
        assert_eq!(
            target_origins(RULE),
            vec![(1, 22111, 1), (2, 22111, 3), (5, 22111, 2)]
        );
    }

    #[test]
    fn unreadable_text_gives_nothing() {
        assert!(target_origins("").is_empty());
        assert!(target_origins("<>").is_empty());
        assert!(target_origins("({QUERY :targetList <> :override 0})").is_empty());
        assert!(target_origins("({QUERY :targetList ({TARGETENTRY :resno x").is_empty());
    }
}
