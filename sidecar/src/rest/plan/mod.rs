//! A parsed read request resolved against the schema cache: every schema, table and column name
//! is checked to exist and carries what the SQL builder needs (the column's type from the catalog).
//! Pure: no I/O, no SQL text.
//!
//! Embeddings (`select=*,author(*)`) are resolved with `SchemaCache::relationships` into a tree
//! of nodes; filters, order and pages scoped to an embedding go to its node, and `order=rel(col)`
//! may order by a column of a to-one embedding.

mod fuzzy;
pub(crate) mod rpc;
#[cfg(test)]
pub(crate) mod tests;
pub(crate) mod write;

use super::error::{Candidate, RestError};
use super::parse::{
    AggregateFunction, Condition, Count, Direction, JoinType, JsonArrow, JsonStep, LogicOperator,
    LogicTree, MediaType, NullsOrder, Operation, Page, RestRequest, Scoped, SelectAggregate,
    SelectColumn, SelectItem,
};
use super::sql::ident;
use crate::schema::{Cardinality, SchemaCache, Table};

/// A `GET`/`HEAD` on a table or view, ready to become SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPlan {
    /// The requested relation, with its embeddings inside its `select`.
    pub root: Node,
    /// How to count the total for `Content-Range` (`Prefer: count=`), if asked.
    pub count: Option<TotalCount>,
    pub media: MediaType,
}

/// `Prefer: count=` resolved against the configuration, as PostgREST does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotalCount {
    /// `count(*)` of the filtered relation.
    Exact,
    /// The planner's estimate (`EXPLAIN`): cheap on any size, approximate.
    Planned,
    /// Exact up to `exact_up_to` rows (the `--max-rows` limit), the planner's estimate beyond.
    Estimated { exact_up_to: u64 },
}

/// One relation read at one level: the top level, or an embedding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub schema: String,
    pub table: String,
    pub select: Vec<Projection>,
    /// ANDed together.
    pub filters: Vec<Predicate>,
    pub order: Vec<Ordering>,
    /// At the top level, the request's page with `--max-rows` applied.
    pub page: Page,
}

/// A related relation embedded in its parent's rows (PostgREST's resource embedding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedPlan {
    /// The JSON key: the alias, else the name the client wrote.
    pub key: String,
    /// An object (or null) rather than an array.
    pub to_one: bool,
    /// `!inner`: parent rows without a matching row are dropped.
    pub inner: bool,
    pub link: Link,
    pub node: Node,
}

/// How a child row belongs to its parent row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// `(parent column, child column)` pairs that are equal.
    Direct(Vec<(String, String)>),
    /// Through a junction table: `(parent column, junction column)` and
    /// `(child column, junction column)` pairs.
    Junction {
        schema: String,
        table: String,
        parent: Vec<(String, String)>,
        child: Vec<(String, String)>,
    },
    /// A computed relationship: the child rows are what `schema.function(parent row)` returns.
    Computed { schema: String, function: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    /// Every column of the table.
    Star,
    Field {
        field: ResolvedField,
        /// The JSON key: the alias, else the last JSON key, else the column name.
        alias: String,
        /// Already quoted (`ident::cast_type`).
        cast: Option<String>,
    },
    Embed(Box<EmbedPlan>),
    /// `...rel(cols)`: the embedding's output columns become this node's (arrays of values for a
    /// to-many). Its node never selects `*` (expanded to the columns by the planner).
    Spread(Box<EmbedPlan>),
    /// `col.sum()`, `count()`: the node's rows are grouped by its other fields and embeddings.
    Aggregate {
        function: AggregateFunction,
        /// None for `count()`: `count(*)`.
        field: Option<ResolvedField>,
        /// Already quoted, like `cast`.
        input_cast: Option<String>,
        alias: String,
        cast: Option<String>,
    },
}

/// A column that exists, with an optional JSON path into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedField {
    pub column: String,
    /// The column's type under any domain, as `format_type` spells it (from the catalog).
    pub column_type: String,
    pub json_path: Vec<JsonStep>,
    /// A computed field: `(schema, function)` called with the row instead of a column read
    /// (`column` is then the function's name, `column_type` its result type).
    pub computed: Option<(String, String)>,
}

