//! Loading the schema cache from `pg_catalog`: four queries, pipelined on one connection inside one
//! read-only REPEATABLE READ transaction, so that they all see the same snapshot of the catalogs
//! (a DDL committing half-way through cannot give tables from before it and columns from after).
//!
//! The exposed schema names are the one bound parameter. Everything in those schemas is loaded,
//! whatever the connecting role may use: privileges are checked by Postgres on each request, under
//! the request's role, and the cache is shared by all roles.

use std::collections::HashMap;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, IsolationLevel, Row};

use super::config::ExposedSchemas;
use super::model::{
    Column, ForeignKey, Function, FunctionArg, Identity, QualifiedName, RelationKind, ReturnKind,
    SchemaCache, Table, Volatility,
};
use super::view_defaults;
use super::SchemaError;

/// An empty `search_path` makes `format_type` and `pg_get_expr` qualify every name outside
/// `pg_catalog` (`public.mood`, `nextval('public.films_id_seq'::regclass)`), so the cache holds
/// names that mean the same thing whatever a request's `search_path` is. The statement timeout
/// bounds a load that waits on a lock held by an unfinished DDL transaction; the next
/// notification (or the retry) loads again.
const SESSION_SETUP: &str = "SET LOCAL search_path = ''; SET LOCAL statement_timeout = '30s'";

/// Tables, views, materialized views and foreign tables; partitions are reached through their
/// parent. `pg_relation_is_updatable` gives views' (and foreign tables') insert/update/delete
/// bits: 8, 4 and 16.
const RELATIONS: &str = "
SELECT c.oid,
       n.nspname::text AS schema,
       c.relname::text AS name,
       c.relkind::text AS kind,
       d.description,
       CASE WHEN c.relkind IN ('v', 'f')
            THEN pg_catalog.pg_relation_is_updatable(c.oid::pg_catalog.regclass, true)
            WHEN c.relkind IN ('r', 'p') THEN 28
            ELSE 0
       END AS updatable_mask
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_description d
       ON d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.objsubid = 0
WHERE n.nspname = ANY($1::text[])
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND NOT c.relispartition
ORDER BY c.oid";

/// Each domain's underlying non-domain type (domains may be stacked).
const DOMAIN_BASES: &str = "
domains(oid, base, depth) AS (
    SELECT t.oid, t.typbasetype, 1 FROM pg_catalog.pg_type t WHERE t.typtype = 'd'
    UNION ALL
    SELECT d.oid, t.typbasetype, d.depth + 1
    FROM domains d JOIN pg_catalog.pg_type t ON t.oid = d.base
    WHERE t.typtype = 'd'
),
domain_base AS (
    SELECT DISTINCT ON (oid) oid, base FROM domains ORDER BY oid, depth DESC
)";

/// Columns of the relations above. The default of an identity or generated column is not a
/// default (the latter's `adbin` is its generation expression), so it is left out.
fn columns_query() -> String {
    format!(
        "
WITH RECURSIVE {DOMAIN_BASES}
SELECT a.attrelid AS relid,
       a.attname::text AS name,
       a.attnum AS position,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type_name,
       a.atttypid AS type_oid,
       bt.oid AS base_type_oid,
       pg_catalog.format_type(bt.oid, NULL) AS base_type,
       et.oid AS element_type_oid,
       CASE WHEN et.oid IS NOT NULL THEN pg_catalog.format_type(et.oid, NULL) END AS element_type,
       ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e
             WHERE e.enumtypid = COALESCE(et.oid, bt.oid)
             ORDER BY e.enumsortorder) AS enum_values,
       CASE WHEN bt.oid IN ('pg_catalog.varchar'::pg_catalog.regtype,
                            'pg_catalog.bpchar'::pg_catalog.regtype)
                 AND GREATEST(a.atttypmod, t.typtypmod) > 4
            THEN GREATEST(a.atttypmod, t.typtypmod) - 4
       END AS max_length,
       NOT (a.attnotnull OR (t.typtype = 'd' AND t.typnotnull)) AS nullable,
       CASE WHEN a.attidentity = '' AND a.attgenerated = ''
            THEN COALESCE(pg_catalog.pg_get_expr(ad.adbin, ad.adrelid),
                          pg_catalog.pg_get_expr(t.typdefaultbin, 0))
       END AS default_expr,
       a.attidentity::text AS identity,
       a.attgenerated::text AS generated,
       d.description
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN domain_base db ON db.oid = t.oid
JOIN pg_catalog.pg_type bt ON bt.oid = COALESCE(db.base, t.oid)
LEFT JOIN pg_catalog.pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_catalog.pg_description d
       ON d.objoid = a.attrelid AND d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.objsubid = a.attnum
WHERE n.nspname = ANY($1::text[])
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND NOT c.relispartition
  AND a.attnum > 0
  AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum"
    )
}

