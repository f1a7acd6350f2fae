//! Passwordless sign-in: `POST /otp` (`signInWithOtp`), and the admin's `POST /invite`
//! (`inviteUserByEmail`) and `POST /admin/generate_link` (`generateLink`).

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::admin_users::require_admin;
use super::{parse, AuthState, Redirect};
use crate::auth::accounts::flow_state::Pkce;
use crate::auth::accounts::otp::{normalize_phone, Contact};
use crate::auth::accounts::{normalize_email, AccountError, Client};

#[derive(Deserialize)]
pub(super) struct OtpBody {
    email: Option<String>,
    phone: Option<String>,
    data: Option<Value>,
    create_user: Option<bool>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    channel: Option<String>,
}

fn metadata(data: Option<Value>) -> Result<Option<Value>, AccountError> {
    match data {
        None | Some(Value::Null) => Ok(None),
        Some(data @ Value::Object(_)) => Ok(Some(data)),
        Some(_) => Err(AccountError::Validation("data must be a JSON object")),
    }
}

/// POST /otp: `{email}` mails a magic link and a code, `{phone}` texts a code. Answers `{}`, or
/// `{"message_id"}` for a phone.
pub(super) async fn otp(
    State(state): State<AuthState>,
    Query(redirect): Query<Redirect>,
    client: Client,
    body: Bytes,
) -> Result<Json<Value>, AccountError> {
    let body: OtpBody = parse(&body)?;
    let pkce = Pkce::from_request(body.code_challenge, body.code_challenge_method)?;
    let contact = match (
        body.email.filter(|e| !e.is_empty()),
        body.phone.filter(|p| !p.is_empty()),
    ) {
        (Some(email), None) => Contact::Email(normalize_email(&email)?),
        (None, Some(phone)) => {
            if body
                .channel
                .as_deref()
                .is_some_and(|channel| channel != "sms")
            {
                return Err(AccountError::Validation(
                    "Only the sms channel is supported",
                ));
            }
            Contact::Phone(normalize_phone(&phone)?)
        }
        (Some(_), Some(_)) => {
            return Err(AccountError::Validation(
                "Only an email address or phone number should be provided",
            ))
        }
        (None, None) => {
            return Err(AccountError::Validation(
                "An email address or phone number is required",
            ))
        }
    };
    let is_phone = matches!(contact, Contact::Phone(_));
    let message_id = state
        .accounts
        .send_otp(
            &client,
            contact,
            body.create_user.unwrap_or(true),
            metadata(body.data)?,
            redirect.redirect_to.as_deref(),
            pkce,
        )
        .await?;
    Ok(Json(match message_id {
        Some(id) if is_phone => json!({"message_id": id}),
        _ => json!({}),
    }))
}

#[derive(Deserialize)]
pub(super) struct InviteBody {
    email: Option<String>,
    data: Option<Value>,
}

/// POST /invite (service key): the invited user.
pub(super) async fn invite(
    State(state): State<AuthState>,
    Query(redirect): Query<Redirect>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AccountError> {
    require_admin(&headers, &state)?;
    let body: InviteBody = parse(&body)?;
    let email = body
        .email
        .ok_or(AccountError::Validation("An email address is required"))?;
    let user = state
        .accounts
        .invite(
            &email,
            metadata(body.data)?,
            redirect.redirect_to.as_deref(),
        )
        .await?;
    Ok(Json(user))
}

#[derive(Deserialize)]
pub(super) struct GenerateLinkBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    email: Option<String>,
    password: Option<String>,
    data: Option<Value>,
    redirect_to: Option<String>,
    new_email: Option<String>,
}

/// POST /admin/generate_link (service key): GoTrue's answer, the user with `action_link`,
/// `email_otp`, `hashed_token`, `redirect_to` and `verification_type`. Nothing is mailed.
pub(super) async fn generate_link(
    State(state): State<AuthState>,
    Query(redirect): Query<Redirect>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AccountError> {
    require_admin(&headers, &state)?;
    let body: GenerateLinkBody = parse(&body)?;
    let kind = body.kind.unwrap_or_default();
    let email = body
        .email
        .ok_or(AccountError::Validation("An email address is required"))?;
    let redirect_to = body.redirect_to.or(redirect.redirect_to);
    if kind.starts_with("email_change_") {
        let issued = state
            .accounts
            .generate_email_change_link(
                &kind,
                &email,
                body.new_email.as_deref(),
                redirect_to.as_deref(),
            )
            .await?;
        return Ok(Json(issued.to_json()));
    }
    let issued = state
        .accounts
        .generate_link(
            &kind,
            &email,
            body.password.as_deref(),
            metadata(body.data)?,
            redirect_to.as_deref(),
            false,
        )
        .await?;
    Ok(Json(issued.to_json()))
}
