//! A small schema cache for unit tests of every layer that plans against one (`rest::plan`,
//! `rest::sql`, the OpenAPI privilege filter): `public.users`, `public.todos` and `api.things`.

use super::*;

fn column(name: &str, base_type: &str) -> Column {
    Column {
        name: name.to_owned(),
        position: 1,
        type_name: base_type.to_owned(),
        type_oid: 0,
        base_type: base_type.to_owned(),
        base_type_oid: 0,
        element_type: None,
        element_type_oid: None,
        enum_values: Vec::new(),
        max_length: None,
        nullable: true,
        default: None,
        identity: None,
        generated: false,
        description: None,
    }
}

fn fk(constraint: &str, column: &str) -> ForeignKey {
    ForeignKey {
        constraint: constraint.into(),
        table: QualifiedName::new("public", "todos"),
        columns: vec![column.into()],
        referenced_table: QualifiedName::new("public", "users"),
        referenced_columns: vec!["id".into()],
    }
}

/// `public.users (id uuid, name text)`; `public.todos (id int8, owner uuid, title text, data jsonb)` and `api.things (id integer)`.
pub(crate) fn cache() -> SchemaCache {
    let todos = Table {
        oid: 1,
        schema: "public".into(),
        name: "todos".into(),
        kind: RelationKind::Table,
        description: None,
        insertable: true,
        updatable: true,
        deletable: true,
        columns: vec![
            column("id", "bigint"),
            column("owner", "uuid"),
            column("title", "text"),
            column("data", "jsonb"),
            column("tags", "text[]"),
            column("weird \"name\"", "integer"),
            column("editor", "uuid"),
        ],
        primary_key: vec!["id".into()],
        unique_keys: Vec::new(),
        foreign_keys: vec![
            fk("todos_owner_fkey", "owner"),
            fk("todos_editor_fkey", "editor"),
        ],
    };
    let users = Table {
        oid: 3,
        name: "users".into(),
        columns: vec![column("id", "uuid"), column("name", "text")],
        foreign_keys: Vec::new(),
        ..todos.clone()
    };
    let things = Table {
        oid: 2,
        schema: "api".into(),
        name: "things".into(),
        columns: vec![column("id", "integer")],
        ..todos.clone()
    };
    SchemaCache::new(
        &ExposedSchemas::new(["public", "api"]).unwrap(),
        vec![todos, things, users],
        Vec::new(),
    )
}