/// Primary keys, unique constraints and foreign keys of the relations above, columns in key
/// order. Constraints cloned onto partitions (`conparentid <> 0`) are left out.
const CONSTRAINTS: &str = "
SELECT con.conrelid AS relid,
       con.conname::text AS name,
       con.contype::text AS kind,
       ARRAY(SELECT a.attname::text
             FROM pg_catalog.unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord) AS columns,
       rn.nspname::text AS ref_schema,
       r.relname::text AS ref_name,
       ARRAY(SELECT a.attname::text
             FROM pg_catalog.unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.ord) AS ref_columns
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class r ON r.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
WHERE n.nspname = ANY($1::text[])
  AND con.contype IN ('p', 'u', 'f')
  AND con.conparentid = 0
ORDER BY con.conrelid, con.conname";

/// For each column of a view (or materialized view) in the exposed schemas, the relation it reads a
/// column of the same name from: the view's rewrite rule depends on exactly those base columns
/// (`pg_depend`). A column renamed in the view, or whose name several base relations offer (a
/// join), is not traced (`view_lineage` drops the latter).
const VIEW_COLUMN_SOURCES: &str = "
SELECT v.oid AS view_oid, va.attname::text AS column_name, d.refobjid AS base_oid
FROM pg_catalog.pg_class v
JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace
JOIN pg_catalog.pg_rewrite r ON r.ev_class = v.oid AND r.rulename = '_RETURN'
JOIN pg_catalog.pg_depend d
  ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
 AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
 AND d.refobjsubid > 0 AND d.refobjid <> v.oid
JOIN pg_catalog.pg_attribute ba ON ba.attrelid = d.refobjid AND ba.attnum = d.refobjsubid
JOIN pg_catalog.pg_attribute va
  ON va.attrelid = v.oid AND va.attname = ba.attname AND va.attnum > 0 AND NOT va.attisdropped
WHERE n.nspname = ANY($1::text[]) AND v.relkind IN ('v', 'm')
ORDER BY v.oid, va.attname, d.refobjid";

