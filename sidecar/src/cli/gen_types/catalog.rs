//! What `gen types` reads from pg_catalog, with the facts the Supabase CLI's generator
//! (postgres-meta) reads: relations, columns, foreign keys (including the ones PostgREST derives
//! through views), functions and types. Every list comes back in the generator's order.

use std::collections::{BTreeSet, HashMap};

use tokio_postgres::Client;

use super::collate::compare;
use crate::cli::CliError;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Table,
    ForeignTable,
    View,
    MaterializedView,
}

#[derive(Debug, Clone)]
pub(crate) struct Relation {
    pub id: u32,
    pub schema: String,
    pub name: String,
    pub kind: Kind,
    /// Views: INSERT accepted (auto-updatable, or an INSTEAD OF trigger or rule).
    pub insert_enabled: bool,
    pub update_enabled: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub table_id: u32,
    pub name: String,
    /// The type's name (a domain's base type), `_name` for arrays.
    pub format: String,
    pub type_schema: String,
    pub nullable: bool,
    pub identity: bool,
    pub identity_always: bool,
    pub generated: bool,
    pub has_default: bool,
    pub updatable: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Relationship {
    pub foreign_key: String,
    pub schema: String,
    pub relation: String,
    pub columns: Vec<String>,
    pub one_to_one: bool,
    pub referenced_schema: String,
    pub referenced_relation: String,
    pub referenced_columns: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ArgMode {
    In,
    Out,
    InOut,
    Variadic,
    Table,
}

#[derive(Debug, Clone)]
pub(crate) struct Arg {
    pub mode: ArgMode,
    pub name: String,
    pub type_id: u32,
    pub has_default: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Function {
    pub schema: String,
    pub name: String,
    /// Sorted by name, as the generator addresses them.
    pub args: Vec<Arg>,
    pub argument_types: String,
    pub return_type_id: u32,
    pub return_type: String,
    pub return_type_relation_id: Option<u32>,
    pub returns_set: bool,
    pub rows: Option<f32>,
}

#[derive(Debug, Clone)]
pub(crate) struct PgType {
    pub id: u32,
    pub name: String,
    pub schema: String,
    pub enums: Vec<String>,
    /// A composite type's attributes (name, type), in order.
    pub attributes: Vec<(String, u32)>,
    pub relation_id: Option<u32>,
    /// `format_type`: the name, schema-qualified when the schema is not on the search path.
    pub format: String,
}

#[derive(Debug, Default)]
pub(crate) struct Catalog {
    pub schemas: Vec<String>,
    pub relations: Vec<Relation>,
    pub columns: Vec<Column>,
    pub relationships: Vec<Relationship>,
    pub functions: Vec<Function>,
    pub types: Vec<PgType>,
}

const SCHEMAS: &str = "
select n.nspname::text
from pg_namespace n
where n.nspname = any($1)
  and not starts_with(n.nspname, 'pg_')
  and (pg_has_role(n.nspowner, 'USAGE') or has_schema_privilege(n.oid, 'CREATE, USAGE'))";

const RELATIONS: &str = "
select c.oid, n.nspname::text, c.relname::text, c.relkind::text,
       coalesce((pg_relation_is_updatable(c.oid, true) & 8) = 8, false),
       coalesce((pg_relation_is_updatable(c.oid, true) & 4) = 4, false)
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any($1)
  and (c.relkind in ('v', 'm', 'f')
       or c.relkind in ('r', 'p') and not pg_is_other_temp_schema(n.oid) and (
            pg_has_role(c.relowner, 'USAGE')
            or has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
            or has_any_column_privilege(c.oid, 'SELECT, INSERT, UPDATE, REFERENCES')))";

// A view's column is writable when Postgres can update it, or when an INSTEAD OF trigger
// (tgtype: 64 INSTEAD, 4 INSERT, 16 UPDATE) or an unconditional INSTEAD rule rewrites the view.
const COLUMNS: &str = "
select c.oid, a.attname::text,
       coalesce(bt.typname, t.typname)::text,
       coalesce(nbt.nspname, nt.nspname)::text,
       not (a.attnotnull or t.typtype = 'd' and t.typnotnull),
       a.attidentity in ('a', 'd'),
       a.attidentity = 'a',
       a.attgenerated <> '',
       a.atthasdef,
       c.relkind in ('r', 'p') or c.relkind in ('v', 'f') and (
         pg_column_is_updatable(c.oid, a.attnum, false)
         or exists (select 1 from pg_trigger tg
                    where tg.tgrelid = c.oid and tg.tgtype & 64 <> 0 and tg.tgtype & 20 <> 0
                      and not tg.tgisinternal)
         or exists (select 1 from pg_rewrite rw
                    where rw.ev_class = c.oid and rw.is_instead and rw.ev_type in ('2', '3')
                      and rw.ev_qual::text = '<>'))
from pg_attribute a
join pg_class c on c.oid = a.attrelid
join pg_namespace nc on nc.oid = c.relnamespace
join pg_type t on t.oid = a.atttypid
join pg_namespace nt on nt.oid = t.typnamespace
left join (pg_type bt join pg_namespace nbt on nbt.oid = bt.typnamespace)
  on t.typtype = 'd' and t.typbasetype = bt.oid
where nc.nspname = any($1)
  and not pg_is_other_temp_schema(nc.oid)
  and a.attnum > 0 and not a.attisdropped
  and c.relkind in ('r', 'v', 'm', 'f', 'p')
  and (pg_has_role(c.relowner, 'USAGE')
       or has_column_privilege(c.oid, a.attnum, 'SELECT, INSERT, UPDATE, REFERENCES'))";

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

// Defaults belong to the last `pronargs - pronargdefaults` input positions, counted over all
// arguments as postgres-meta counts them.
const FUNCTIONS: &str = "
select n.nspname::text, p.proname::text,
       coalesce(p.proargmodes::text[],
                array_fill('i'::text, array[cardinality(coalesce(p.proallargtypes, p.proargtypes::oid[]))])),
       coalesce(p.proargnames,
                array_fill(''::text, array[cardinality(coalesce(p.proallargtypes, p.proargtypes::oid[]))])),
       coalesce(p.proallargtypes, p.proargtypes::oid[]),
       p.pronargs::int4, p.pronargdefaults::int4,
       pg_get_function_arguments(p.oid), pg_get_function_identity_arguments(p.oid),
       p.prorettype, pg_get_function_result(p.oid), nullif(rt.typrelid, 0), p.proretset,
       case when p.proretset then nullif(p.prorows, 0) end, p.oid
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
left join pg_type rt on rt.oid = p.prorettype
where n.nspname = any($1) and p.prokind = 'f'";

// Every type, with the row types of tables, views and composite types (not of indexes or
// sequences).
const TYPES: &str = "
select t.oid, t.typname::text, n.nspname::text,
       array(select e.enumlabel::text from pg_enum e where e.enumtypid = t.oid order by e.enumsortorder),
       array(select a.attname::text from pg_class c join pg_attribute a on a.attrelid = c.oid
             where c.oid = t.typrelid and c.relkind = 'c' and not a.attisdropped and a.attnum > 0
             order by a.attnum),
       array(select a.atttypid from pg_class c join pg_attribute a on a.attrelid = c.oid
             where c.oid = t.typrelid and c.relkind = 'c' and not a.attisdropped and a.attnum > 0
             order by a.attnum),
       nullif(t.typrelid, 0), format_type(t.oid, null)
from pg_type t
left join pg_namespace n on n.oid = t.typnamespace
where t.typrelid = 0
   or (select c.relkind in ('c', 'r', 'v', 'm', 'p', 'f') from pg_class c where c.oid = t.typrelid)";

pub(crate) async fn read(client: &Client, schemas: &[String]) -> Result<Catalog, CliError> {
    let mut catalog = Catalog::default();
    for row in client.query(SCHEMAS, &[&schemas]).await? {
        catalog.schemas.push(row.get(0));
    }
    catalog.schemas.sort_by(|a, b| compare(a, b));

    for row in client.query(RELATIONS, &[&schemas]).await? {
        let kind = match row.get::<_, String>(3).as_str() {
            "r" | "p" => Kind::Table,
            "f" => Kind::ForeignTable,
            "v" => Kind::View,
            _ => Kind::MaterializedView,
        };
        catalog.relations.push(Relation {
            id: row.get(0),
            schema: row.get(1),
            name: row.get(2),
            kind,
            insert_enabled: row.get(4),
            update_enabled: row.get(5),
        });
    }
    catalog.relations.sort_by(|a, b| {
        compare(&a.schema, &b.schema)
            .then_with(|| compare(&a.name, &b.name))
            .then(a.id.cmp(&b.id))
    });

    let names: HashMap<u32, (String, String)> = catalog
        .relations
        .iter()
        .map(|r| (r.id, (r.schema.clone(), r.name.clone())))
        .collect();
    let mut columns = Vec::new();
    for row in client.query(COLUMNS, &[&schemas]).await? {
        columns.push(Column {
            table_id: row.get(0),
            name: row.get(1),
            format: row.get(2),
            type_schema: row.get(3),
            nullable: row.get(4),
            identity: row.get(5),
            identity_always: row.get(6),
            generated: row.get(7),
            has_default: row.get(8),
            updatable: row.get(9),
        });
    }
    let empty = (String::new(), String::new());
    columns.sort_by(|a, b| {
        let (sa, ta) = names.get(&a.table_id).unwrap_or(&empty);
        let (sb, tb) = names.get(&b.table_id).unwrap_or(&empty);
        compare(sa, sb)
            .then_with(|| compare(ta, tb))
            .then_with(|| compare(&a.name, &b.name))
    });
    catalog.columns = columns;

    catalog.relationships = relationships(client, schemas).await?;

    let mut functions = Vec::new();
    for row in client.query(FUNCTIONS, &[&schemas]).await? {
        let modes: Vec<String> = row.get(2);
        let arg_names: Vec<String> = row.get(3);
        let types: Vec<u32> = row.get(4);
        let nargs: i32 = row.get(5);
        let ndefaults: i32 = row.get(6);
        let return_type: String = row.get(10);
        if return_type == "trigger" || return_type == "event_trigger" {
            continue;
        }
        let mut args: Vec<Arg> = modes
            .iter()
            .zip(arg_names)
            .zip(types)
            .enumerate()
            .map(|(index, ((mode, name), type_id))| Arg {
                mode: match mode.as_str() {
                    "i" => ArgMode::In,
                    "o" => ArgMode::Out,
                    "b" => ArgMode::InOut,
                    "v" => ArgMode::Variadic,
                    _ => ArgMode::Table,
                },
                name,
                type_id,
                has_default: (index as i32) >= nargs - ndefaults && (index as i32) < nargs,
            })
            .collect();
        args.sort_by(|a, b| compare(&a.name, &b.name));
        let identity: String = row.get(8);
        let oid: u32 = row.get(14);
        functions.push((
            identity,
            oid,
            Function {
                schema: row.get(0),
                name: row.get(1),
                args,
                argument_types: row.get(7),
                return_type_id: row.get(9),
                return_type,
                return_type_relation_id: row.get(11),
                returns_set: row.get(12),
                rows: row.get(13),
            },
        ));
    }
    functions.sort_by(|(ia, oa, a), (ib, ob, b)| {
        compare(&a.schema, &b.schema)
            .then_with(|| compare(&a.name, &b.name))
            .then_with(|| compare(ia, ib))
            .then(oa.cmp(ob))
    });
    catalog.functions = functions
        .into_iter()
        .map(|(_, _, function)| function)
        .collect();

    for row in client.query(TYPES, &[]).await? {
        let attribute_names: Vec<String> = row.get(4);
        let attribute_types: Vec<u32> = row.get(5);
        catalog.types.push(PgType {
            id: row.get(0),
            name: row.get(1),
            schema: row.get::<_, Option<String>>(2).unwrap_or_default(),
            enums: row.get(3),
            attributes: attribute_names.into_iter().zip(attribute_types).collect(),
            relation_id: row.get(6),
            format: row.get(7),
        });
    }
    catalog.types.sort_by(|a, b| {
        compare(&a.schema, &b.schema)
            .then_with(|| compare(&a.name, &b.name))
            .then(a.id.cmp(&b.id))
    });
    Ok(catalog)
}

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

async fn relationships(client: &Client, schemas: &[String]) -> Result<Vec<Relationship>, CliError> {
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
pub(crate) fn target_origins(tree: &str) -> Vec<Origin> {
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
