//! Relationships as PostgREST sees them: every foreign key, and again for every view that shows
//! all of its columns (on either side, through views of views), read from the views' rewrite rules.

use std::collections::{BTreeSet, HashMap};

use tokio_postgres::Client;

use super::catalog::Relationship;
use super::collate::compare;
use crate::cli::CliError;

// Foreign keys; one-to-one when the referencing columns (in key order) are exactly a primary or
// unique key's columns (in table order).
const FOREIGN_KEYS: &str = "
with fk as (
  select k.oid, k.conname::text as name, ns.nspname::text as schema, tab.relname::text as relation,
         k.conrelid, k.confrelid, k.conkey, k.confkey,
         rns.nspname::text as ref_schema, ref.relname::text as ref_relation,
         array(select a.attname::text from unnest(k.conkey) with ordinality as u(num, ord)
               join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.num
               order by u.ord) as cols,
         array(select a.attname::text from unnest(k.confkey) with ordinality as u(num, ord)
               join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.num
               order by u.ord) as refs
  from pg_constraint k
  join pg_namespace ns on ns.oid = k.connamespace
  join pg_class tab on tab.oid = k.conrelid
  join pg_class ref on ref.oid = k.confrelid
  join pg_namespace rns on rns.oid = ref.relnamespace
  where k.contype = 'f' and k.conparentid = 0 and ns.nspname = any($1)
)
select fk.name, fk.schema, fk.relation, fk.cols, fk.ref_schema, fk.ref_relation, fk.refs,
       exists (select 1 from pg_constraint u
               where u.conrelid = fk.conrelid and u.contype in ('p', 'u')
                 and u.connamespace::regnamespace::text = any($1)
                 and array(select a.attname::text from unnest(u.conkey) as x(num)
                           join pg_attribute a on a.attrelid = u.conrelid and a.attnum = x.num
                           order by a.attnum) = fk.cols),
       fk.conrelid, fk.conkey::int2[], fk.confrelid, fk.confkey::int2[]
from fk
order by fk.oid";

const VIEW_QUERIES: &str = "
select c.oid, n.nspname::text, c.relname::text, r.ev_action::text
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
join pg_rewrite r on r.ev_class = c.oid
where c.relkind in ('v', 'm') and n.nspname = any($1)";

const ATTRIBUTES: &str = "
select a.attrelid, a.attnum, a.attname::text
from pg_attribute a
join pg_class c on c.oid = a.attrelid
join pg_namespace n on n.oid = c.relnamespace
where a.attnum > 0 and not a.attisdropped
  and (c.relkind in ('v', 'm') and n.nspname = any($1) or c.oid = any($2))";

/// A foreign key as read, with its key columns by number (for the view mapping).
struct ForeignKey {
    relationship: Relationship,
    table: u32,
    keys: Vec<i16>,
    referenced_table: u32,
    referenced_keys: Vec<i16>,
}

/// Which view columns show a key's columns: a view's mapping of a foreign key's referencing
/// (`referencing == true`) or referenced columns, as PostgREST derives it.
struct KeyDependency {
    view_schema: String,
    view_name: String,
    foreign_key: String,
    /// For each key column (in key order), the view columns that show it.
    view_columns: Vec<Vec<String>>,
    referencing: bool,
    table: u32,
}

