//! Auth hooks: SQL functions the operator names, called at fixed points of a flow, as Supabase's
//! Postgres-function hooks. One so far, GoTrue's custom access token hook
//! (`SLUICE_AUTH_HOOK_CUSTOM_ACCESS_TOKEN_URI=pg-functions://postgres/<schema>/<function>`): it
//! gets `{user_id, claims, authentication_method}` before an access token is signed and returns
//! `{claims}` (the claims to sign) or `{error: {http_code, message}}` (the flow fails with it).
//!
//! As GoTrue, the returned claims must still hold the claims clients rely on (`aud`, `exp`, `iat`,
//! `sub`, `email`, `phone`, `role`, `aal`, `session_id`, `is_anonymous`, with their types), else the
//! token is not issued (500). The function runs as `service_role` (GoTrue runs it as
//! `supabase_auth_admin`, which Sluice has not), in its own transaction with a 2 s statement
//! timeout, so a slow hook cannot hold sign-ins.

use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::store::StoreError;
use super::AccountError;
use crate::cli::quote_ident;
use crate::db::{DbError, Pool};

/// How long the hook may run (GoTrue's default for Postgres hooks).
const HOOK_TIMEOUT: &str = "2s";

/// A configured custom access token hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenHook {
    pub uri: String,
    /// `"schema"."function"`, quoted.
    function: String,
}

/// Why a hook URI is refused at start-up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}: expected pg-functions://postgres/<schema>/<function>")]
pub struct BadHookUri(String);

impl AccessTokenHook {
    pub fn from_uri(uri: &str) -> Result<AccessTokenHook, BadHookUri> {
        let bad = || BadHookUri(uri.to_owned());
        let rest = uri.strip_prefix("pg-functions://").ok_or_else(bad)?;
        let parts: Vec<&str> = rest.split('/').collect();
        let [_database, schema, function] = parts.as_slice() else {
            return Err(bad());
        };
        if schema.is_empty() || function.is_empty() {
            return Err(bad());
        }
        Ok(AccessTokenHook {
            uri: uri.to_owned(),
            function: format!("{}.{}", quote_ident(schema), quote_ident(function)),
        })
    }

    /// The claims to sign: `claims` as the hook changed them.
    pub(crate) async fn run(
        &self,
        pool: &Pool,
        user_id: Uuid,
        claims: Value,
        method: &str,
    ) -> Result<Map<String, Value>, AccountError> {
        let input = json!({
            "user_id": user_id.to_string(),
            "claims": claims,
            "authentication_method": method,
        });
        let output = self.call(pool, &input).await.map_err(|err| {
            tracing::warn!("custom access token hook {} failed: {err}", self.uri);
            AccountError::Hook {
                status: 500,
                message: format!("Error running hook URI: {}", self.uri),
            }
        })?;
        claims_from_output(output)
    }

    async fn call(&self, pool: &Pool, input: &Value) -> Result<Option<Value>, StoreError> {
        let mut client = pool.get().await.map_err(DbError::from)?;
        let tx = client.transaction().await?;
        tx.batch_execute(&format!(
            "SET LOCAL ROLE service_role; SET LOCAL statement_timeout = '{HOOK_TIMEOUT}'"
        ))
        .await?;
        let sql = format!("SELECT {}($1::jsonb)::jsonb", self.function);
        let row = tx.query_one(&sql, &[input]).await?;
        let output: Option<Value> = row.get(0);
        tx.commit().await?;
        Ok(output)
    }
}

