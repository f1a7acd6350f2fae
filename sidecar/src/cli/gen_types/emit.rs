//! What each database object becomes in the `Database` type, decided as the Supabase CLI's
//! generator decides: which functions PostgREST can call, computed fields, `SetofOptions`, the
//! errors of overloads PostgREST cannot tell apart, and the TypeScript of every Postgres type.

use std::collections::HashMap;

use super::catalog::{
    Arg, ArgMode, Catalog, Column, Function, Kind, PgType, Relation, Relationship,
};
use super::collate::compare;
use super::ts::{member, nullable, object, plain, quote, Member, Ty, NEVER};

/// json, jsonb and text: the types PostgREST passes a single unnamed argument as.
pub(super) const UNNAMED_ARG_TYPES: [u32; 3] = [114, 3802, 25];

/// One schema's objects, grouped as the generator groups them.
#[derive(Default)]
pub(super) struct SchemaObjects<'a> {
    tables: Vec<&'a Relation>,
    views: Vec<&'a Relation>,
    functions: Vec<(&'a Function, Vec<&'a Arg>)>,
    enums: Vec<&'a PgType>,
    composites: Vec<&'a PgType>,
}

pub(super) struct Generator<'a> {
    catalog: &'a Catalog,
    types_by_id: HashMap<u32, &'a PgType>,
    relation_types: HashMap<u32, &'a PgType>,
    relation_names: HashMap<u32, &'a str>,
    columns: HashMap<u32, Vec<&'a Column>>,
    by_schema: HashMap<&'a str, SchemaObjects<'a>>,
}