pub(super) async fn read(
    client: &Client,
    schemas: &[String],
) -> Result<Vec<Relationship>, CliError> {
    let mut keys = Vec::new();
    for row in client.query(FOREIGN_KEYS, &[&schemas]).await? {
        keys.push(ForeignKey {
            relationship: Relationship {
                foreign_key: row.get(0),
                schema: row.get(1),
                relation: row.get(2),
                columns: row.get(3),
                referenced_schema: row.get(4),
                referenced_relation: row.get(5),
                referenced_columns: row.get(6),
                one_to_one: row.get(7),
            },
            table: row.get(8),
            keys: row.get(9),
            referenced_table: row.get(10),
            referenced_keys: row.get(11),
        });
    }
    let dependencies = key_dependencies(client, schemas, &keys).await?;

    let mut all: Vec<Relationship> = keys.iter().map(|k| k.relationship.clone()).collect();
    for key in &keys {
        let r = &key.relationship;
        let of = |referencing: bool| {
            dependencies
                .iter()
                .filter(move |d| {
                    d.referencing == referencing
                        && d.foreign_key == r.foreign_key
                        && d.table
                            == if referencing {
                                key.table
                            } else {
                                key.referenced_table
                            }
                })
                .collect::<Vec<_>>()
        };
        let (from_views, to_views) = (of(true), of(false));
        for from in &from_views {
            for columns in cartesian(&from.view_columns) {
                all.push(Relationship {
                    schema: from.view_schema.clone(),
                    relation: from.view_name.clone(),
                    columns,
                    ..r.clone()
                });
            }
        }
        for to in &to_views {
            for referenced_columns in cartesian(&to.view_columns) {
                all.push(Relationship {
                    referenced_schema: to.view_schema.clone(),
                    referenced_relation: to.view_name.clone(),
                    referenced_columns,
                    ..r.clone()
                });
            }
        }
        for from in &from_views {
            for columns in cartesian(&from.view_columns) {
                for to in &to_views {
                    for referenced_columns in cartesian(&to.view_columns) {
                        all.push(Relationship {
                            schema: from.view_schema.clone(),
                            relation: from.view_name.clone(),
                            columns: columns.clone(),
                            referenced_schema: to.view_schema.clone(),
                            referenced_relation: to.view_name.clone(),
                            referenced_columns,
                            ..r.clone()
                        });
                    }
                }
            }
        }
    }
    let json = |columns: &[String]| serde_json::to_string(columns).unwrap_or_default();
    all.sort_by(|a, b| {
        compare(&a.foreign_key, &b.foreign_key)
            .then_with(|| compare(&a.referenced_relation, &b.referenced_relation))
            .then_with(|| compare(&json(&a.referenced_columns), &json(&b.referenced_columns)))
    });
    Ok(all)
}

/// Every combination taking one entry of each list, in order.
fn cartesian(lists: &[Vec<String>]) -> Vec<Vec<String>> {
    lists
        .iter()
        .fold(vec![Vec::new()], |combinations, entries| {
            combinations
                .iter()
                .flat_map(|combination| {
                    entries.iter().map(move |entry| {
                        let mut next = combination.clone();
                        next.push(entry.clone());
                        next
                    })
                })
                .collect()
        })
}

/// For every view (and materialized view) of the schemas, the foreign keys whose columns it shows
/// completely, following columns through views of views.
async fn key_dependencies(
    client: &Client,
    schemas: &[String],
    keys: &[ForeignKey],
) -> Result<Vec<KeyDependency>, CliError> {
    // view oid -> (schema, name, [(view column, origin table, origin column)])
    let mut views: Vec<(u32, String, String, Vec<Origin>)> = Vec::new();
    for row in client.query(VIEW_QUERIES, &[&schemas]).await? {
        let tree: String = row.get(3);
        views.push((row.get(0), row.get(1), row.get(2), target_origins(&tree)));
    }
    let tables: Vec<u32> = keys
        .iter()
        .flat_map(|k| [k.table, k.referenced_table])
        .collect();
    let mut attribute_names: HashMap<(u32, i16), String> = HashMap::new();
    for row in client.query(ATTRIBUTES, &[&schemas, &tables]).await? {
        attribute_names.insert((row.get(0), row.get(1)), row.get(2));
    }
    let origins: HashMap<(u32, i16), (u32, i16)> = views
        .iter()
        .flat_map(|(id, _, _, entries)| {
            entries
                .iter()
                .map(move |(col, tbl, tcol)| ((*id, *col), (*tbl, *tcol)))
        })
        .collect();

    let mut dependencies = Vec::new();
    for (view, view_schema, view_name, entries) in &views {
        // (origin table, origin column) -> view columns showing it, at any depth of views.
        let mut shown: HashMap<(u32, i16), BTreeSet<i16>> = HashMap::new();
        for (column, table, table_column) in entries.iter().filter(|(_, table, _)| *table != 0) {
            let mut at = (*table, *table_column);
            let mut seen = vec![*view];
            loop {
                shown.entry(at).or_default().insert(*column);
                match origins.get(&at) {
                    Some(next) if !seen.contains(&at.0) => {
                        seen.push(at.0);
                        at = *next;
                    }
                    _ => break,
                }
            }
        }
        let names_of = |key: &(u32, i16)| -> Option<Vec<String>> {
            let columns = shown.get(key)?;
            Some(
                columns
                    .iter()
                    .filter_map(|c| attribute_names.get(&(*view, *c)).cloned())
                    .collect(),
            )
        };
        for key in keys {
            for referencing in [true, false] {
                let (table, numbers) = if referencing {
                    (key.table, &key.keys)
                } else {
                    (key.referenced_table, &key.referenced_keys)
                };
                let view_columns: Option<Vec<Vec<String>>> =
                    numbers.iter().map(|n| names_of(&(table, *n))).collect();
                if let Some(view_columns) = view_columns {
                    dependencies.push(KeyDependency {
                        view_schema: view_schema.clone(),
                        view_name: view_name.clone(),
                        foreign_key: key.relationship.foreign_key.clone(),
                        view_columns,
                        referencing,
                        table,
                    });
                }
            }
        }
    }
    Ok(dependencies)
}