impl ResolvedField {
    /// The type a value compared with this field is cast to: the column's type, or, at the end
    /// of a JSON path, `text` after `->>` and `jsonb` after `->`.
    pub fn value_type(&self) -> &str {
        match self.json_path.last() {
            None => &self.column_type,
            Some(step) if step.arrow == JsonArrow::Text => "text",
            Some(_) => "jsonb",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predicate {
    Condition {
        field: ResolvedField,
        negated: bool,
        operation: Operation,
    },
    Group {
        negated: bool,
        operator: LogicOperator,
        children: Vec<Predicate>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ordering {
    /// A column of this node, or of `related`.
    pub field: ResolvedField,
    pub direction: Option<Direction>,
    pub nulls: Option<NullsOrder>,
    /// `order=author(name)`: the field belongs to a to-one embedding.
    pub related: Option<Related>,
}

/// The relation a related order reads from, and how it joins the ordered one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    pub schema: String,
    pub table: String,
    pub link: Link,
}

/// The schema a request addresses: its profile header if any, which must be exposed, else the
/// default (first exposed) schema.
/// The table or view a request names, in the schema its profile picks (`PGRST205` if none).
fn requested_table<'a>(
    cache: &'a SchemaCache,
    request: &RestRequest,
    relation: &str,
) -> Result<&'a Table, RestError> {
    let schema = schema_for(cache, request.profile.as_deref())?;
    cache
        .table(schema, relation)
        .ok_or_else(|| RestError::TableNotFound {
            schema: schema.to_owned(),
            table: relation.to_owned(),
        })
}

pub(crate) fn schema_for<'a>(
    cache: &'a SchemaCache,
    profile: Option<&'a str>,
) -> Result<&'a str, RestError> {
    match profile {
        None => Ok(cache.default_schema()),
        Some(schema) if cache.exposed_schemas().iter().any(|s| s == schema) => Ok(schema),
        Some(schema) => Err(RestError::SchemaNotExposed {
            schema: schema.to_owned(),
            exposed: cache.exposed_schemas().to_vec(),
        }),
    }
}

/// Resolves a read of `relation` against `cache`.
pub(crate) fn plan_read(
    cache: &SchemaCache,
    relation: &str,
    request: RestRequest,
    max_rows: Option<u64>,
) -> Result<ReadPlan, RestError> {
    let table = requested_table(cache, &request, relation)?;
    let mut page = request.page;
    if let Some(max) = max_rows {
        page.limit = Some(page.limit.map_or(max, |limit| limit.min(max)));
    }
    let mut planner = Planner {
        cache,
        request: &request,
        paths: vec![Vec::new()],
        aggregates: request.aggregates_enabled || cache.aggregates_enabled(),
    };
    let root = planner.node(table, &request.select, &Vec::new(), page)?;
    planner.check_paths()?;
    Ok(ReadPlan {
        root,
        count: request.prefer.count.map(|count| match (count, max_rows) {
            (Count::Exact, _) | (Count::Estimated, None) => TotalCount::Exact,
            (Count::Planned, _) => TotalCount::Planned,
            (Count::Estimated, Some(max)) => TotalCount::Estimated { exact_up_to: max },
        }),
        media: request.media,
    })
}

/// An embed path as planned: each level's `(alias, relation)`; a client may name a level by
/// either.
type NamedPath = Vec<(Option<String>, String)>;

struct Planner<'a> {
    cache: &'a SchemaCache,
    request: &'a RestRequest,
    /// Every node planned so far, so that a filter on an embedding that is not selected is an
    /// error rather than ignored.
    paths: Vec<NamedPath>,
    /// `db-aggregates-enabled`: by the server's flag or the database's setting.
    aggregates: bool,
}

fn path_matches(written: &[String], planned: &NamedPath) -> bool {
    written.len() == planned.len()
        && written
            .iter()
            .zip(planned)
            .all(|(name, (alias, relation))| alias.as_ref() == Some(name) || relation == name)
}

