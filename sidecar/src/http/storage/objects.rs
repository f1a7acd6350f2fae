//! `/object/...`: upload (raw body or multipart form), update, info, remove, list, list-v2, move
//! and copy.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Request as HttpRequest, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::Json;
use base64::Engine;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_postgres::types::ToSql;

use super::body::SharedBody;
use super::{Call, StorageState};
use crate::db::tx::{Access, End, Statement};
use crate::storage::key::{check_bucket, check_prefix};
use crate::storage::sql::{self, Order, SortColumn};
use crate::storage::{SignedUpload, StorageError, UploadMeta, UploadMode};

/// storage-js's default content type for a raw body.
const DEFAULT_CONTENT_TYPE: &str = "text/plain;charset=UTF-8";
const DEFAULT_CACHE_CONTROL: &str = "max-age=3600";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn is_multipart(headers: &HeaderMap) -> bool {
    header(headers, CONTENT_TYPE.as_str())
        .is_some_and(|value| value.starts_with("multipart/form-data"))
}

/// `x-upsert: true`.
fn upsert(headers: &HeaderMap) -> bool {
    header(headers, "x-upsert").is_some_and(|value| value.eq_ignore_ascii_case("true"))
}

/// `cacheControl` as storage-js sends it in a form ("3600") becomes a header value.
fn cache_control_from_form(value: &str) -> String {
    if value.chars().all(|c| c.is_ascii_digit()) && !value.is_empty() {
        format!("max-age={value}")
    } else {
        value.to_owned()
    }
}

fn user_metadata(text: &str) -> Result<Value, StorageError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|_| StorageError::InvalidRequest("metadata must be a JSON object".to_owned()))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(StorageError::InvalidRequest(
            "metadata must be a JSON object".to_owned(),
        ))
    }
}

/// Streams the request's file to the service: a raw body with its headers, or the form field
/// named "" (storage-js's) of a multipart body, after its `cacheControl` and `metadata` fields.
pub(super) async fn store(
    state: &StorageState,
    call: &Call,
    bucket: &str,
    name: &str,
    mode: UploadMode,
    signed: Option<SignedUpload>,
    request: HttpRequest,
) -> Result<String, StorageError> {
    let headers = &call.headers;
    if !is_multipart(headers) {
        let metadata = match header(headers, "x-metadata") {
            Some(encoded) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|_| {
                        StorageError::InvalidRequest("x-metadata must be base64".to_owned())
                    })?;
                Some(user_metadata(&String::from_utf8_lossy(&decoded))?)
            }
            None => None,
        };
        let meta = UploadMeta {
            content_type: header(headers, CONTENT_TYPE.as_str())
                .unwrap_or(DEFAULT_CONTENT_TYPE)
                .to_owned(),
            cache_control: header(headers, CACHE_CONTROL.as_str())
                .unwrap_or(DEFAULT_CACHE_CONTROL)
                .to_owned(),
            user_metadata: metadata,
            content_length: header(headers, CONTENT_LENGTH.as_str()).and_then(|v| v.parse().ok()),
        };
        let body = request.into_body().into_data_stream();
        return state
            .storage
            .upload(call.request(), bucket, name, mode, meta, signed, body)
            .await;
    }
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|err| StorageError::InvalidRequest(err.body_text()))?;
    let mut cache_control = DEFAULT_CACHE_CONTROL.to_owned();
    let mut metadata = None;
    loop {
        let field = form
            .next_field()
            .await
            .map_err(|err| StorageError::InvalidRequest(err.body_text()))?
            .ok_or_else(|| StorageError::InvalidRequest("No content provided".to_owned()))?;
        match field.name().unwrap_or("") {
            "cacheControl" => {
                let text = field
                    .text()
                    .await
                    .map_err(|err| StorageError::InvalidRequest(err.body_text()))?;
                cache_control = cache_control_from_form(&text);
            }
            "metadata" => {
                let text = field
                    .text()
                    .await
                    .map_err(|err| StorageError::InvalidRequest(err.body_text()))?;
                metadata = Some(user_metadata(&text)?);
            }
            "" => {
                let meta = UploadMeta {
                    content_type: field
                        .content_type()
                        .unwrap_or("application/octet-stream")
                        .to_owned(),
                    cache_control,
                    user_metadata: metadata,
                    content_length: None,
                };
                let body = field.boxed();
                return state
                    .storage
                    .upload(call.request(), bucket, name, mode, meta, signed, body)
                    .await;
            }
            // Other fields are ignored, as Supabase does.
            _ => {}
        }
    }
}