/// Plain functions (not procedures, aggregates or window functions; not trigger functions). The
/// argument arrays cover all arguments, in and out; `load` splits them by mode.
fn functions_query() -> String {
    format!(
        "
WITH RECURSIVE {DOMAIN_BASES}
SELECT p.oid,
       n.nspname::text AS schema,
       p.proname::text AS name,
       d.description,
       COALESCE(p.proallargtypes, p.proargtypes::pg_catalog.oid[]) AS arg_types,
       ARRAY(SELECT pg_catalog.format_type(u.t, NULL)
             FROM pg_catalog.unnest(COALESCE(p.proallargtypes, p.proargtypes::pg_catalog.oid[]))
                  WITH ORDINALITY AS u(t, i)
             ORDER BY u.i) AS arg_type_names,
       COALESCE(p.proargmodes::text[], '{{}}') AS arg_modes,
       COALESCE(p.proargnames, '{{}}') AS arg_names,
       p.pronargdefaults AS arg_defaults,
       p.prorettype AS return_type_oid,
       pg_catalog.format_type(p.prorettype, NULL) AS return_type,
       p.proretset AS returns_set,
       (NOT p.proretset OR p.prorows = 1) AS single_row,
       rt.typtype::text AS return_typtype,
       rn.nspname::text AS return_relation_schema,
       rc.relname::text AS return_relation_name,
       p.provolatile::text AS volatility
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
LEFT JOIN domain_base db ON db.oid = p.prorettype
JOIN pg_catalog.pg_type rt ON rt.oid = COALESCE(db.base, p.prorettype)
LEFT JOIN pg_catalog.pg_class rc ON rc.oid = rt.typrelid AND rt.typtype = 'c'
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
LEFT JOIN pg_catalog.pg_description d
       ON d.objoid = p.oid AND d.classoid = 'pg_catalog.pg_proc'::pg_catalog.regclass
      AND d.objsubid = 0
WHERE n.nspname = ANY($1::text[])
  AND p.prokind = 'f'
  AND p.prorettype NOT IN ('pg_catalog.trigger'::pg_catalog.regtype,
                           'pg_catalog.event_trigger'::pg_catalog.regtype)
ORDER BY p.oid"
    )
}

/// `void`'s oid, fixed in `pg_type.dat`.
const VOID_OID: u32 = 2278;

/// Loads the whole cache. Needs `&mut` for the transaction; any failure leaves the caller's current
/// cache as it was.
pub(crate) async fn load(
    client: &mut Client,
    exposed: &ExposedSchemas,
) -> Result<SchemaCache, SchemaError> {
    let schemas = exposed.names();
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(SchemaError::Load)?;
    tx.batch_execute(SESSION_SETUP)
        .await
        .map_err(SchemaError::Load)?;
    let (columns_sql, functions_sql) = (columns_query(), functions_query());
    // Concurrent requests on one connection are pipelined by tokio-postgres: the four queries cost
    // about two round trips (prepare, execute), not eight.
    let params: [&(dyn ToSql + Sync); 1] = [&schemas];
    let (
        relations,
        columns,
        constraints,
        functions,
        role_settings,
        view_sources,
        aggregates,
        view_rules,
    ) = tokio::try_join!(
        tx.query(RELATIONS, &params),
        tx.query(columns_sql.as_str(), &params),
        tx.query(CONSTRAINTS, &params),
        tx.query(functions_sql.as_str(), &params),
        tx.query(ROLE_STATEMENT_TIMEOUTS, &[]),
        tx.query(VIEW_COLUMN_SOURCES, &params),
        tx.query(AGGREGATES_SETTING, &[]),
        tx.query(view_defaults::VIEW_RULES, &[]),
    )
    .map_err(SchemaError::Load)?;
    let mut tables =
        assemble_tables(&relations, &columns, &constraints).map_err(SchemaError::Load)?;
    // View columns without a default of their own take the one an INSERT through the view applies.
    view_defaults::inherit(&tx, &mut tables, &view_rules)
        .await
        .map_err(SchemaError::Load)?;
    tx.commit().await.map_err(SchemaError::Load)?;

    let lineage = view_lineage(&view_sources).map_err(SchemaError::Load)?;
    inherit_keys(&mut tables, &lineage);
    let functions = functions
        .iter()
        .map(decode_function)
        .collect::<Result<Vec<_>, _>>()
        .map_err(SchemaError::Load)?;
    let timeouts = role_settings
        .iter()
        .map(|row| Ok((row.try_get("role")?, row.try_get("timeout")?)))
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(SchemaError::Load)?;
    let aggregates_enabled = match aggregates.first() {
        Some(row) => row
            .try_get::<_, Option<String>>("value")
            .map_err(SchemaError::Load)?
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true")),
        None => false,
    };
    Ok(SchemaCache::new(exposed, tables, functions)
        .with_statement_timeouts(timeouts)
        .with_aggregates_enabled(aggregates_enabled))
}

