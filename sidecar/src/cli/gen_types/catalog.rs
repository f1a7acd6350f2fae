//! What `gen types` reads from pg_catalog, with the facts the Supabase CLI's generator
//! (postgres-meta) reads: relations, columns, foreign keys (including the ones PostgREST derives
//! through views), functions and types. Every list comes back in the generator's order.

use std::collections::HashMap;

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

    catalog.relationships = super::relationships::read(client, schemas).await?;

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