/// `POST /object/{bucket}/{name}`: a new object, or with `x-upsert: true` a replacement.
pub(super) async fn upload(
    State(state): State<StorageState>,
    Path((bucket, name)): Path<(String, String)>,
    request: HttpRequest,
) -> Result<Json<Value>, Response> {
    let mode = if upsert(request.headers()) {
        UploadMode::Upsert
    } else {
        UploadMode::Create
    };
    let id = store_request(&state, &bucket, &name, mode, None, request).await?;
    Ok(Json(json!({ "Id": id, "Key": format!("{bucket}/{name}") })))
}

/// `PUT /object/{bucket}/{name}`: replaces an existing object.
pub(super) async fn update(
    State(state): State<StorageState>,
    Path((bucket, name)): Path<(String, String)>,
    request: HttpRequest,
) -> Result<Json<Value>, Response> {
    let id = store_request(&state, &bucket, &name, UploadMode::Update, None, request).await?;
    Ok(Json(json!({ "Id": id, "Key": format!("{bucket}/{name}") })))
}

/// Runs the upload of `request`; a refusal comes after the rest of the body is discarded.
/// `signed`: the upload a signed URL allows (the request's own Authorization is then ignored).
pub(super) async fn store_request(
    state: &StorageState,
    bucket: &str,
    name: &str,
    mode: UploadMode,
    signed: Option<SignedUpload>,
    request: HttpRequest,
) -> Result<String, Response> {
    let (mut parts, body) = request.into_parts();
    let body = SharedBody::new(body);
    if signed.is_some() {
        parts.headers.remove(axum::http::header::AUTHORIZATION);
    }
    let result = match Call::new(
        state,
        parts.method.clone(),
        &parts.uri,
        parts.headers.clone(),
    ) {
        Ok(call) => {
            let request = HttpRequest::from_parts(parts, body.body());
            store(state, &call, bucket, name, mode, signed, request).await
        }
        Err(err) => Err(err),
    };
    match result {
        Ok(id) => Ok(id),
        Err(err) => Err(body.refuse(err).await),
    }
}