/// GoTrue's reading of a hook's answer.
fn claims_from_output(output: Option<Value>) -> Result<Map<String, Value>, AccountError> {
    let failed = |message: String| AccountError::Hook {
        status: 500,
        message,
    };
    let mut output = match output {
        Some(Value::Object(output)) => output,
        _ => return Err(failed("output claims field is missing".into())),
    };
    if let Some(error) = output.get("error").filter(|error| !error.is_null()) {
        let status = error["http_code"]
            .as_u64()
            .and_then(|code| u16::try_from(code).ok())
            .filter(|code| (400..600).contains(code))
            .unwrap_or(500);
        let message = error["message"].as_str().unwrap_or("Hook error").to_owned();
        return Err(AccountError::Hook { status, message });
    }
    let claims = match output.remove("claims") {
        None => return Err(failed("output claims field is missing".into())),
        Some(Value::Object(claims)) => claims,
        Some(_) => Map::new(),
    };
    let problems = schema_problems(&claims);
    if !problems.is_empty() {
        return Err(failed(format!(
            "output claims do not conform to the expected schema: \n{}",
            problems.join("\n")
        )));
    }
    Ok(claims)
}

/// What GoTrue's minimum token schema finds wrong with `claims`.
fn schema_problems(claims: &Map<String, Value>) -> Vec<String> {
    const REQUIRED: [&str; 10] = [
        "aud",
        "exp",
        "iat",
        "sub",
        "email",
        "phone",
        "role",
        "aal",
        "session_id",
        "is_anonymous",
    ];
    let mut problems: Vec<String> = REQUIRED
        .iter()
        .filter(|name| !claims.contains_key(**name))
        .map(|name| format!("- {name}: {name} is required"))
        .collect();
    for (name, value) in claims {
        let ok = match name.as_str() {
            "aud" => value.is_string() || value.is_array(),
            "exp" | "iat" | "nbf" => value.is_i64() || value.is_u64(),
            "jti" | "iss" | "sub" | "email" | "phone" | "role" | "aal" | "session_id"
            | "client_id" => value.is_string(),
            "app_metadata" | "user_metadata" => value.is_object(),
            "amr" => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_object)),
            _ => true,
        };
        if !ok {
            problems.push(format!("- {name}: Invalid type."));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Value {
        json!({
            "aud": "authenticated", "exp": 2, "iat": 1, "sub": "u", "email": "", "phone": "",
            "role": "authenticated", "aal": "aal1", "session_id": "s", "is_anonymous": false,
            "amr": [{"method": "password", "timestamp": 1}],
        })
    }

    fn status_message(err: AccountError) -> (u16, String) {
        match err {
            AccountError::Hook { status, message } => (status, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn uris_name_a_schema_and_a_function() {
        let hook = AccessTokenHook::from_uri("pg-functions://postgres/public/custom_hook").unwrap();
        assert_eq!(hook.function, "\"public\".\"custom_hook\"");
        let odd = AccessTokenHook::from_uri("pg-functions://postgres/a\"b/f").unwrap();
        assert_eq!(odd.function, "\"a\"\"b\".\"f\"");
        for bad in [
            "https://example.com/hook",
            "pg-functions://postgres/public",
            "pg-functions://postgres//f",
            "pg-functions://postgres/a/b/c",
        ] {
            assert!(AccessTokenHook::from_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn outputs_are_read_as_gotrue_reads_them() {
        let mut added = claims();
        added["user_role"] = json!("admin");
        let out = claims_from_output(Some(json!({ "claims": added }))).unwrap();
        assert_eq!(out["user_role"], "admin");

        let (status, message) = status_message(
            claims_from_output(Some(json!({"error": {"http_code": 403, "message": "no"}})))
                .unwrap_err(),
        );
        assert_eq!((status, message.as_str()), (403, "no"));
        let (status, message) = status_message(claims_from_output(None).unwrap_err());
        assert_eq!(
            (status, message.as_str()),
            (500, "output claims field is missing")
        );
        let (_, message) =
            status_message(claims_from_output(Some(json!({"claims": {}}))).unwrap_err());
        assert!(message.contains("sub is required"), "{message}");
        let mut wrong = claims();
        wrong["exp"] = json!("soon");
        let (_, message) =
            status_message(claims_from_output(Some(json!({ "claims": wrong }))).unwrap_err());
        assert!(message.contains("exp: Invalid type"), "{message}");
    }
}