impl<'a> Planner<'a> {
    fn node(
        &mut self,
        table: &Table,
        select: &[SelectItem],
        path: &NamedPath,
        page: Page,
    ) -> Result<Node, RestError> {
        let request = self.request;
        let here = |written: &Vec<String>| path_matches(written, path);
        let mut projections = Vec::with_capacity(select.len());
        for item in select {
            projections.push(match item {
                SelectItem::Star => Projection::Star,
                SelectItem::Column(column) if self.is_embedded_count(table, column, path) => {
                    self.aggregate(table, &count_of_rows(column))?
                }
                SelectItem::Column(column) => projection(Some(self.cache), table, column)?,
                SelectItem::Aggregate(aggregate) => self.aggregate(table, aggregate)?,
                SelectItem::Spread(embed) => {
                    let mut planned = self.embed(table, embed, path)?;
                    let foreign = self.cache.table(&planned.node.schema, &planned.node.table);
                    if let Some(foreign) = foreign {
                        expand_star(&mut planned.node, foreign);
                    }
                    Projection::Spread(Box::new(planned))
                }
                SelectItem::Embed(embed) => {
                    let planned = self.embed(table, embed, path)?;
                    check_unique_embed(&projections, &planned, table, path.len() + 1)?;
                    Projection::Embed(Box::new(planned))
                }
            });
        }
        let mut filters = Vec::new();
        for Scoped { item, .. } in request.filters.iter().filter(|s| here(&s.path)) {
            filters.push(condition_in(Some(self.cache), table, item)?);
        }
        for Scoped { item, .. } in request.logic.iter().filter(|s| here(&s.path)) {
            filters.push(tree_in(Some(self.cache), table, item)?);
        }
        let mut order = Vec::new();
        for Scoped { item: terms, .. } in request.order.iter().filter(|s| here(&s.path)) {
            for term in terms {
                let (field, related) = match &term.relation {
                    None => (resolve_in(Some(self.cache), table, &term.field)?, None),
                    Some(name) => self.related_field(&projections, name, &term.field)?,
                };
                order.push(Ordering {
                    field,
                    direction: term.direction,
                    nulls: term.nulls,
                    related,
                });
            }
        }
        Ok(Node {
            schema: table.schema.clone(),
            table: table.name.clone(),
            select: projections,
            filters,
            order,
            page,
        })
    }

    fn embed(
        &mut self,
        table: &Table,
        embed: &super::parse::Embed,
        path: &NamedPath,
    ) -> Result<EmbedPlan, RestError> {
        let computed = match embed.hint {
            None => self
                .cache
                .computed_relationship(&table.schema, table, &embed.relation),
            Some(_) => None,
        };
        let (foreign, link, to_one) = match computed {
            Some((function, foreign)) => (
                foreign,
                Link::Computed {
                    schema: function.schema.clone(),
                    function: function.name.clone(),
                },
                function.single_row,
            ),
            None => self.detected(table, embed)?,
        };
        let mut child_path = path.clone();
        child_path.push((embed.alias.clone(), embed.relation.clone()));
        let page = self
            .request
            .embedded_pages
            .iter()
            .find(|s| path_matches(&s.path, &child_path))
            .map(|s| s.item)
            .unwrap_or_default();
        self.paths.push(child_path.clone());
        let node = self.node(foreign, &embed.select, &child_path, page)?;
        Ok(EmbedPlan {
            key: embed
                .alias
                .clone()
                .unwrap_or_else(|| embed.relation.clone()),
            to_one,
            inner: embed.join == Some(JoinType::Inner),
            link,
            node,
        })
    }