pub(super) async fn info(
    State(state): State<StorageState>,
    Path((bucket, name)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, StorageError> {
    let call = Call::new(&state, method, &uri, headers)?;
    check_bucket(&bucket)?;
    let params: [&(dyn ToSql + Sync); 2] = [&bucket, &name];
    let rows = state
        .storage
        .run_one(
            call.request(),
            "storage.object.info",
            Access::ReadOnly,
            sql::OBJECT_INFO,
            &params,
        )
        .await?;
    let row = rows.first().ok_or(StorageError::NoSuchKey)?;
    Ok(Json(row.get(0)))
}

/// `GET /object/info/public/{bucket}/{name}`: the info of an object of a public bucket, without a
/// token or a SELECT policy (as public downloads); a private bucket's objects are not found.
pub(super) async fn info_public(
    State(state): State<StorageState>,
    Path((bucket, name)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, StorageError> {
    let call = Call::new(&state, method, &uri, headers)?;
    check_bucket(&bucket)?;
    let params: [&(dyn ToSql + Sync); 2] = [&bucket, &name];
    let mut rows = state
        .storage
        .run(
            call.request(),
            true,
            "storage.object.info",
            Access::ReadOnly,
            End::Commit,
            &[Statement {
                sql: sql::PUBLIC_OBJECT_INFO,
                params: &params,
            }],
        )
        .await?;
    let rows = rows.pop().unwrap_or_default();
    let row = rows.first().ok_or(StorageError::NoSuchKey)?;
    Ok(Json(row.get(0)))
}

fn json_body<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, StorageError> {
    serde_json::from_slice(body)
        .map_err(|err| StorageError::InvalidRequest(format!("invalid body: {err}")))
}

#[derive(Debug, Deserialize)]
struct RemoveBody {
    prefixes: Vec<String>,
}

/// `DELETE /object/{bucket}` with `{prefixes}`: the objects removed.
pub(super) async fn remove(
    State(state): State<StorageState>,
    Path(bucket): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, StorageError> {
    let call = Call::new(&state, method, &uri, headers)?;
    let body: RemoveBody = json_body(&body)?;
    if body.prefixes.is_empty() || body.prefixes.len() > 1000 {
        return Err(StorageError::InvalidRequest(
            "prefixes must list 1 to 1000 names".to_owned(),
        ));
    }
    let removed = state
        .storage
        .remove(call.request(), &bucket, &body.prefixes)
        .await?;
    Ok(Json(Value::Array(removed)))
}

#[derive(Debug, Deserialize)]
struct SortBy {
    column: Option<String>,
    order: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ListBody {
    prefix: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
    #[serde(rename = "sortBy")]
    sort_by: Option<SortBy>,
    search: Option<String>,
}

fn sort(sort_by: Option<&SortBy>) -> Result<(SortColumn, Order), StorageError> {
    let column = match sort_by.and_then(|s| s.column.as_deref()) {
        None => SortColumn::Name,
        Some(column) => SortColumn::parse(column)
            .ok_or_else(|| StorageError::InvalidRequest(format!("invalid sort column {column}")))?,
    };
    let order = match sort_by.and_then(|s| s.order.as_deref()) {
        None => Order::Asc,
        Some(order) => Order::parse(order)
            .ok_or_else(|| StorageError::InvalidRequest(format!("invalid sort order {order}")))?,
    };
    Ok((column, order))
}

/// `POST /object/list/{bucket}`: one level below `prefix`, folders as entries with `id: null`.
pub(super) async fn list(
    State(state): State<StorageState>,
    Path(bucket): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, StorageError> {
    let call = Call::new(&state, method, &uri, headers)?;
    check_bucket(&bucket)?;
    let body: ListBody = json_body(&body)?;
    let mut prefix = body.prefix.unwrap_or_default();
    check_prefix(&prefix)?;
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    let (column, order) = sort(body.sort_by.as_ref())?;
    let limit = body.limit.unwrap_or(100).clamp(0, 10_000);
    let offset = body.offset.unwrap_or(0).max(0);
    let search = body.search.unwrap_or_default();
    let statement = sql::list_objects(column, order);
    let params: [&(dyn ToSql + Sync); 5] = [&bucket, &prefix, &search, &limit, &offset];
    let rows = state
        .storage
        .run_one(
            call.request(),
            "storage.object.list",
            Access::ReadOnly,
            &statement,
            &params,
        )
        .await?;
    Ok(Json(
        rows.first().map(|row| row.get(0)).unwrap_or(json!([])),
    ))
}

#[derive(Debug, Deserialize)]
struct ListV2Body {
    prefix: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
    with_delimiter: Option<bool>,
    #[serde(rename = "sortBy")]
    sort_by: Option<SortBy>,
}

/// Where a list-v2 page ends, as Supabase Storage encodes it in `nextCursor`: base64 of
/// `l:<last name>` and, when set, `o:<order>`, `c:<sort column>`, `a:<the last sort time>`, one a
/// line. Clients pass it back unchanged.
#[derive(Debug, Default, PartialEq)]
struct Cursor {
    after_name: String,
    order: Option<String>,
    column: Option<String>,
    after_time: Option<String>,
}

impl Cursor {
    fn encode(&self) -> String {
        let mut lines = vec![format!("l:{}", self.after_name)];
        for (tag, value) in [
            ("o", &self.order),
            ("c", &self.column),
            ("a", &self.after_time),
        ] {
            if let Some(value) = value {
                lines.push(format!("{tag}:{value}"));
            }
        }
        base64::engine::general_purpose::STANDARD.encode(lines.join("\n"))
    }

    fn decode(token: &str) -> Result<Cursor, StorageError> {
        let invalid = || StorageError::InvalidRequest("invalid continuation token".to_owned());
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(token)
            .map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut cursor = Cursor::default();
        for line in text.split('\n') {
            let (tag, value) = line.split_once(':').ok_or_else(invalid)?;
            let value = value.to_owned();
            match tag {
                "l" => cursor.after_name = value,
                "o" => cursor.order = Some(value),
                "c" => cursor.column = Some(value),
                "a" => cursor.after_time = Some(value),
                _ => return Err(invalid()),
            }
        }
        Ok(cursor)
    }
}

/// `POST /object/list-v2/{bucket}`: entries whose name starts with `prefix`, with
/// `with_delimiter` grouped into folders (`<prefix><segment>/`), sorted by `sortBy` (name, the
/// default, `updated_at` or `created_at`), paged by the opaque `cursor` of the previous page's
/// `nextCursor`. Answers `{hasNext, folders, objects, nextCursor?, nextCursorKey?}` as Supabase
/// Storage does.
pub(super) async fn list_v2(
    State(state): State<StorageState>,
    Path(bucket): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, StorageError> {
    let call = Call::new(&state, method, &uri, headers)?;
    check_bucket(&bucket)?;
    let body: ListV2Body = json_body(&body)?;
    let prefix = body.prefix.unwrap_or_default();
    let cursor = match body.cursor.as_deref() {
        Some(token) if !token.is_empty() => Cursor::decode(token)?,
        _ => Cursor::default(),
    };
    // A cursor keeps the order of the listing it came from, as Supabase's does.
    let column_name = cursor
        .column
        .clone()
        .or_else(|| body.sort_by.as_ref().and_then(|s| s.column.clone()));
    let order_name = cursor
        .order
        .clone()
        .or_else(|| body.sort_by.as_ref().and_then(|s| s.order.clone()));
    let column = match column_name.as_deref() {
        None | Some("name") => SortColumn::Name,
        Some("updated_at") => SortColumn::UpdatedAt,
        Some("created_at") => SortColumn::CreatedAt,
        Some(other) => {
            return Err(StorageError::InvalidRequest(format!(
                "sortBy.column must be name, updated_at or created_at, not {other}"
            )))
        }
    };
    let order = match order_name.as_deref() {
        None => Order::Asc,
        Some(order) => Order::parse(order)
            .ok_or_else(|| StorageError::InvalidRequest(format!("invalid sort order {order}")))?,
    };
    let limit = match body.limit {
        None => 1000,
        Some(limit) if limit >= 1 => limit.min(1000),
        Some(_) => {
            return Err(StorageError::InvalidRequest(
                "limit must be at least 1".to_owned(),
            ))
        }
    };
    let delimiter = body.with_delimiter.unwrap_or(false);
    let by_time = column != SortColumn::Name;
    let after_time = match (&cursor.after_time, by_time) {
        (Some(time), true) => Some(
            chrono::DateTime::parse_from_rfc3339(time)
                .map_err(|_| StorageError::InvalidRequest("invalid continuation token".to_owned()))?
                .with_timezone(&chrono::Utc),
        ),
        _ => None,
    };
    let statement = sql::list_objects_v2(column, order);
    let name_params: [&(dyn ToSql + Sync); 5] =
        [&bucket, &prefix, &cursor.after_name, &limit, &delimiter];
    let time_params: [&(dyn ToSql + Sync); 6] = [
        &bucket,
        &prefix,
        &cursor.after_name,
        &limit,
        &delimiter,
        &after_time,
    ];
    let params: &[&(dyn ToSql + Sync)] = if by_time { &time_params } else { &name_params };
    let rows = state
        .storage
        .run_one(
            call.request(),
            "storage.object.list",
            Access::ReadOnly,
            &statement,
            params,
        )
        .await?;
    let has_next = rows.len() as i64 > limit;
    let mut folders = Vec::new();
    let mut objects = Vec::new();
    let mut last = None;
    for row in rows.iter().take(limit as usize) {
        let key: String = row.get(0);
        if row.get::<_, bool>(1) {
            folders.push(json!({ "id": null, "name": key, "key": key, "bucket_id": bucket }));
        } else {
            objects.push(row.get::<_, Value>(2));
        }
        let sort_at: Option<chrono::DateTime<chrono::Utc>> = row.get(3);
        last = Some((key, sort_at));
    }
    let mut result = json!({ "hasNext": has_next, "folders": folders, "objects": objects });
    if let (true, Some((key, sort_at))) = (has_next, last) {
        let next = Cursor {
            after_name: key.clone(),
            order: order_name,
            column: column_name,
            after_time: sort_at
                .filter(|_| by_time)
                .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        };
        result["nextCursor"] = json!(next.encode());
        result["nextCursorKey"] = json!(key);
    }
    Ok(Json(result))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RelocateBody {
    bucket_id: String,
    source_key: String,
    destination_key: String,
    destination_bucket: Option<String>,
}

async fn relocate(
    state: &StorageState,
    method: Method,
    uri: &Uri,
    headers: HeaderMap,
    body: &Bytes,
    copy: bool,
) -> Result<(String, String, String), StorageError> {
    let call = Call::new(state, method, uri, headers)?;
    let body: RelocateBody = json_body(body)?;
    let destination_bucket = body
        .destination_bucket
        .unwrap_or_else(|| body.bucket_id.clone());
    let id = state
        .storage
        .relocate(
            call.request(),
            (&body.bucket_id, &body.source_key),
            (&destination_bucket, &body.destination_key),
            copy,
        )
        .await?;
    Ok((id, destination_bucket, body.destination_key))
}

pub(super) async fn move_object(
    State(state): State<StorageState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, StorageError> {
    relocate(&state, method, &uri, headers, &body, false).await?;
    Ok(Json(json!({ "message": "Successfully moved" })))
}

pub(super) async fn copy_object(
    State(state): State<StorageState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, StorageError> {
    let (id, bucket, name) = relocate(&state, method, &uri, headers, &body, true).await?;
    Ok(Json(json!({ "Id": id, "Key": format!("{bucket}/{name}") })))
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn list_v2_cursors_round_trip_in_supabase_form() {
        let cursor = Cursor {
            after_name: "a/b:c.png".to_owned(),
            order: Some("desc".to_owned()),
            column: Some("created_at".to_owned()),
            after_time: Some("2026-12-06T20:00:00.123456Z".to_owned()),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        // Supabase Storage's own encoding of a name cursor: base64("l:x/y.txt").
        assert_eq!(
            Cursor::decode("bDp4L3kudHh0").unwrap().after_name,
            "x/y.txt"
        );
        assert!(Cursor::decode("not base64!").is_err());
        assert!(Cursor::decode("eDp5").is_err()); // "x:y": an unknown part
    }
}
