//! Relationships derived from foreign keys, by PostgREST's rules:
//!
//! - each foreign key `t → r` gives a many-to-one `t → r` and its inverse one-to-many `r → t`; when
//!   the key's columns are also `t`'s primary key or one of its unique keys, both are one-to-one;
//! - a table `j` with two different foreign keys `j → a` and `j → b` whose columns together lie
//!   within `j`'s primary key is a junction: it gives a many-to-many `a ↔ b` in both directions
//!   (a self many-to-many when `a` and `b` are the same table);
//! - both ends (and the junction) must be in exposed schemas.
//!
//! Views take part through the keys `load::inherit_keys` gives them from the table they show (traced
//! by column name through `pg_depend`; PostgREST reads the view's query tree, which also follows
//! renamed columns). Computed relationships (functions taking a row type) are not derived.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{Cardinality, ForeignKey, Junction, Relationship, SchemaObjects, Table};

pub(super) fn derive(schemas: &BTreeMap<String, SchemaObjects>) -> Vec<Relationship> {
    let lookup = |schema: &str, name: &str| schemas.get(schema)?.tables.get(name);
    let mut relationships = Vec::new();

    for table in schemas.values().flat_map(|objects| objects.tables.values()) {
        // Keys pointing outside the exposed schemas give nothing.
        let keys: Vec<(&ForeignKey, &Table)> = table
            .foreign_keys
            .iter()
            .filter_map(|fk| {
                let referenced = lookup(&fk.referenced_table.schema, &fk.referenced_table.name)?;
                Some((fk, referenced))
            })
            .collect();

        for &(fk, referenced) in &keys {
            relationships.extend(key_relationships(table, fk, referenced));
        }

        let pk: BTreeSet<&str> = table.primary_key.iter().map(String::as_str).collect();
        for &(first, first_table) in &keys {
            for &(second, second_table) in &keys {
                if first.constraint == second.constraint {
                    continue;
                }
                let covered = first
                    .columns
                    .iter()
                    .chain(&second.columns)
                    .all(|column| pk.contains(column.as_str()));
                if covered {
                    relationships.push(many_to_many(
                        table,
                        (first, first_table),
                        (second, second_table),
                    ));
                }
            }
        }
    }

    relationships.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    relationships
}

/// The two directions of one foreign key.
fn key_relationships(table: &Table, fk: &ForeignKey, referenced: &Table) -> [Relationship; 2] {
    let key: BTreeSet<&str> = fk.columns.iter().map(String::as_str).collect();
    let is_unique = std::iter::once(&table.primary_key)
        .chain(&table.unique_keys)
        .any(|unique| {
            !unique.is_empty() && unique.iter().map(String::as_str).collect::<BTreeSet<_>>() == key
        });
    let forward_columns: Vec<(String, String)> = fk
        .columns
        .iter()
        .cloned()
        .zip(fk.referenced_columns.iter().cloned())
        .collect();
    let inverse_columns = forward_columns
        .iter()
        .map(|(ours, theirs)| (theirs.clone(), ours.clone()))
        .collect();
    let constraint = fk.constraint.clone();
    let (forward, inverse) = if is_unique {
        (
            Cardinality::OneToOne {
                constraint: constraint.clone(),
                columns: forward_columns,
                fk_on_table: true,
            },
            Cardinality::OneToOne {
                constraint,
                columns: inverse_columns,
                fk_on_table: false,
            },
        )
    } else {
        (
            Cardinality::ManyToOne {
                constraint: constraint.clone(),
                columns: forward_columns,
            },
            Cardinality::OneToMany {
                constraint,
                columns: inverse_columns,
            },
        )
    };
    let is_self = table.schema == referenced.schema && table.name == referenced.name;
    [
        Relationship {
            table: table.qualified_name(),
            foreign_table: referenced.qualified_name(),
            is_self,
            table_is_view: table.is_view(),
            foreign_table_is_view: referenced.is_view(),
            cardinality: forward,
        },
        Relationship {
            table: referenced.qualified_name(),
            foreign_table: table.qualified_name(),
            is_self,
            table_is_view: referenced.is_view(),
            foreign_table_is_view: table.is_view(),
            cardinality: inverse,
        },
    ]
}