impl<'a> Generator<'a> {
    pub(super) fn new(catalog: &'a Catalog) -> Generator<'a> {
        let mut generator = Generator {
            catalog,
            types_by_id: HashMap::new(),
            relation_types: HashMap::new(),
            relation_names: HashMap::new(),
            columns: HashMap::new(),
            by_schema: catalog
                .schemas
                .iter()
                .map(|s| (s.as_str(), SchemaObjects::default()))
                .collect(),
        };
        for relation in &catalog.relations {
            generator.columns.insert(relation.id, Vec::new());
            generator.relation_names.insert(relation.id, &relation.name);
        }
        for column in &catalog.columns {
            if let Some(columns) = generator.columns.get_mut(&column.table_id) {
                columns.push(column);
            }
        }
        for ty in &catalog.types {
            generator.types_by_id.insert(ty.id, ty);
            if ty.relation_id.is_some() {
                generator.relation_types.insert(ty.id, ty);
            }
            if let Some(objects) = generator.by_schema.get_mut(ty.schema.as_str()) {
                if !ty.enums.is_empty() {
                    objects.enums.push(ty);
                }
                if !ty.attributes.is_empty() {
                    objects.composites.push(ty);
                }
            }
        }
        // Tables before foreign tables and views before materialized views, then a stable sort
        // by name.
        let order = [
            Kind::Table,
            Kind::ForeignTable,
            Kind::View,
            Kind::MaterializedView,
        ];
        for kind in order {
            for relation in catalog.relations.iter().filter(|r| r.kind == kind) {
                if let Some(objects) = generator.by_schema.get_mut(relation.schema.as_str()) {
                    match kind {
                        Kind::Table | Kind::ForeignTable => objects.tables.push(relation),
                        _ => objects.views.push(relation),
                    }
                }
            }
        }
        let mut functions = Vec::new();
        for function in &catalog.functions {
            if !generator.by_schema.contains_key(function.schema.as_str()) {
                continue;
            }
            let inputs: Vec<&Arg> = function
                .args
                .iter()
                .filter(|a| matches!(a.mode, ArgMode::In | ArgMode::InOut | ArgMode::Variadic))
                .collect();
            let valid = |a: &Arg| UNNAMED_ARG_TYPES.contains(&a.type_id);
            let callable = inputs.is_empty()
                || inputs.iter().all(|a| !a.name.is_empty())
                || inputs
                    .iter()
                    .all(|a| !a.name.is_empty() || (a.has_default && valid(a)))
                || (inputs.len() == 1
                    && (valid(inputs[0])
                        || generator.relation_types.contains_key(&inputs[0].type_id)));
            if callable {
                functions.push((function, inputs));
            }
        }
        for (function, inputs) in functions {
            if let Some(objects) = generator.by_schema.get_mut(function.schema.as_str()) {
                objects.functions.push((function, inputs));
            }
        }
        for objects in generator.by_schema.values_mut() {
            objects.tables.sort_by(|a, b| compare(&a.name, &b.name));
            objects.views.sort_by(|a, b| compare(&a.name, &b.name));
            objects
                .functions
                .sort_by(|a, b| compare(&a.0.name, &b.0.name));
            objects.enums.sort_by(|a, b| compare(&a.name, &b.name));
            objects.composites.sort_by(|a, b| compare(&a.name, &b.name));
        }
        generator
    }

    /// The TypeScript type of a Postgres type named `name` (of schema `type_schema`).
    fn ts_type(&self, name: &str, type_schema: &str) -> Ty {
        match name {
            "bool" => return plain("boolean"),
            "int2" | "int4" | "int8" | "float4" | "float8" | "numeric" => return plain("number"),
            "bytea" | "bpchar" | "varchar" | "date" | "text" | "citext" | "time" | "timetz"
            | "timestamp" | "timestamptz" | "uuid" | "vector" | "interval" => {
                return plain("string")
            }
            "json" | "jsonb" => return plain("Json"),
            "void" => return plain("undefined"),
            "record" => return plain("Record<string, unknown>"),
            _ => {}
        }
        if let Some(element) = name.strip_prefix('_') {
            return Ty::Array(Box::new(self.ts_type(element, type_schema)));
        }
        let types = &self.catalog.types;
        let in_output = |schema: &str| self.catalog.schemas.iter().any(|s| s == schema);
        let pick = |candidates: Vec<&'a PgType>| {
            candidates
                .iter()
                .find(|t| t.schema == type_schema)
                .or(candidates.first())
                .copied()
        };
        let enums = types
            .iter()
            .filter(|t| t.name == name && !t.enums.is_empty())
            .collect();
        if let Some(found) = pick(enums) {
            if in_output(&found.schema) {
                return reference(&found.schema, "Enums", &found.name, "");
            }
            return Ty::Union(found.enums.iter().map(|v| Ty::Literal(v.clone())).collect());
        }
        let composites = types
            .iter()
            .filter(|t| t.name == name && !t.attributes.is_empty())
            .collect();
        if let Some(found) = pick(composites) {
            if in_output(&found.schema) {
                return reference(&found.schema, "CompositeTypes", &found.name, "");
            }
            return plain("unknown");
        }
        let kinds = [
            (Kind::Table, "Tables"),
            (Kind::ForeignTable, "Tables"),
            (Kind::View, "Views"),
            (Kind::MaterializedView, "Views"),
        ];
        let find = |same_schema: bool| {
            kinds.iter().find_map(|(kind, label)| {
                self.catalog
                    .relations
                    .iter()
                    .find(|r| {
                        r.kind == *kind
                            && r.name == name
                            && (!same_schema || r.schema == type_schema)
                    })
                    .map(|r| (r, *label))
            })
        };
        if let Some((relation, label)) = find(true).or_else(|| find(false)) {
            if in_output(&relation.schema) {
                return reference(&relation.schema, label, &relation.name, "[\"Row\"]");
            }
        }
        plain("unknown")
    }

    fn type_of_id(&self, type_id: u32) -> Ty {
        match self.types_by_id.get(&type_id) {
            Some(ty) => self.ts_type(&ty.name, &ty.schema),
            None => plain("unknown"),
        }
    }

    fn column_member(&self, column: &Column, is_nullable: bool, optional: bool) -> Member {
        member(
            &column.name,
            optional,
            nullable(
                self.ts_type(&column.format, &column.type_schema),
                is_nullable,
            ),
        )
    }

    fn relationships(&self, relation: &Relation) -> Ty {
        let entries: Vec<&Relationship> = self
            .catalog
            .relationships
            .iter()
            .filter(|r| {
                r.schema == relation.schema
                    && r.relation == relation.name
                    && r.referenced_schema == relation.schema
            })
            .collect();
        let strings =
            |names: &[String]| Ty::Tuple(names.iter().map(|n| Ty::Literal(n.clone())).collect());
        Ty::Tuple(
            entries
                .into_iter()
                .map(|r| {
                    object(
                        vec![
                            member("foreignKeyName", false, Ty::Literal(r.foreign_key.clone())),
                            member("columns", false, strings(&r.columns)),
                            member(
                                "isOneToOne",
                                false,
                                plain(if r.one_to_one { "true" } else { "false" }),
                            ),
                            member(
                                "referencedRelation",
                                false,
                                Ty::Literal(r.referenced_relation.clone()),
                            ),
                            member("referencedColumns", false, strings(&r.referenced_columns)),
                        ],
                        true,
                    )
                })
                .collect(),
        )
    }