/// PostgREST's in-database `db-aggregates-enabled`: `ALTER ROLE <the role we log in as>
/// [IN DATABASE …] SET pgrst.db_aggregates_enabled = 'true'`; this database's setting wins.
const AGGREGATES_SETTING: &str = "
SELECT substr(c.setting, length('pgrst.db_aggregates_enabled=') + 1) AS value
FROM pg_catalog.pg_db_role_setting s
CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) AS c(setting)
WHERE s.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = session_user)
  AND s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database
                            WHERE datname = pg_catalog.current_database()))
  AND c.setting LIKE 'pgrst.db\\_aggregates\\_enabled=%'
ORDER BY s.setdatabase DESC
LIMIT 1";

/// Each role's `statement_timeout` from `ALTER ROLE … [IN DATABASE …] SET`; a setting for this
/// database wins over one for all databases, as at login.
const ROLE_STATEMENT_TIMEOUTS: &str = "
    SELECT DISTINCT ON (r.rolname) r.rolname::text AS role, substr(c.setting, 19) AS timeout
    FROM pg_catalog.pg_db_role_setting s
    JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
    CROSS JOIN LATERAL unnest(s.setconfig) AS c(setting)
    WHERE s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database
                                WHERE datname = pg_catalog.current_database()))
      AND c.setting LIKE 'statement\\_timeout=%'
    ORDER BY r.rolname, s.setdatabase DESC";

fn assemble_tables(
    relations: &[Row],
    columns: &[Row],
    constraints: &[Row],
) -> Result<Vec<Table>, tokio_postgres::Error> {
    let mut tables: Vec<Table> = Vec::with_capacity(relations.len());
    let mut by_oid: HashMap<u32, usize> = HashMap::with_capacity(relations.len());
    for row in relations {
        let mask: i32 = row.try_get("updatable_mask")?;
        let kind: String = row.try_get("kind")?;
        let kind = match kind.as_str() {
            "r" => RelationKind::Table,
            "p" => RelationKind::PartitionedTable,
            "v" => RelationKind::View,
            "m" => RelationKind::MaterializedView,
            _ => RelationKind::ForeignTable,
        };
        let oid: u32 = row.try_get("oid")?;
        by_oid.insert(oid, tables.len());
        tables.push(Table {
            oid,
            schema: row.try_get("schema")?,
            name: row.try_get("name")?,
            kind,
            description: row.try_get("description")?,
            insertable: mask & 8 != 0,
            updatable: mask & 4 != 0,
            deletable: mask & 16 != 0,
            columns: Vec::new(),
            primary_key: Vec::new(),
            unique_keys: Vec::new(),
            foreign_keys: Vec::new(),
        });
    }

    // A relation created after the RELATIONS query ran cannot appear here (one snapshot), so a row
    // without its relation is skipped rather than trusted.
    for row in columns {
        let relid: u32 = row.try_get("relid")?;
        let Some(&index) = by_oid.get(&relid) else {
            continue;
        };
        tables[index].columns.push(decode_column(row)?);
    }

    for row in constraints {
        let relid: u32 = row.try_get("relid")?;
        let Some(&index) = by_oid.get(&relid) else {
            continue;
        };
        let kind: String = row.try_get("kind")?;
        let name: String = row.try_get("name")?;
        let columns: Vec<String> = row.try_get("columns")?;
        let table = &mut tables[index];
        match kind.as_str() {
            "p" => table.primary_key = columns,
            "u" => table.unique_keys.push(columns),
            _ => {
                let (Some(schema), Some(referenced)) = (
                    row.try_get::<_, Option<String>>("ref_schema")?,
                    row.try_get::<_, Option<String>>("ref_name")?,
                ) else {
                    continue;
                };
                table.foreign_keys.push(ForeignKey {
                    constraint: name,
                    table: QualifiedName::new(&table.schema, &table.name),
                    columns,
                    referenced_table: QualifiedName::new(schema, referenced),
                    referenced_columns: row.try_get("ref_columns")?,
                });
            }
        }
    }
    Ok(tables)
}