fn many_to_many(
    junction: &Table,
    (to_table, table): (&ForeignKey, &Table),
    (to_foreign, foreign): (&ForeignKey, &Table),
) -> Relationship {
    let pairs = |fk: &ForeignKey| -> Vec<(String, String)> {
        fk.referenced_columns
            .iter()
            .cloned()
            .zip(fk.columns.iter().cloned())
            .collect()
    };
    Relationship {
        table: table.qualified_name(),
        foreign_table: foreign.qualified_name(),
        is_self: table.schema == foreign.schema && table.name == foreign.name,
        table_is_view: table.is_view(),
        foreign_table_is_view: foreign.is_view(),
        cardinality: Cardinality::ManyToMany(Junction {
            table: junction.qualified_name(),
            constraint: to_table.constraint.clone(),
            foreign_constraint: to_foreign.constraint.clone(),
            columns: pairs(to_table),
            foreign_columns: pairs(to_foreign),
        }),
    }
}

/// A stable order, so that candidates (and error messages listing them) do not change between loads.
fn sort_key(rel: &Relationship) -> (&str, &str, &str, &str, u8, &str, &str) {
    let (rank, name, other) = match &rel.cardinality {
        Cardinality::ManyToOne { constraint, .. } => (0, constraint.as_str(), ""),
        Cardinality::OneToOne { constraint, .. } => (1, constraint.as_str(), ""),
        Cardinality::OneToMany { constraint, .. } => (2, constraint.as_str(), ""),
        Cardinality::ManyToMany(junction) => (
            3,
            junction.table.name.as_str(),
            junction.constraint.as_str(),
        ),
    };
    (
        &rel.table.schema,
        &rel.table.name,
        &rel.foreign_table.schema,
        &rel.foreign_table.name,
        rank,
        name,
        other,
    )
}

#[cfg(test)]
mod tests {
    use super::super::config::ExposedSchemas;
    use super::super::model::{QualifiedName, RelationKind, SchemaCache};
    use super::*;

    fn table(name: &str, pk: &[&str]) -> Table {
        Table {
            oid: 0,
            schema: "public".into(),
            name: name.into(),
            kind: RelationKind::Table,
            description: None,
            insertable: true,
            updatable: true,
            deletable: true,
            columns: Vec::new(),
            primary_key: pk.iter().map(|c| (*c).to_owned()).collect(),
            unique_keys: Vec::new(),
            foreign_keys: Vec::new(),
        }
    }

    fn fk(
        constraint: &str,
        table: &str,
        columns: &[&str],
        to: &str,
        to_columns: &[&str],
    ) -> ForeignKey {
        let strings = |names: &[&str]| names.iter().map(|c| (*c).to_owned()).collect();
        ForeignKey {
            constraint: constraint.into(),
            table: QualifiedName::new("public", table),
            columns: strings(columns),
            referenced_table: QualifiedName::new("public", to),
            referenced_columns: strings(to_columns),
        }
    }

    fn with_fks(mut table: Table, fks: Vec<ForeignKey>) -> Table {
        table.foreign_keys = fks;
        table
    }

    /// users, tasks, users_tasks (junction), messages with sender and recipient.
    fn cache() -> SchemaCache {
        let users = table("users", &["id"]);
        let tasks = table("tasks", &["id"]);
        let users_tasks = with_fks(
            table("users_tasks", &["user_id", "task_id"]),
            vec![
                fk(
                    "users_tasks_user_fk",
                    "users_tasks",
                    &["user_id"],
                    "users",
                    &["id"],
                ),
                fk(
                    "users_tasks_task_fk",
                    "users_tasks",
                    &["task_id"],
                    "tasks",
                    &["id"],
                ),
            ],
        );
        let messages = with_fks(
            table("messages", &["id"]),
            vec![
                fk(
                    "messages_sender_fk",
                    "messages",
                    &["sender_id"],
                    "users",
                    &["id"],
                ),
                fk(
                    "messages_recipient_fk",
                    "messages",
                    &["recipient_id"],
                    "users",
                    &["id"],
                ),
            ],
        );
        SchemaCache::new(
            &ExposedSchemas::default(),
            vec![users, tasks, users_tasks, messages],
            Vec::new(),
        )
    }

