//! `/admin/users`: list, create, read, update and delete users; for the `service_role` key only.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::LINK;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{parse, AuthState};
use crate::auth::accounts::{parse_ban_duration, AccountError, Changes, NewUser};
use crate::auth::jwt::identity;
use crate::auth::Identity;

/// Admin calls need a token (`Authorization`, else `apikey`) whose role is `service_role`.
pub(super) fn require_admin(headers: &HeaderMap, state: &AuthState) -> Result<(), AccountError> {
    match identity::token(headers) {
        Ok(Some(_)) => {}
        Ok(None) => return Err(AccountError::NoAuthorization),
        Err(err) => return Err(AccountError::BadJwt(err)),
    }
    let identity =
        Identity::from_headers(headers, &state.verifier).map_err(AccountError::BadJwt)?;
    if identity.role == "service_role" {
        Ok(())
    } else {
        Err(AccountError::NotAdmin)
    }
}

fn user_id(id: &str) -> Result<Uuid, AccountError> {
    id.parse()
        .map_err(|_| AccountError::Validation("user_id must be an UUID"))
}

/// The fields of GoTrue's `AdminUserParams` that Sluice supports.
#[derive(Deserialize)]
pub(super) struct UserBody {
    email: Option<String>,
    password: Option<String>,
    #[serde(default)]
    email_confirm: bool,
    user_metadata: Option<Value>,
    app_metadata: Option<Value>,
    role: Option<String>,
    ban_duration: Option<String>,
}

fn object(value: Option<Value>, what: &'static str) -> Result<Option<Value>, AccountError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value @ Value::Object(_)) => Ok(Some(value)),
        Some(_) => Err(AccountError::Validation(what)),
    }
}

fn ban(duration: Option<String>) -> Result<Option<f64>, AccountError> {
    duration
        .map(|text| {
            parse_ban_duration(&text).ok_or(AccountError::Validation(
                "ban_duration must be \"none\" or a duration such as \"24h\"",
            ))
        })
        .transpose()
}

#[derive(Deserialize)]
pub(super) struct Page {
    // Text: supabase-js sends `page=&per_page=` when none is given; those read as the defaults.
    page: Option<String>,
    per_page: Option<String>,
}

pub(super) async fn list(
    State(state): State<AuthState>,
    Query(page): Query<Page>,
    headers: HeaderMap,
) -> Result<Response, AccountError> {
    require_admin(&headers, &state)?;
    let number = page
        .page
        .and_then(|page| page.parse::<i32>().ok())
        .unwrap_or(1)
        .clamp(1, 1_000_000);
    let per_page = page
        .per_page
        .and_then(|size| size.parse::<i32>().ok())
        .unwrap_or(50)
        .clamp(1, 1000);
    let (users, total) = state.accounts.admin_list(number, per_page).await?;
    let last = ((total + i64::from(per_page) - 1) / i64::from(per_page)).max(1);
    let mut links = Vec::new();
    if i64::from(number) < last {
        links.push(format!(
            "</auth/v1/admin/users?page={}&per_page={per_page}>; rel=\"next\"",
            number + 1
        ));
    }
    links.push(format!(
        "</auth/v1/admin/users?page={last}&per_page={per_page}>; rel=\"last\""
    ));
    let mut response =
        Json(json!({"users": users, "aud": state.accounts.tokens.audience})).into_response();
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("x-total-count"),
        HeaderValue::from(total),
    );
    if let Ok(link) = HeaderValue::from_str(&links.join(", ")) {
        headers.insert(LINK, link);
    }
    Ok(response)
}

pub(super) async fn create(
    State(state): State<AuthState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AccountError> {
    require_admin(&headers, &state)?;
    let body: UserBody = parse(&body)?;
    let new = NewUser {
        email: body.email.ok_or(AccountError::Validation(
            "Unable to validate email address: invalid format",
        ))?,
        password: body.password,
        email_confirm: body.email_confirm,
        user_metadata: object(body.user_metadata, "user_metadata must be a JSON object")?,
        app_metadata: object(body.app_metadata, "app_metadata must be a JSON object")?,
        role: body.role,
        ban_seconds: ban(body.ban_duration)?,
    };
    Ok(Json(state.accounts.admin_create(new).await?))
}

pub(super) async fn get(
    State(state): State<AuthState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, AccountError> {
    require_admin(&headers, &state)?;
    Ok(Json(state.accounts.admin_get(user_id(&id)?).await?))
}

pub(super) async fn update(
    State(state): State<AuthState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AccountError> {
    require_admin(&headers, &state)?;
    let id = user_id(&id)?;
    let body: UserBody = parse(&body)?;
    let changes = Changes {
        email: body.email,
        password: body.password,
        user_metadata: object(body.user_metadata, "user_metadata must be a JSON object")?,
        app_metadata: object(body.app_metadata, "app_metadata must be a JSON object")?,
        ban_seconds: ban(body.ban_duration)?,
        email_confirm: body.email_confirm,
    };
    Ok(Json(state.accounts.admin_update(id, changes).await?))
}

pub(super) async fn delete(
    State(state): State<AuthState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, AccountError> {
    require_admin(&headers, &state)?;
    state.accounts.admin_delete(user_id(&id)?).await?;
    Ok(Json(json!({})))
}