    /// Whether `function` is a computed field of `relation` (takes its row as the only argument).
    fn computed_field_of(&self, function: &Function, inputs: &[&Arg], relation: &Relation) -> bool {
        if inputs.len() == 1 {
            if let Some(ty) = self.relation_types.get(&inputs[0].type_id) {
                return ty.relation_id == Some(relation.id);
            }
        }
        function.argument_types == relation.name
    }

    fn row(&self, schema: &str, relation: &Relation) -> Ty {
        let mut members: Vec<Member> = self.columns[&relation.id]
            .iter()
            .map(|c| self.column_member(c, c.nullable, false))
            .collect();
        for (function, inputs) in &self.by_schema[schema].functions {
            if self.computed_field_of(function, inputs, relation) {
                members.push(member(
                    &function.name,
                    false,
                    nullable(self.return_type(schema, function), true),
                ));
            }
        }
        object(members, true)
    }

    /// A schema's enums, by name.
    pub(super) fn enums(&self, schema: &str) -> &[&'a PgType] {
        &self.by_schema[schema].enums
    }

    pub(super) fn schema_type(&self, schema: &str) -> Ty {
        let objects = &self.by_schema[schema];
        let never = || object(vec![member(NEVER, false, plain("never"))], true);
        let tables = if objects.tables.is_empty() {
            never()
        } else {
            object(
                objects
                    .tables
                    .iter()
                    .map(|table| {
                        let columns = &self.columns[&table.id];
                        let write = |insert: bool| {
                            object(
                                columns
                                    .iter()
                                    .map(|c| {
                                        if c.identity_always || c.generated {
                                            member(&c.name, true, plain("never"))
                                        } else {
                                            let optional = !insert
                                                || c.nullable
                                                || c.identity
                                                || c.has_default;
                                            self.column_member(c, c.nullable, optional)
                                        }
                                    })
                                    .collect(),
                                true,
                            )
                        };
                        member(
                            &table.name,
                            false,
                            object(
                                vec![
                                    member("Row", false, self.row(schema, table)),
                                    member("Insert", false, write(true)),
                                    member("Update", false, write(false)),
                                    member("Relationships", false, self.relationships(table)),
                                ],
                                true,
                            ),
                        )
                    })
                    .collect(),
                true,
            )
        };
        let views = if objects.views.is_empty() {
            never()
        } else {
            object(
                objects
                    .views
                    .iter()
                    .map(|view| {
                        let columns = &self.columns[&view.id];
                        let write = || {
                            object(
                                columns
                                    .iter()
                                    .map(|c| {
                                        if c.updatable {
                                            self.column_member(c, true, true)
                                        } else {
                                            member(&c.name, true, plain("never"))
                                        }
                                    })
                                    .collect(),
                                true,
                            )
                        };
                        let writable = view.kind == Kind::View;
                        let mut members = vec![member("Row", false, self.row(schema, view))];
                        if writable && view.insert_enabled {
                            members.push(member("Insert", false, write()));
                        }
                        if writable && view.update_enabled {
                            members.push(member("Update", false, write()));
                        }
                        members.push(member("Relationships", false, self.relationships(view)));
                        member(&view.name, false, object(members, true))
                    })
                    .collect(),
                true,
            )
        };
        let functions = if objects.functions.is_empty() {
            never()
        } else {
            let mut names: Vec<&str> = Vec::new();
            let mut groups: HashMap<&str, Vec<(&Function, &Vec<&Arg>)>> = HashMap::new();
            for (function, inputs) in &objects.functions {
                if !groups.contains_key(function.name.as_str()) {
                    names.push(&function.name);
                }
                groups
                    .entry(&function.name)
                    .or_default()
                    .push((function, inputs));
            }
            object(
                names
                    .into_iter()
                    .map(|name| {
                        let mut overloads = groups.remove(name).unwrap_or_default();
                        overloads.sort_by(|a, b| {
                            compare(&a.0.argument_types, &b.0.argument_types)
                                .then_with(|| compare(&a.0.return_type, &b.0.return_type))
                        });
                        let signatures: Vec<Ty> = overloads
                            .iter()
                            .map(|(function, inputs)| {
                                self.signature(schema, &overloads, function, inputs)
                            })
                            .collect();
                        let ty = if signatures.len() == 1 {
                            signatures
                                .into_iter()
                                .next()
                                .unwrap_or_else(|| plain("never"))
                        } else {
                            Ty::Union(signatures)
                        };
                        member(name, false, ty)
                    })
                    .collect(),
                true,
            )
        };
        let enums = if objects.enums.is_empty() {
            never()
        } else {
            object(
                objects
                    .enums
                    .iter()
                    .map(|e| {
                        let values: Vec<Ty> =
                            e.enums.iter().map(|v| Ty::Literal(v.clone())).collect();
                        let ty = if values.len() == 1 {
                            values.into_iter().next().unwrap_or_else(|| plain("never"))
                        } else {
                            Ty::Union(values)
                        };
                        member(&e.name, false, ty)
                    })
                    .collect(),
                true,
            )
        };
        let composites = if objects.composites.is_empty() {
            never()
        } else {
            object(
                objects
                    .composites
                    .iter()
                    .map(|c| {
                        let attributes = c
                            .attributes
                            .iter()
                            .map(|(name, type_id)| {
                                let ty = match self.types_by_id.get(type_id) {
                                    Some(t) => nullable(self.ts_type(&t.name, &t.schema), true),
                                    None => plain("unknown"),
                                };
                                member(name, false, ty)
                            })
                            .collect();
                        member(&c.name, false, object(attributes, true))
                    })
                    .collect(),
                true,
            )
        };
        object(
            vec![
                member("Tables", false, tables),
                member("Views", false, views),
                member("Functions", false, functions),
                member("Enums", false, enums),
                member("CompositeTypes", false, composites),
            ],
            true,
        )
    }

