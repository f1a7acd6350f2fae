//! `/bucket`: list, get, create, update, empty, delete, each one statement under the caller's
//! policies on storage.buckets.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_postgres::types::ToSql;

use super::{Call, StorageState};
use crate::db::tx::Access;
use crate::storage::key::check_bucket;
use crate::storage::sql::{self, Order, SortColumn};
use crate::storage::StorageError;

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    limit: Option<i64>,
    offset: Option<i64>,
    #[serde(rename = "sortColumn")]
    sort_column: Option<String>,
    #[serde(rename = "sortOrder")]
    sort_order: Option<String>,
    search: Option<String>,
}

pub(super) async fn list(
    State(state): State<StorageState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, StorageError> {
    let call = Call::new(&state, method, &uri, headers)?;
    let column = match query.sort_column.as_deref() {
        None => SortColumn::Name,
        Some("id") => SortColumn::Name,
        Some(column) => SortColumn::parse(column)
            .ok_or_else(|| StorageError::InvalidRequest(format!("invalid sortColumn {column}")))?,
    };
    let order = match query.sort_order.as_deref() {
        None => Order::Asc,
        Some(order) => Order::parse(order)
            .ok_or_else(|| StorageError::InvalidRequest(format!("invalid sortOrder {order}")))?,
    };
    let limit = query.limit.unwrap_or(i64::MAX).max(0);
    let offset = query.offset.unwrap_or(0).max(0);
    let search = query.search.unwrap_or_default();
    let statement = sql::list_buckets(column, order);
    let params: [&(dyn ToSql + Sync); 3] = [&limit, &offset, &search];
    let rows = state
        .storage
        .run_one(
            call.request(),
            "storage.bucket.list",
            Access::ReadOnly,
            &statement,
            &params,
        )
        .await?;
    Ok(Json(
        rows.first().map(|row| row.get(0)).unwrap_or(json!([])),
    ))
}

pub(super) async fn get(
    State(state): State<StorageState>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, StorageError> {
    let call = Call::new(&state, method, &uri, headers)?;
    let statement = sql::get_bucket();
    let params: [&(dyn ToSql + Sync); 1] = [&id];
    let rows = state
        .storage
        .run_one(
            call.request(),
            "storage.bucket.get",
            Access::ReadOnly,
            &statement,
            &params,
        )
        .await?;
    let row = rows.first().ok_or(StorageError::NoSuchBucket)?;
    Ok(Json(row.get(0)))
}

/// A bucket's settings as storage-js sends them (`undefined` fields are absent).
#[derive(Debug, Deserialize)]
pub(super) struct BucketBody {
    id: Option<String>,
    name: Option<String>,
    public: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    file_size_limit: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    allowed_mime_types: Option<Value>,
}

impl BucketBody {
    /// The size limit and the allowed types, checked; `None` where the body leaves them out or null.
    fn rules(&self) -> Result<(Option<i64>, Option<Vec<String>>), StorageError> {
        let limit = self
            .file_size_limit
            .as_ref()
            .map(size_limit)
            .transpose()?
            .flatten();
        let types = self
            .allowed_mime_types
            .as_ref()
            .map(mime_types)
            .transpose()?
            .flatten();
        Ok((limit, types))
    }
}

/// Tells "absent" (`None`) from "null" (`Some(Null)`).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

fn parse_body(body: &Bytes) -> Result<BucketBody, StorageError> {
    if body.is_empty() {
        return serde_json::from_str("{}")
            .map_err(|err| StorageError::InvalidRequest(err.to_string()));
    }
    serde_json::from_slice(body)
        .map_err(|err| StorageError::InvalidRequest(format!("invalid body: {err}")))
}

/// `file_size_limit`: a number of bytes, or a string such as "20MB" (B, KB, MB, GB); null: none.
fn size_limit(value: &Value) -> Result<Option<i64>, StorageError> {
    let invalid = || {
        StorageError::InvalidRequest(
            "Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B".to_owned(),
        )
    };
    match value {
        Value::Null => Ok(None),
        Value::Number(number) => number
            .as_i64()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(invalid),
        Value::String(text) => {
            let text = text.trim().to_ascii_uppercase();
            let digits: String = text.chars().take_while(|c| c.is_ascii_digit()).collect();
            let unit = text[digits.len()..].trim();
            let scale: i64 = match unit {
                "" | "B" => 1,
                "KB" => 1024,
                "MB" => 1024 * 1024,
                "GB" => 1024 * 1024 * 1024,
                _ => return Err(invalid()),
            };
            let number: i64 = digits.parse().map_err(|_| invalid())?;
            number.checked_mul(scale).map(Some).ok_or_else(invalid)
        }
        _ => Err(invalid()),
    }
}

fn mime_types(value: &Value) -> Result<Option<Vec<String>>, StorageError> {
    match value {
        Value::Null => Ok(None),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_owned).ok_or_else(|| {
                    StorageError::InvalidRequest("allowed_mime_types must be strings".to_owned())
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Err(StorageError::InvalidRequest(
            "allowed_mime_types must be an array".to_owned(),
        )),
    }
}

pub(super) async fn create(
    State(state): State<StorageState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, StorageError> {
    let call = Call::new(&state, method, &uri, headers)?;
    let body = parse_body(&body)?;
    // Read before the names move out of the body; refused in the same order as before.
    let rules = body.rules();
    let id = body
        .id
        .or(body.name.clone())
        .ok_or(StorageError::InvalidBucketName)?;
    check_bucket(&id)?;
    let name = body.name.unwrap_or_else(|| id.clone());
    check_bucket(&name)?;
    let public = body.public.unwrap_or(false);
    let (limit, types) = rules?;
    let owner = call
        .identity
        .claims
        .get("sub")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let statement = sql::create_bucket();
    let params: [&(dyn ToSql + Sync); 6] = [&id, &name, &owner, &public, &limit, &types];
    state
        .storage
        .run_one(
            call.request(),
            "storage.bucket.create",
            Access::ReadWrite,
            &statement,
            &params,
        )
        .await
        .map_err(|err| match err {
            StorageError::KeyAlreadyExists => StorageError::BucketAlreadyExists,
            err => err,
        })?;
    Ok(Json(json!({ "name": name })))
}

pub(super) async fn update(
    State(state): State<StorageState>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, StorageError> {
    let call = Call::new(&state, method, &uri, headers)?;
    let body = parse_body(&body)?;
    let (limit, types) = body.rules()?;
    let public = body.public.unwrap_or(false);
    let (set_public, set_limit, set_types) = (
        body.public.is_some(),
        body.file_size_limit.is_some(),
        body.allowed_mime_types.is_some(),
    );
    let params: [&(dyn ToSql + Sync); 7] = [
        &id,
        &public,
        &limit,
        &types,
        &set_public,
        &set_limit,
        &set_types,
    ];
    let rows = state
        .storage
        .run_one(
            call.request(),
            "storage.bucket.update",
            Access::ReadWrite,
            sql::UPDATE_BUCKET,
            &params,
        )
        .await?;
    if rows.is_empty() {
        return Err(StorageError::NoSuchBucket);
    }
    Ok(Json(json!({ "message": "Successfully updated" })))
}

pub(super) async fn empty(
    State(state): State<StorageState>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, StorageError> {
    let call = Call::new(&state, method, &uri, headers)?;
    state.storage.empty_bucket(call.request(), &id).await?;
    Ok(Json(json!({ "message": "Successfully emptied" })))
}

pub(super) async fn delete(
    State(state): State<StorageState>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, StorageError> {
    let call = Call::new(&state, method, &uri, headers)?;
    let params: [&(dyn ToSql + Sync); 1] = [&id];
    let rows = state
        .storage
        .run_one(
            call.request(),
            "storage.bucket.delete",
            Access::ReadWrite,
            sql::DELETE_BUCKET,
            &params,
        )
        .await
        .map_err(|err| match err {
            // Objects still reference it.
            StorageError::NoSuchBucket => StorageError::BucketNotEmpty,
            err => err,
        })?;
    if rows.is_empty() {
        return Err(StorageError::NoSuchBucket);
    }
    Ok(Json(json!({ "message": "Successfully deleted" })))
}