    #[test]
    fn a_junction_gives_many_to_many_both_ways() {
        let cache = cache();
        let found = cache.relationships("public", "users", "tasks", None);
        assert_eq!(found.len(), 1, "{found:#?}");
        let Cardinality::ManyToMany(junction) = &found[0].cardinality else {
            panic!("{found:#?}")
        };
        assert_eq!(junction.table, QualifiedName::new("public", "users_tasks"));
        assert_eq!(junction.constraint, "users_tasks_user_fk");
        assert_eq!(junction.foreign_constraint, "users_tasks_task_fk");
        assert_eq!(junction.columns, [("id".to_owned(), "user_id".to_owned())]);
        assert_eq!(
            junction.foreign_columns,
            [("id".to_owned(), "task_id".to_owned())]
        );
        assert_eq!(
            cache.relationships("public", "tasks", "users", None).len(),
            1
        );
        // The hint may name the junction.
        assert_eq!(
            cache
                .relationships("public", "users", "tasks", Some("users_tasks"))
                .len(),
            1
        );
    }

    #[test]
    fn a_table_whose_keys_are_not_in_its_pk_is_no_junction() {
        // messages has two keys to users but its pk is `id` alone.
        let cache = cache();
        assert!(cache
            .relationships_from("public", "users")
            .iter()
            .all(|rel| !matches!(&rel.cardinality, Cardinality::ManyToMany(j) if j.table.name == "messages")));
    }

    #[test]
    fn two_keys_to_one_table_are_ambiguous_until_hinted() {
        let cache = cache();
        assert_eq!(
            cache
                .relationships("public", "messages", "users", None)
                .len(),
            2
        );
        assert_eq!(
            cache
                .relationships("public", "users", "messages", None)
                .len(),
            2
        );
        let by_name =
            cache.relationships("public", "messages", "users", Some("messages_sender_fk"));
        assert_eq!(by_name.len(), 1);
        assert!(by_name[0].is_to_one());
        let by_column = cache.relationships("public", "users", "messages", Some("recipient_id"));
        assert_eq!(by_column.len(), 1);
        assert_eq!(by_column[0].constraint(), Some("messages_recipient_fk"));
        // Column as target: `select=sender_id(*)`.
        let as_target = cache.relationships("public", "messages", "sender_id", None);
        assert_eq!(as_target.len(), 1);
        assert_eq!(as_target[0].foreign_table.name, "users");
    }

    #[test]
    fn a_key_that_is_also_unique_is_one_to_one() {
        let mut profile = table("profiles", &["user_id"]);
        profile.foreign_keys = vec![fk(
            "profiles_user_fk",
            "profiles",
            &["user_id"],
            "users",
            &["id"],
        )];
        let cache = SchemaCache::new(
            &ExposedSchemas::default(),
            vec![table("users", &["id"]), profile],
            Vec::new(),
        );
        let forward = cache.relationships("public", "profiles", "users", None);
        assert!(matches!(
            forward[0].cardinality,
            Cardinality::OneToOne {
                fk_on_table: true,
                ..
            }
        ));
        let inverse = cache.relationships("public", "users", "profiles", None);
        assert!(matches!(
            inverse[0].cardinality,
            Cardinality::OneToOne {
                fk_on_table: false,
                ..
            }
        ));
        assert!(inverse[0].is_to_one());
    }

    #[test]
    fn self_reference_children_by_table_parent_by_column() {
        let tree = with_fks(
            table("nodes", &["id"]),
            vec![fk(
                "nodes_parent_fk",
                "nodes",
                &["parent_id"],
                "nodes",
                &["id"],
            )],
        );
        let cache = SchemaCache::new(&ExposedSchemas::default(), vec![tree], Vec::new());
        let children = cache.relationships("public", "nodes", "nodes", None);
        assert_eq!(children.len(), 1);
        assert!(children[0].is_self && !children[0].is_to_one());
        let parent = cache.relationships("public", "nodes", "parent_id", None);
        assert_eq!(parent.len(), 1);
        assert!(parent[0].is_to_one());
    }

    #[test]
    fn keys_to_unexposed_tables_give_nothing() {
        let orders = with_fks(
            table("orders", &["id"]),
            vec![ForeignKey {
                constraint: "orders_user_fk".into(),
                table: QualifiedName::new("public", "orders"),
                columns: vec!["user_id".into()],
                referenced_table: QualifiedName::new("auth", "users"),
                referenced_columns: vec!["id".into()],
            }],
        );
        let cache = SchemaCache::new(&ExposedSchemas::default(), vec![orders], Vec::new());
        assert!(cache.relationships_from("public", "orders").is_empty());
        assert_eq!(
            cache.table("public", "orders").unwrap().foreign_keys.len(),
            1
        );
    }
}
