//! The statement behind the OpenAPI document's privilege filter (`crate::schema::privileges`
//! reads its answer): run as the request's role, it asks Postgres what that role holds on the
//! schema, on each of the cached tables and their columns, and on each cached function.
//!
//! Objects are named by the oids the schema cache loaded, bound as one `text[]` each; an object
//! dropped since the cache was loaded simply drops out (`has_function_privilege` is NULL for
//! an unknown oid, and tables are joined to `pg_class`). Oids leave as `int8`: `to_json` writes
//! an `oid` as a string.

use super::Params;

/// SQL text and parameters; the single row has one `text` column, the JSON answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegesStatement {
    pub sql: String,
    pub params: Params,
}

pub fn privileges(schema: &str, tables: &[u32], functions: &[u32]) -> PrivilegesStatement {
    let oids = |oids: &[u32]| oids.iter().map(u32::to_string).collect::<Vec<_>>();
    let mut params = Params::default();
    let schema = params.text(schema);
    let tables = params.text_array(&oids(tables));
    let functions = params.text_array(&oids(functions));
    let column_grants = "SELECT coalesce(json_agg(json_build_object(\
             'name', a.attname, \
             'select', has_column_privilege(c.oid, a.attnum, 'SELECT'), \
             'insert', has_column_privilege(c.oid, a.attnum, 'INSERT'), \
             'update', has_column_privilege(c.oid, a.attnum, 'UPDATE')) ORDER BY a.attnum), '[]') \
         FROM pg_catalog.pg_attribute a \
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped";
    let sql = format!(
        "SELECT json_build_object(\
           'usage', EXISTS (SELECT FROM pg_catalog.pg_namespace n \
                            WHERE n.nspname = {schema} AND has_schema_privilege(n.oid, 'USAGE')), \
           'tables', (SELECT coalesce(json_agg(json_build_object(\
                 'oid', c.oid::int8, \
                 'select', has_table_privilege(c.oid, 'SELECT'), \
                 'insert', has_table_privilege(c.oid, 'INSERT'), \
                 'update', has_table_privilege(c.oid, 'UPDATE'), \
                 'delete', has_table_privilege(c.oid, 'DELETE'), \
                 'columns', ({column_grants}))), '[]') \
               FROM pg_catalog.pg_class c WHERE c.oid = ANY ({tables}::oid[])), \
           'functions', (SELECT coalesce(json_agg(f.oid::int8), '[]') \
               FROM unnest({functions}::oid[]) AS f(oid) \
               WHERE has_function_privilege(f.oid, 'EXECUTE')))::text"
    );
    PrivilegesStatement { sql, params }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_oids_are_parameters() {
        let statement = privileges("pub'lic", &[16390, 16400], &[]);
        assert!(!statement.sql.contains("pub'lic"));
        assert!(!statement.sql.contains("16390"));
        assert!(statement.sql.contains("n.nspname = $1::text"));
        assert!(statement.sql.contains("c.oid = ANY ($2::text[]::oid[])"));
        assert!(statement.sql.contains("unnest($3::text[]::oid[])"));
        assert_eq!(
            statement.params.texts(),
            ["pub'lic", r#"["16390", "16400"]"#, "[]"]
        );
    }
}