/// View oid → (column name → the base relation's oid), for columns traced to exactly one base.
type Lineage = HashMap<u32, HashMap<String, u32>>;

fn view_lineage(rows: &[Row]) -> Result<Lineage, tokio_postgres::Error> {
    let mut sources: HashMap<u32, HashMap<String, Vec<u32>>> = HashMap::new();
    for row in rows {
        let view: u32 = row.try_get("view_oid")?;
        let column: String = row.try_get("column_name")?;
        let base: u32 = row.try_get("base_oid")?;
        sources
            .entry(view)
            .or_default()
            .entry(column)
            .or_default()
            .push(base);
    }
    Ok(sources
        .into_iter()
        .map(|(view, columns)| {
            let traced = columns
                .into_iter()
                .filter_map(|(column, bases)| match bases.as_slice() {
                    [base] => Some((column, *base)),
                    _ => None,
                })
                .collect();
            (view, traced)
        })
        .collect())
}

/// Gives views the keys of the table they show, as PostgREST does, so that they embed and are
/// embedded like it: the base's primary key when the view shows all of its columns, and each
/// foreign key whose columns the view shows (from the view, and from every relation whose key
/// references the base, to the view when it shows the referenced columns). Views of views are
/// traced one level.
fn inherit_keys(tables: &mut [Table], lineage: &Lineage) {
    let index: HashMap<u32, usize> = tables.iter().enumerate().map(|(i, t)| (t.oid, i)).collect();
    let shows = |view: &Table, base_oid: u32, columns: &[String]| {
        let traced = lineage.get(&view.oid);
        !columns.is_empty()
            && columns
                .iter()
                .all(|column| traced.and_then(|t| t.get(column)) == Some(&base_oid))
    };
    let views: Vec<usize> = (0..tables.len())
        .filter(|&i| tables[i].kind.is_view())
        .collect();
    let mut additions: Vec<(usize, ForeignKey)> = Vec::new();
    let mut primary_keys: Vec<(usize, Vec<String>)> = Vec::new();
    for &v in &views {
        let view = &tables[v];
        let bases: std::collections::BTreeSet<u32> = lineage
            .get(&view.oid)
            .map(|traced| traced.values().copied().collect())
            .unwrap_or_default();
        for base_oid in bases {
            let Some(&b) = index.get(&base_oid) else {
                continue;
            };
            let base = &tables[b];
            if view.primary_key.is_empty() && shows(view, base_oid, &base.primary_key) {
                primary_keys.push((v, base.primary_key.clone()));
            }
            // The view's own keys, out of the base's.
            for fk in &base.foreign_keys {
                if shows(view, base_oid, &fk.columns) {
                    additions.push((
                        v,
                        ForeignKey {
                            table: view.qualified_name(),
                            ..fk.clone()
                        },
                    ));
                }
            }
        }
    }
    // Keys into views: any key (of a table, or one a view just inherited) that references a
    // view's base, repeated to reference the view when it shows the referenced columns.
    let mut into_views: Vec<(usize, ForeignKey)> = Vec::new();
    let all_keys = tables
        .iter()
        .enumerate()
        .flat_map(|(i, t)| t.foreign_keys.iter().map(move |fk| (i, fk.clone())))
        .chain(additions.iter().cloned());
    for (holder, fk) in all_keys {
        for &v in &views {
            let view = &tables[v];
            let Some(base) = lineage
                .get(&view.oid)
                .and_then(|traced| fk.referenced_columns.first().and_then(|c| traced.get(c)))
                .and_then(|oid| index.get(oid))
                .map(|&b| &tables[b])
            else {
                continue;
            };
            if base.qualified_name() == fk.referenced_table
                && shows(view, base.oid, &fk.referenced_columns)
            {
                into_views.push((
                    holder,
                    ForeignKey {
                        referenced_table: view.qualified_name(),
                        ..fk.clone()
                    },
                ));
            }
        }
    }
    for (v, key) in primary_keys {
        tables[v].primary_key = key;
    }
    for (holder, fk) in additions.into_iter().chain(into_views) {
        tables[holder].foreign_keys.push(fk);
    }
}