    /// The one relationship from foreign keys `embed` names (PGRST200 if none, PGRST201 if
    /// several); those a computed relationship named as the foreign table overrides do not count.
    fn detected(
        &self,
        table: &Table,
        embed: &super::parse::Embed,
    ) -> Result<(&'a Table, Link, bool), RestError> {
        let cache: &'a SchemaCache = self.cache;
        let mut candidates = cache.relationships(
            &table.schema,
            &table.name,
            &embed.relation,
            embed.hint.as_deref(),
        );
        candidates.retain(|rel| {
            cache
                .computed_relationship(&rel.foreign_table.schema, table, &rel.foreign_table.name)
                .is_none()
        });
        let relationship = match candidates.as_slice() {
            [one] => *one,
            [] => return Err(self.not_found(table, embed)),
            several => {
                return Err(RestError::AmbiguousRelationship {
                    table: table.name.clone(),
                    target: embed.relation.clone(),
                    candidates: several.iter().map(|rel| describe(rel)).collect(),
                })
            }
        };
        let foreign = cache
            .table(
                &relationship.foreign_table.schema,
                &relationship.foreign_table.name,
            )
            .ok_or_else(|| self.not_found(table, embed))?;
        let (link, to_one) = match &relationship.cardinality {
            Cardinality::ManyToOne { columns, .. } | Cardinality::OneToOne { columns, .. } => {
                (Link::Direct(columns.clone()), true)
            }
            Cardinality::OneToMany { columns, .. } => (Link::Direct(columns.clone()), false),
            Cardinality::ManyToMany(junction) => (
                Link::Junction {
                    schema: junction.table.schema.clone(),
                    table: junction.table.name.clone(),
                    parent: junction.columns.clone(),
                    child: junction.foreign_columns.clone(),
                },
                false,
            ),
        };
        Ok((foreign, link, to_one))
    }

    /// `rel(count)`: inside an embedding, `count` that is no column (or computed field) of the
    /// table counts its rows, as PostgREST reads it.
    fn is_embedded_count(&self, table: &Table, column: &SelectColumn, path: &NamedPath) -> bool {
        !path.is_empty()
            && column.field.name == "count"
            && column.field.json_path.is_empty()
            && column.cast.is_none()
            && table.column("count").is_none()
            && self.cache.computed_field(table, "count").is_none()
    }

    /// An aggregate, refused (PGRST123) unless aggregates are enabled.
    fn aggregate(
        &self,
        table: &Table,
        aggregate: &SelectAggregate,
    ) -> Result<Projection, RestError> {
        if !self.aggregates {
            return Err(RestError::AggregatesDisabled);
        }
        let field = aggregate
            .field
            .as_ref()
            .map(|field| resolve_in(Some(self.cache), table, field))
            .transpose()?;
        Ok(Projection::Aggregate {
            function: aggregate.function,
            field,
            input_cast: checked_cast(aggregate.input_cast.as_deref())?,
            alias: aggregate
                .alias
                .clone()
                .unwrap_or_else(|| aggregate.function.name().to_owned()),
            cast: checked_cast(aggregate.cast.as_deref())?,
        })
    }

    /// PGRST200, with PostgREST's suggestion: a close table name for the parent when it has no
    /// relationships at all (from foreign keys or functions), else a close name among the tables
    /// it relates to.
    fn not_found(&self, table: &Table, embed: &super::parse::Embed) -> RestError {
        let schema = &table.schema;
        let related: Vec<&str> = self
            .cache
            .relationships_from(schema, &table.name)
            .iter()
            .filter(|rel| &rel.foreign_table.schema == schema)
            .map(|rel| rel.foreign_table.name.as_str())
            .chain(
                self.cache
                    .computed_targets(table)
                    .map(|target| target.name.as_str()),
            )
            .collect();
        let suggestion = if related.is_empty() {
            let parents = self
                .cache
                .schema(schema)
                .into_iter()
                .flat_map(|objects| objects.relationships.keys().map(String::as_str));
            fuzzy::closest(parents, &table.name, false)
                .map(|parent| format!("Perhaps you meant '{parent}' instead of '{}'.", table.name))
        } else {
            fuzzy::closest(related, &embed.relation, true).map(|child| {
                format!(
                    "Perhaps you meant '{child}' instead of '{}'.",
                    embed.relation
                )
            })
        };
        RestError::RelationshipNotFound {
            schema: schema.clone(),
            table: table.name.clone(),
            target: embed.relation.clone(),
            hint: embed.hint.clone(),
            suggestion,
        }
    }