/// A view column (`resno`) and the table column it shows (`resorigtbl`, `resorigcol`).
type Origin = (i16, u32, i16);

/// The top-level query's target list of a view's rewrite rule (`pg_rewrite.ev_action` as text):
/// for each output column, the table column it shows (`resorigtbl`, `resorigcol`), if any.
fn target_origins(tree: &str) -> Vec<Origin> {
    // Tokens are separated by spaces and parentheses/braces; a backslash escapes the next
    // character (names with braces or spaces).
    let bytes: Vec<char> = tree.chars().collect();
    let mut depth = 0usize;
    let mut i = 0;
    let mut in_targets = false;
    let mut targets_depth = 0;
    let mut entries = Vec::new();
    let mut current: Option<Origin> = None;
    let mut pending_field: Option<String> = None;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            '{' | '(' => {
                depth += 1;
                i += 1;
                if c == '{' && in_targets && depth == targets_depth + 1 {
                    current = Some((0, 0, 0));
                }
            }
            '}' | ')' => {
                if c == '}' && in_targets && depth == targets_depth + 1 {
                    if let Some(entry) = current.take() {
                        entries.push(entry);
                    }
                }
                if c == ')' && in_targets && depth == targets_depth {
                    return entries;
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            ' ' | '\n' => i += 1,
            _ => {
                let mut token = String::new();
                while i < bytes.len() && !matches!(bytes[i], ' ' | '{' | '}' | '(' | ')' | '\n') {
                    if bytes[i] == '\\' && i + 1 < bytes.len() {
                        i += 1;
                    }
                    token.push(bytes[i]);
                    i += 1;
                }
                if let Some(field) = pending_field.take() {
                    if let Some(entry) = current.as_mut() {
                        if depth == targets_depth + 1 {
                            match field.as_str() {
                                ":resno" => entry.0 = token.parse().unwrap_or(0),
                                ":resorigtbl" => entry.1 = token.parse().unwrap_or(0),
                                ":resorigcol" => entry.2 = token.parse().unwrap_or(0),
                                _ => {}
                            }
                        }
                    }
                }
                if token.starts_with(':') {
                    // The first query node sits at depth 2: `({QUERY ... :targetList (...`.
                    if token == ":targetList" && depth == 2 && !in_targets {
                        in_targets = true;
                        targets_depth = depth + 1;
                    } else if in_targets {
                        pending_field = Some(token);
                    }
                }
            }
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::{cartesian, target_origins};

    #[test]
    fn reads_the_top_level_target_list_only() {
        let tree = r"({QUERY :commandType 1 :rtable ({RTE :subquery {QUERY :targetList ({TARGETENTRY :resno 9 :resorigtbl 1 :resorigcol 1})}}) :targetList ({TARGETENTRY :expr {VAR :varno 1 :varattno 1} :resno 1 :resname id :resorigtbl 16390 :resorigcol 1 :resjunk false} {TARGETENTRY :expr {FUNCEXPR :funcid 870} :resno 2 :resname lower\ \{title\} :resorigtbl 0 :resorigcol 0 :resjunk false}) :override 0})";
        assert_eq!(target_origins(tree), vec![(1, 16390, 1), (2, 0, 0)]);
    }

    #[test]
    fn cartesian_takes_one_of_each_in_order() {
        let lists = vec![
            vec!["a".to_string(), "b".to_string()],
            vec!["x".to_string()],
        ];
        assert_eq!(
            cartesian(&lists),
            vec![
                vec!["a".to_string(), "x".to_string()],
                vec!["b".to_string(), "x".to_string()]
            ]
        );
    }
}
