//! `/storage/v1/`: Supabase Storage's routes, thin over `crate::storage`. Errors answer in
//! Supabase's shape (`error`).

mod body;
mod buckets;
mod download;
pub(crate) mod error;
mod objects;
mod render;
mod resumable;
mod sign;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::{get, post};
use axum::Router;

use crate::auth::{Identity, Verifier};
use crate::storage::{Request, Storage, StorageError};

/// What the storage routes reach.
#[derive(Clone)]
pub struct StorageState {
    pub storage: Arc<Storage>,
    pub verifier: Arc<Verifier>,
}

/// The routes under `/storage/v1`. Bodies are streamed (uploads have their own size rules), so
/// axum's default body limit is off here.
pub fn routes(state: StorageState) -> Router {
    let api = Router::new()
        .route("/status", get(|| async { "" }))
        .route("/version", get(|| async { crate::VERSION }))
        .route("/bucket", get(buckets::list).post(buckets::create))
        .route("/bucket/", get(buckets::list).post(buckets::create))
        .route(
            "/bucket/{id}",
            get(buckets::get)
                .put(buckets::update)
                .delete(buckets::delete),
        )
        .route("/bucket/{id}/empty", post(buckets::empty))
        .route("/object/list/{bucket}", post(objects::list))
        .route("/object/list-v2/{bucket}", post(objects::list_v2))
        .route("/object/move", post(objects::move_object))
        .route("/object/copy", post(objects::copy_object))
        .route("/object/info/{bucket}/{*name}", get(objects::info))
        .route(
            "/object/info/public/{bucket}/{*name}",
            get(objects::info_public),
        )
        .route(
            "/object/info/authenticated/{bucket}/{*name}",
            get(objects::info),
        )
        .route("/object/sign/{bucket}", post(sign::sign_many))
        .route(
            "/object/sign/{bucket}/{*name}",
            post(sign::sign_one)
                .get(download::signed)
                .head(download::signed),
        )
        .route(
            "/object/upload/sign/{bucket}/{*name}",
            post(sign::sign_upload).put(sign::upload_signed),
        )
        .route(
            "/object/public/{bucket}/{*name}",
            get(download::public).head(download::public),
        )
        .route(
            "/object/authenticated/{bucket}/{*name}",
            get(download::authenticated).head(download::authenticated),
        )
        .route("/object/{bucket}", axum::routing::delete(objects::remove))
        .route(
            "/object/{bucket}/{*name}",
            post(objects::upload)
                .put(objects::update)
                .get(download::authenticated)
                .head(download::authenticated),
        )
        .route(
            "/render/image/authenticated/{bucket}/{*name}",
            get(render::authenticated),
        )
        .route("/render/image/public/{bucket}/{*name}", get(render::public))
        .route("/render/image/sign/{bucket}/{*name}", get(render::signed))
        .route(
            "/upload/resumable",
            post(resumable::create).options(resumable::options),
        )
        .route(
            "/upload/resumable/",
            post(resumable::create).options(resumable::options),
        )
        .route(
            "/upload/resumable/{id}",
            axum::routing::head(resumable::offset)
                .patch(resumable::append)
                .delete(resumable::cancel)
                .options(resumable::options),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(DefaultBodyLimit::disable())
        .with_state(state);
    Router::new().nest("/storage/v1", api)
}

async fn not_found(method: Method, uri: Uri) -> StorageError {
    StorageError::InvalidRequest(format!("Route {method}:{} not found", uri.path()))
}

/// The caller of a request, from its `Authorization` header (anon without one).
fn identity(state: &StorageState, headers: &HeaderMap) -> Result<Identity, StorageError> {
    Ok(Identity::from_headers(headers, &state.verifier)?)
}

/// Everything the storage service needs of a request.
struct Call {
    identity: Identity,
    method: Method,
    path: String,
    headers: HeaderMap,
}

impl Call {
    fn new(
        state: &StorageState,
        method: Method,
        uri: &Uri,
        headers: HeaderMap,
    ) -> Result<Call, StorageError> {
        Ok(Call {
            identity: identity(state, &headers)?,
            method,
            path: uri.path().to_owned(),
            headers,
        })
    }

    fn request(&self) -> Request<'_> {
        Request {
            identity: &self.identity,
            method: &self.method,
            path: &self.path,
            headers: &self.headers,
        }
    }
}

/// A request through a signed download URL (`?token=`): the token's claims, the call (without the
/// request's own Authorization: the signature is the permission), and the object's head read
/// without policies.
async fn open_signed(
    state: &StorageState,
    bucket: &str,
    name: &str,
    query: &std::collections::HashMap<String, String>,
    method: Method,
    uri: &Uri,
    mut headers: HeaderMap,
) -> Result<
    (
        crate::storage::token::UrlClaims,
        Call,
        crate::storage::ObjectHead,
    ),
    StorageError,
> {
    let token = query
        .get("token")
        .ok_or_else(|| StorageError::InvalidRequest("Missing token".to_owned()))?;
    let claims = state
        .storage
        .signer()
        .verify_download(token, &format!("{bucket}/{name}"))?;
    headers.remove(axum::http::header::AUTHORIZATION);
    let call = Call::new(state, method, uri, headers)?;
    let head = state
        .storage
        .head_signed(call.request(), bucket, name)
        .await?;
    Ok((claims, call, head))
}