    /// The name of the table, view or composite type a function returns rows of.
    fn returned_relation(&self, function: &Function) -> Option<&str> {
        let relation = function.return_type_relation_id?;
        if let Some(name) = self.relation_names.get(&relation) {
            return Some(name);
        }
        self.relation_types
            .get(&function.return_type_id)
            .map(|t| t.name.as_str())
    }

    /// What a function returns, without the set's `[]`.
    fn return_type(&self, schema: &str, function: &Function) -> Ty {
        let table_args: Vec<&Arg> = function
            .args
            .iter()
            .filter(|a| a.mode == ArgMode::Table)
            .collect();
        if !table_args.is_empty() {
            return object(
                table_args
                    .iter()
                    .map(|a| member(&a.name, false, self.type_of_id(a.type_id)))
                    .collect(),
                true,
            );
        }
        let objects = &self.by_schema[schema];
        let relation = objects
            .tables
            .iter()
            .chain(objects.views.iter())
            .find(|r| Some(r.id) == function.return_type_relation_id);
        if let Some(relation) = relation {
            return object(
                self.columns[&relation.id]
                    .iter()
                    .map(|c| self.column_member(c, c.nullable, false))
                    .collect(),
                true,
            );
        }
        self.type_of_id(function.return_type_id)
    }

    fn args_type(&self, inputs: &[&Arg]) -> Ty {
        if inputs.is_empty() {
            return plain("Record<PropertyKey, never>");
        }
        object(
            inputs
                .iter()
                .map(|a| member(&a.name, a.has_default, self.type_of_id(a.type_id)))
                .collect(),
            false,
        )
    }

    fn type_name(&self, type_id: u32) -> &str {
        self.types_by_id
            .get(&type_id)
            .map(|t| t.name.as_str())
            .unwrap_or("unknown")
    }