fn decode_column(row: &Row) -> Result<Column, tokio_postgres::Error> {
    let identity: String = row.try_get("identity")?;
    let generated: String = row.try_get("generated")?;
    Ok(Column {
        name: row.try_get("name")?,
        position: row.try_get("position")?,
        type_name: row.try_get("type_name")?,
        type_oid: row.try_get("type_oid")?,
        base_type: row.try_get("base_type")?,
        base_type_oid: row.try_get("base_type_oid")?,
        element_type: row.try_get("element_type")?,
        element_type_oid: row.try_get("element_type_oid")?,
        enum_values: row.try_get("enum_values")?,
        max_length: row.try_get("max_length")?,
        nullable: row.try_get("nullable")?,
        default: row.try_get("default_expr")?,
        identity: match identity.as_str() {
            "a" => Some(Identity::Always),
            "d" => Some(Identity::ByDefault),
            _ => None,
        },
        generated: !generated.is_empty(),
        description: row.try_get("description")?,
    })
}

fn decode_function(row: &Row) -> Result<Function, tokio_postgres::Error> {
    let types: Vec<u32> = row.try_get("arg_types")?;
    let type_names: Vec<String> = row.try_get("arg_type_names")?;
    let modes: Vec<String> = row.try_get("arg_modes")?;
    let names: Vec<String> = row.try_get("arg_names")?;
    let defaults: i16 = row.try_get("arg_defaults")?;

    let mut args = Vec::new();
    let mut out_args = Vec::new();
    for (i, (&type_oid, type_name)) in types.iter().zip(type_names).enumerate() {
        // No modes: all arguments are IN.
        let mode = modes.get(i).map_or("i", String::as_str);
        let arg = FunctionArg {
            name: names.get(i).filter(|name| !name.is_empty()).cloned(),
            type_name,
            type_oid,
            has_default: false,
            variadic: mode == "v",
        };
        match mode {
            "o" | "t" => out_args.push(arg),
            "b" => {
                out_args.push(arg.clone());
                args.push(arg);
            }
            _ => args.push(arg),
        }
    }
    // The defaults belong to the last `pronargdefaults` input arguments.
    let first_default = args
        .len()
        .saturating_sub(usize::try_from(defaults).unwrap_or(0));
    for arg in &mut args[first_default..] {
        arg.has_default = true;
    }

    let return_type_oid: u32 = row.try_get("return_type_oid")?;
    let typtype: String = row.try_get("return_typtype")?;
    let relation = match (
        row.try_get::<_, Option<String>>("return_relation_schema")?,
        row.try_get::<_, Option<String>>("return_relation_name")?,
    ) {
        (Some(schema), Some(name)) if typtype == "c" => Some(QualifiedName::new(schema, name)),
        _ => None,
    };
    let returns = if return_type_oid == VOID_OID {
        ReturnKind::Void
    } else if !out_args.is_empty() {
        // PostgREST's rule: any OUT/INOUT/TABLE argument makes the result a row, even a single
        // OUT argument (whose Postgres return type is that argument's type).
        ReturnKind::OutArgs
    } else if let Some(relation) = relation {
        ReturnKind::Composite { relation }
    } else {
        ReturnKind::Scalar
    };
    let volatility: String = row.try_get("volatility")?;
    Ok(Function {
        oid: row.try_get("oid")?,
        schema: row.try_get("schema")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        args,
        out_args,
        return_type: row.try_get("return_type")?,
        return_type_oid,
        returns_set: row.try_get("returns_set")?,
        single_row: row.try_get("single_row")?,
        returns,
        volatility: match volatility.as_str() {
            "i" => Volatility::Immutable,
            "s" => Volatility::Stable,
            _ => Volatility::Volatile,
        },
    })
}
