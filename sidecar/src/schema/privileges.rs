//! What one role may do with the objects of one schema: the filter the OpenAPI document follows,
//! as PostgREST's default `openapi-mode = follow-privileges` does.
//!
//! The schema cache itself is loaded once for every role, so it knows nothing of grants. The
//! privileges are asked of Postgres per document, under the request's role (the statement is
//! `rest::sql::privileges`, run like every request), so `has_table_privilege` and friends
//! answer for that role and the roles it is a member of, with GRANTs made a moment ago included.
//! The answer is one JSON object, read here:
//!
//! ```json
//! {"usage": true,
//!  "tables": [{"oid": 16390, "select": true, "insert": false, "update": false, "delete": false,
//!              "columns": [{"name": "id", "select": true, "insert": false, "update": false}]}],
//!  "functions": [16402]}
//! ```
//!
//! Without `USAGE` on the schema nothing in it can be used, so nothing is shown.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use super::model::{Function, Table};

/// The privileges a document is filtered by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Privileges {
    /// Everything in the cache, as its owner sees it: for tools and tests that describe the
    /// schema itself rather than one role's view of it. Never used to answer a request.
    All,
    /// What the role was found to hold.
    Granted {
        tables: HashMap<u32, TableGrant>,
        functions: HashSet<u32>,
    },
}

/// The statement's answer for one table (table-level privileges, then each column's, which
/// include the table-level ones as `has_column_privilege` reports them).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TableGrant {
    pub oid: u32,
    pub select: bool,
    pub insert: bool,
    pub update: bool,
    pub delete: bool,
    pub columns: Vec<ColumnGrant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ColumnGrant {
    pub name: String,
    #[serde(flatten)]
    pub access: ColumnAccess,
}

/// What a role may do with one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct ColumnAccess {
    pub select: bool,
    pub insert: bool,
    pub update: bool,
}

impl ColumnAccess {
    const ALL: ColumnAccess = ColumnAccess {
        select: true,
        insert: true,
        update: true,
    };

    /// Whether the column is part of what the role can use at all.
    pub fn any(self) -> bool {
        self.select || self.insert || self.update
    }
}

/// What a role may do with one table, as the document needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableAccess {
    /// `SELECT` on the table or on one of its columns: rows can be read.
    pub read: bool,
    /// `INSERT` on the table or on one of its columns.
    pub insert: bool,
    /// `UPDATE` on the table or on one of its columns.
    pub update: bool,
    pub delete: bool,
    columns: HashMap<String, ColumnAccess>,
}

impl TableAccess {
    /// The role's access to a column; nothing for a column it holds no privilege on.
    pub fn column(&self, name: &str) -> ColumnAccess {
        self.columns.get(name).copied().unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct Answer {
    usage: bool,
    tables: Vec<TableGrant>,
    functions: Vec<u32>,
}

impl Privileges {
    /// Reads the privileges statement's answer.
    pub fn from_json(text: &str) -> Result<Privileges, serde_json::Error> {
        let answer: Answer = serde_json::from_str(text)?;
        if !answer.usage {
            return Ok(Privileges::Granted {
                tables: HashMap::new(),
                functions: HashSet::new(),
            });
        }
        Ok(Privileges::Granted {
            tables: answer
                .tables
                .into_iter()
                .map(|grant| (grant.oid, grant))
                .collect(),
            functions: answer.functions.into_iter().collect(),
        })
    }

    /// What the role may do with `table`; None when it holds no privilege on it nor on any of
    /// its columns, so the table is not shown at all.
    pub fn on_table(&self, table: &Table) -> Option<TableAccess> {
        let grant = match self {
            Privileges::All => {
                return Some(TableAccess {
                    read: true,
                    insert: true,
                    update: true,
                    delete: true,
                    columns: table
                        .columns
                        .iter()
                        .map(|column| (column.name.clone(), ColumnAccess::ALL))
                        .collect(),
                })
            }
            Privileges::Granted { tables, .. } => tables.get(&table.oid)?,
        };
        let columns: HashMap<String, ColumnAccess> = grant
            .columns
            .iter()
            .filter(|column| column.access.any())
            .map(|column| (column.name.clone(), column.access))
            .collect();
        let some_column = |has: fn(&ColumnAccess) -> bool| columns.values().any(has);
        let access = TableAccess {
            read: grant.select || some_column(|c| c.select),
            insert: grant.insert || some_column(|c| c.insert),
            update: grant.update || some_column(|c| c.update),
            delete: grant.delete,
            columns,
        };
        (access.read || access.insert || access.update || access.delete).then_some(access)
    }

    /// Whether the role may call `function` (`EXECUTE`).
    pub fn may_execute(&self, function: &Function) -> bool {
        match self {
            Privileges::All => true,
            Privileges::Granted { functions, .. } => functions.contains(&function.oid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_read_and_column_grants_make_a_table_visible() {
        let text = r#"{"usage": true, "functions": [7],
            "tables": [
              {"oid": 1, "select": true, "insert": false, "update": false, "delete": false,
               "columns": [{"name": "id", "select": true, "insert": false, "update": false},
                           {"name": "secret", "select": false, "insert": false, "update": false}]},
              {"oid": 2, "select": false, "insert": false, "update": false, "delete": false,
               "columns": [{"name": "note", "select": false, "insert": true, "update": false}]},
              {"oid": 3, "select": false, "insert": false, "update": false, "delete": false,
               "columns": [{"name": "x", "select": false, "insert": false, "update": false}]}
            ]}"#;
        let privileges = Privileges::from_json(text).unwrap();
        let Privileges::Granted { tables, functions } = &privileges else {
            panic!("granted")
        };
        assert_eq!(functions, &HashSet::from([7]));
        assert_eq!(tables.len(), 3);
        let table = |oid| crate::schema::Table {
            oid,
            ..crate::schema::fixtures::cache()
                .table("public", "todos")
                .unwrap()
                .clone()
        };
        let read_only = privileges.on_table(&table(1)).unwrap();
        assert!(read_only.read && !read_only.insert && !read_only.delete);
        assert!(read_only.column("id").select);
        assert!(!read_only.column("secret").any());
        let insert_only = privileges.on_table(&table(2)).unwrap();
        assert!(!insert_only.read && insert_only.insert);
        assert!(insert_only.column("note").insert);
        assert_eq!(privileges.on_table(&table(3)), None);
        assert_eq!(privileges.on_table(&table(4)), None);
    }

    #[test]
    fn without_usage_on_the_schema_nothing_is_shown() {
        let text = r#"{"usage": false, "functions": [7], "tables": [
              {"oid": 1, "select": true, "insert": true, "update": true, "delete": true,
               "columns": []}]}"#;
        assert_eq!(
            Privileges::from_json(text).unwrap(),
            Privileges::Granted {
                tables: HashMap::new(),
                functions: HashSet::new()
            }
        );
    }
}