    /// `order=name(field)`: `name` must be a to-one embedding of this node, by key or relation.
    fn related_field(
        &self,
        projections: &[Projection],
        name: &str,
        field: &super::parse::Field,
    ) -> Result<(ResolvedField, Option<Related>), RestError> {
        let embed = projections.iter().find_map(|projection| match projection {
            Projection::Embed(embed) if embed.key == name || embed.node.table == name => {
                Some(embed)
            }
            _ => None,
        });
        let Some(embed) = embed.filter(|embed| embed.to_one) else {
            return Err(RestError::RelatedOrderNotToOne {
                relation: name.to_owned(),
            });
        };
        let table = self
            .cache
            .table(&embed.node.schema, &embed.node.table)
            .ok_or_else(|| RestError::RelatedOrderNotToOne {
                relation: name.to_owned(),
            })?;
        Ok((
            resolve_in(Some(self.cache), table, field)?,
            Some(Related {
                schema: embed.node.schema.clone(),
                table: embed.node.table.clone(),
                link: embed.link.clone(),
            }),
        ))
    }

    /// Every filter, order and page scoped to an embedding must name one that is selected.
    fn check_paths(&self) -> Result<(), RestError> {
        let request = self.request;
        let written = request
            .filters
            .iter()
            .map(|s| &s.path)
            .chain(request.logic.iter().map(|s| &s.path))
            .chain(request.order.iter().map(|s| &s.path))
            .chain(request.embedded_pages.iter().map(|s| &s.path));
        for path in written {
            if !self.paths.iter().any(|planned| path_matches(path, planned)) {
                return Err(RestError::UnknownEmbedPath {
                    path: path.join("."),
                });
            }
        }
        Ok(())
    }
}

/// Two embeddings at one level may not share their name (alias, else relation): PostgREST's
/// query would name both subqueries `<parent>_<name>_<depth>`, which Postgres refuses (42712).
fn check_unique_embed(
    earlier: &[Projection],
    embed: &EmbedPlan,
    parent: &Table,
    depth: usize,
) -> Result<(), RestError> {
    let clash = earlier
        .iter()
        .any(|projection| matches!(projection, Projection::Embed(other) if other.key == embed.key));
    if clash {
        return Err(RestError::DuplicateEmbed {
            alias: format!("{}_{}_{depth}", parent.name, embed.key),
        });
    }
    Ok(())
}

/// A relationship as PGRST201 lists it.
fn describe(relationship: &crate::schema::Relationship) -> Candidate {
    let (table, foreign) = (&relationship.table.name, &relationship.foreign_table.name);
    let list = |columns: &mut dyn Iterator<Item = &String>| {
        columns.map(String::as_str).collect::<Vec<_>>().join(", ")
    };
    let (cardinality, relationship_text, hint) = match &relationship.cardinality {
        Cardinality::ManyToMany(junction) => (
            "many-to-many",
            format!(
                "{} using {}({}) and {}({})",
                junction.table.name,
                junction.constraint,
                list(&mut junction.columns.iter().map(|(_, its)| its)),
                junction.foreign_constraint,
                list(&mut junction.foreign_columns.iter().map(|(_, its)| its)),
            ),
            junction.table.name.clone(),
        ),
        Cardinality::ManyToOne {
            constraint,
            columns,
        }
        | Cardinality::OneToMany {
            constraint,
            columns,
        }
        | Cardinality::OneToOne {
            constraint,
            columns,
            ..
        } => (
            match &relationship.cardinality {
                Cardinality::ManyToOne { .. } => "many-to-one",
                Cardinality::OneToMany { .. } => "one-to-many",
                _ => "one-to-one",
            },
            format!(
                "{constraint} using {table}({}) and {foreign}({})",
                list(&mut columns.iter().map(|(ours, _)| ours)),
                list(&mut columns.iter().map(|(_, theirs)| theirs)),
            ),
            constraint.clone(),
        ),
    };
    Candidate {
        cardinality,
        embedding: format!("{table} with {foreign}"),
        relationship: relationship_text,
        hint: format!("{foreign}!{hint}"),
    }
}

/// `count` in `rel(count)` as the `count()` it means.
fn count_of_rows(column: &SelectColumn) -> SelectAggregate {
    SelectAggregate {
        alias: column.alias.clone(),
        function: AggregateFunction::Count,
        field: None,
        input_cast: None,
        cast: None,
    }
}