    /// The error PostgREST answers a call with when overloads cannot be told apart.
    fn conflict(
        &self,
        schema: &str,
        overloads: &[(&Function, &Vec<&Arg>)],
        function: &Function,
        inputs: &[&Arg],
    ) -> Option<String> {
        if overloads.len() <= 1 {
            return None;
        }
        let others = || {
            overloads
                .iter()
                .filter(|(f, _)| !std::ptr::eq(*f, function))
        };
        if inputs.is_empty() {
            let other =
                others().find(|(_, i)| i.len() == 1 && i[0].name.is_empty() && i[0].has_default)?;
            return Some(format!(
                "Could not choose the best candidate function between: {schema}.{name}(), {schema}.{name}( => {returns}). Try renaming the parameters or the function itself in the database so function overloading can be resolved",
                name = function.name,
                returns = self.type_name(other.0.return_type_id),
            ));
        }
        if inputs.len() == 1 && !inputs[0].name.is_empty() {
            let mut all: Vec<&Vec<&Arg>> = others()
                .filter(|(_, i)| {
                    i.len() == 1 && i[0].name == inputs[0].name && i[0].type_id != inputs[0].type_id
                })
                .map(|(_, i)| *i)
                .collect();
            if all.is_empty() {
                return None;
            }
            let own = inputs.to_vec();
            all.insert(0, &own);
            all.sort_by_key(|i| i.first().map(|a| a.type_id).unwrap_or(0));
            let list = all
                .iter()
                .map(|i| {
                    let args = i
                        .iter()
                        .map(|a| format!("{} => {}", a.name, self.type_name(a.type_id)))
                        .collect::<Vec<_>>()
                        .join(", ");
                    format!("{schema}.{}({args})", function.name)
                })
                .collect::<Vec<_>>()
                .join(", ");
            return Some(format!(
                "Could not choose the best candidate function between: {list}. Try renaming the parameters or the function itself in the database so function overloading can be resolved"
            ));
        }
        None
    }

    fn signature(
        &self,
        schema: &str,
        overloads: &[(&Function, &Vec<&Arg>)],
        function: &Function,
        inputs: &[&Arg],
    ) -> Ty {
        let args = self.args_type(inputs);
        let table_row_error = inputs.len() == 1
            && inputs[0].name.is_empty()
            && self.relation_types.contains_key(&inputs[0].type_id)
            && self.returned_relation(function).is_none();
        let error = |message: String| {
            Ty::Intersection(vec![
                object(vec![member("error", false, plain("true"))], false),
                Ty::Literal(message),
            ])
        };
        let returns = if let Some(message) = self.conflict(schema, overloads, function, inputs) {
            error(message)
        } else if table_row_error {
            error(format!(
                "the function {schema}.{} with parameter or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache",
                function.name
            ))
        } else {
            self.return_type(schema, function)
        };

        let returned = self.returned_relation(function);
        let returns_set_of_table =
            function.returns_set && function.return_type_relation_id.is_some();
        let many = function.rows.is_some_and(|rows| rows > 1.0);
        let mut setof: Option<(String, String, bool, bool)> =
            returned.map(|to| ("*".to_string(), to.to_string(), !many, function.returns_set));
        if function.args.len() == 1 {
            if let Some(source) = self.relation_types.get(&function.args[0].type_id) {
                let from = source_format(source);
                if let Some(to) = returned {
                    setof = Some(if returns_set_of_table {
                        (from, to.to_string(), !many, true)
                    } else {
                        (from, to.to_string(), true, false)
                    });
                }
            }
        }
        let single_row = !many && returned.is_some();
        let returns = match returns {
            // The generator appends `[]` to the text: to a union's last member.
            Ty::Union(mut members) if function.returns_set && !single_row => {
                if let Some(last) = members.pop() {
                    members.push(Ty::Array(Box::new(last)));
                }
                Ty::Union(members)
            }
            returns if function.returns_set && !single_row => Ty::Array(Box::new(returns)),
            returns => returns,
        };
        let mut members = vec![
            member("Args", false, args),
            member("Returns", false, returns),
        ];
        if let Some((from, to, one, set)) = setof {
            let flag = |b: bool| plain(if b { "true" } else { "false" });
            members.push(member(
                "SetofOptions",
                false,
                object(
                    vec![
                        member("from", false, Ty::Literal(from)),
                        member("to", false, Ty::Literal(to)),
                        member("isOneToOne", false, flag(one)),
                        member("isSetofReturn", false, flag(set)),
                    ],
                    true,
                ),
            ));
        }
        object(members, false)
    }
}

/// `Database["schema"]["group"]["name"]` and what follows.
fn reference(schema: &str, group: &str, name: &str, then: &str) -> Ty {
    Ty::Plain(format!(
        "Database[{}][\"{group}\"][{}]{then}",
        quote(schema),
        quote(name)
    ))
}

/// `format_type` of a row type as the generator names the source of an embedded function: the
/// bare name when its schema is on the search path, schema-qualified otherwise.
pub(super) fn source_format(ty: &PgType) -> String {
    ty.format.clone()
}
