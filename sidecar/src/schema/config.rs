//! Which schemas the REST API exposes (PostgREST's `db-schemas`), validated once at start-up.

use std::fmt;
use std::str::FromStr;

/// Schemas that hold Sluice's own machinery or Postgres's catalogs. Exposing them would publish
/// `auth.users`, the change log or the catalogs as REST resources, so they are refused outright, even
/// when asked for: privileges would still apply, but one mistaken GRANT should not become an API.
pub(crate) const INTERNAL_SCHEMAS: &[&str] = &[
    "auth",
    "sluice",
    "storage",
    "pg_catalog",
    "information_schema",
];

/// The exposed schemas, in the order given; the first is the default (PostgREST serves the others
/// through the `Accept-Profile`/`Content-Profile` headers). Never empty, no duplicates, no internal
/// schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposedSchemas(Vec<String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExposedSchemasError {
    #[error("no schema to expose: name at least one (the default is `public`)")]
    Empty,
    #[error(
        "an exposed schema name is empty; separate names with single commas, e.g. `public,api`"
    )]
    EmptyName,
    #[error(
        "the schema `{0}` cannot be exposed: it is internal to Sluice or Postgres (internal schemas: \
         auth, sluice, storage, pg_catalog, information_schema and any pg_* schema). Expose a schema \
         of your own and put views or functions there instead"
    )]
    Internal(String),
    #[error("the schema `{0}` is listed twice")]
    Duplicate(String),
}

impl ExposedSchemas {
    pub fn new<I, S>(names: I) -> Result<Self, ExposedSchemasError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut schemas: Vec<String> = Vec::new();
        for name in names {
            let name = name.into();
            if name.is_empty() {
                return Err(ExposedSchemasError::EmptyName);
            }
            if is_internal(&name) {
                return Err(ExposedSchemasError::Internal(name));
            }
            if schemas.contains(&name) {
                return Err(ExposedSchemasError::Duplicate(name));
            }
            schemas.push(name);
        }
        if schemas.is_empty() {
            return Err(ExposedSchemasError::Empty);
        }
        Ok(ExposedSchemas(schemas))
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// The schema a request without a profile header addresses.
    pub fn default_schema(&self) -> &str {
        &self.0[0]
    }

    pub fn contains(&self, schema: &str) -> bool {
        self.0.iter().any(|name| name == schema)
    }
}

/// Whether a schema may never be exposed. Names are compared exactly, as Postgres does for quoted
/// identifiers: `"Auth"` is a different schema from `auth`. `pg_*` names are reserved by Postgres
/// (`pg_toast`, `pg_temp_N`, ...).
pub(crate) fn is_internal(schema: &str) -> bool {
    INTERNAL_SCHEMAS.contains(&schema) || schema.starts_with("pg_")
}

impl Default for ExposedSchemas {
    fn default() -> Self {
        ExposedSchemas(vec!["public".to_owned()])
    }
}

/// A comma-separated list, as in PostgREST's `db-schemas`: `public, api`. Surrounding spaces are
/// ignored; a name is taken literally otherwise (no quote handling, no case folding).
impl FromStr for ExposedSchemas {
    type Err = ExposedSchemasError;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        ExposedSchemas::new(list.split(',').map(str::trim))
    }
}

impl fmt::Display for ExposedSchemas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_public() {
        let schemas = ExposedSchemas::default();
        assert_eq!(schemas.names(), ["public"]);
        assert_eq!(schemas.default_schema(), "public");
    }

    #[test]
    fn a_list_is_trimmed_and_keeps_its_order() {
        let schemas: ExposedSchemas = " api , public".parse().unwrap();
        assert_eq!(schemas.names(), ["api", "public"]);
        assert_eq!(schemas.default_schema(), "api");
        assert_eq!(schemas.to_string(), "api,public");
    }

    #[test]
    fn internal_schemas_are_refused_even_among_others() {
        for internal in INTERNAL_SCHEMAS.iter().chain(&["pg_toast", "pg_temp_3"]) {
            let list = format!("public,{internal}");
            assert_eq!(
                list.parse::<ExposedSchemas>(),
                Err(ExposedSchemasError::Internal((*internal).to_owned())),
                "{list}"
            );
        }
        let message = ExposedSchemas::new(["auth"]).unwrap_err().to_string();
        assert!(message.contains("`auth` cannot be exposed"), "{message}");
    }

    #[test]
    fn names_are_compared_exactly() {
        // A schema created as "Auth" is not Sluice's `auth`.
        assert!(ExposedSchemas::new(["Auth"]).is_ok());
    }

    #[test]
    fn empty_and_duplicate_names_are_refused() {
        assert_eq!(
            "".parse::<ExposedSchemas>(),
            Err(ExposedSchemasError::EmptyName)
        );
        assert_eq!(
            "public,,api".parse::<ExposedSchemas>(),
            Err(ExposedSchemasError::EmptyName)
        );
        assert_eq!(
            ExposedSchemas::new(Vec::<String>::new()),
            Err(ExposedSchemasError::Empty)
        );
        assert_eq!(
            "api,api".parse::<ExposedSchemas>(),
            Err(ExposedSchemasError::Duplicate("api".into()))
        );
    }
}