/// A spread's `*` as each column of its table, so that its output keys are known.
fn expand_star(node: &mut Node, table: &Table) {
    if !node.select.contains(&Projection::Star) {
        return;
    }
    let mut expanded = Vec::with_capacity(node.select.len() + table.columns.len());
    for projection in node.select.drain(..) {
        if projection != Projection::Star {
            expanded.push(projection);
            continue;
        }
        expanded.extend(table.columns.iter().map(|column| Projection::Field {
            field: ResolvedField {
                column: column.name.clone(),
                column_type: column.base_type.clone(),
                json_path: Vec::new(),
                computed: None,
            },
            alias: column.name.clone(),
            cast: None,
        }));
    }
    node.select = expanded;
}

fn checked_cast(cast: Option<&str>) -> Result<Option<String>, RestError> {
    cast.map(|cast| {
        ident::cast_type(cast).ok_or_else(|| RestError::InvalidCast {
            cast: cast.to_owned(),
        })
    })
    .transpose()
}

fn projection(
    cache: Option<&SchemaCache>,
    table: &Table,
    column: &SelectColumn,
) -> Result<Projection, RestError> {
    let field = resolve_in(cache, table, &column.field)?;
    let cast = column
        .cast
        .as_deref()
        .map(|cast| {
            ident::cast_type(cast).ok_or_else(|| RestError::InvalidCast {
                cast: cast.to_owned(),
            })
        })
        .transpose()?;
    let alias = column
        .alias
        .clone()
        .unwrap_or_else(|| default_alias(&field));
    Ok(Projection::Field { field, alias, cast })
}

/// PostgREST names `data->a->>b` after its last key; an index step keeps the previous name.
fn default_alias(field: &ResolvedField) -> String {
    field
        .json_path
        .iter()
        .rev()
        .find_map(|step| match &step.operand {
            super::parse::JsonOperand::Key(key) => Some(key.clone()),
            super::parse::JsonOperand::Index(_) => None,
        })
        .unwrap_or_else(|| field.column.clone())
}

/// A column of `table`, or with the cache, a computed field of it.
fn resolve_in(
    cache: Option<&SchemaCache>,
    table: &Table,
    field: &super::parse::Field,
) -> Result<ResolvedField, RestError> {
    if let Some(column) = table.column(&field.name) {
        return Ok(ResolvedField {
            column: column.name.clone(),
            column_type: column.base_type.clone(),
            json_path: field.json_path.clone(),
            computed: None,
        });
    }
    match cache.and_then(|cache| cache.computed_field(table, &field.name)) {
        Some(function) => Ok(ResolvedField {
            column: function.name.clone(),
            column_type: function.return_type.clone(),
            json_path: field.json_path.clone(),
            computed: Some((function.schema.clone(), function.name.clone())),
        }),
        None => Err(RestError::ColumnNotFound {
            table: table.name.clone(),
            column: field.name.clone(),
        }),
    }
}

fn condition(table: &Table, condition: &Condition) -> Result<Predicate, RestError> {
    condition_in(None, table, condition)
}

fn condition_in(
    cache: Option<&SchemaCache>,
    table: &Table,
    condition: &Condition,
) -> Result<Predicate, RestError> {
    Ok(Predicate::Condition {
        field: resolve_in(cache, table, &condition.field)?,
        negated: condition.negated,
        operation: condition.operation.clone(),
    })
}

fn tree(table: &Table, tree_: &LogicTree) -> Result<Predicate, RestError> {
    tree_in(None, table, tree_)
}

fn tree_in(
    cache: Option<&SchemaCache>,
    table: &Table,
    tree_: &LogicTree,
) -> Result<Predicate, RestError> {
    match tree_ {
        LogicTree::Condition(c) => condition_in(cache, table, c),
        LogicTree::Group {
            negated,
            operator,
            children,
        } => Ok(Predicate::Group {
            negated: *negated,
            operator: *operator,
            children: children
                .iter()
                .map(|child| tree_in(cache, table, child))
                .collect::<Result<_, _>>()?,
        }),
    }
}
