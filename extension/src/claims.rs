//! `auth.uid()`, `auth.role()`, `auth.email()`, `auth.jwt()`: Supabase's RLS helpers, reading the
//! transaction-local setting `request.jwt.claims` that the sidecar sets for each request.
//! Unset, empty or malformed claims read as NULL: a policy must never fail because of them.

use pgrx::prelude::*;
use serde_json::Value;
use std::cell::RefCell;

/// The claims of the current request, parsed. Policies call these helpers once per row, so the
/// last parse is cached and reused while the setting's text is unchanged.
pub fn with_claims<R>(f: impl FnOnce(Option<&Value>) -> R) -> R {
    thread_local! {
        static LAST: RefCell<Option<(String, Option<Value>)>> = const { RefCell::new(None) };
    }
    let raw = current_claims_text();
    LAST.with(|cell| {
        let mut last = cell.borrow_mut();
        match (&raw, last.as_ref()) {
            (None, _) => f(None),
            (Some(text), Some((cached, parsed))) if cached == text => f(parsed.as_ref()),
            (Some(text), _) => {
                let parsed = parse_claims(text);
                *last = Some((text.clone(), parsed));
                f(last.as_ref().and_then(|(_, v)| v.as_ref()))
            }
        }
    })
}

fn current_claims_text() -> Option<String> {
    // SAFETY: GetConfigOption with missing_ok returns NULL or a pointer to the setting's
    // current value, valid until the setting changes; we copy it at once.
    unsafe {
        let ptr = pg_sys::GetConfigOption(c"request.jwt.claims".as_ptr(), true, false);
        if ptr.is_null() {
            return None;
        }
        Some(std::ffi::CStr::from_ptr(ptr).to_string_lossy().into_owned())
    }
}

/// Claims must be a JSON object; anything else counts as no claims.
pub fn parse_claims(text: &str) -> Option<Value> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Some(value),
        _ => None,
    }
}

pub fn claim_str<'a>(claims: Option<&'a Value>, name: &str) -> Option<&'a str> {
    claims?.get(name)?.as_str()
}

pub fn uid_from(claims: Option<&Value>) -> Option<uuid::Uuid> {
    uuid::Uuid::parse_str(claim_str(claims, "sub")?).ok()
}

#[pg_schema]
mod auth {
    use super::*;

    /// The user id (`sub` claim) of the current request, or NULL.
    #[pg_extern(stable, parallel_safe)]
    fn uid() -> Option<pgrx::Uuid> {
        with_claims(|c| uid_from(c).map(|u| pgrx::Uuid::from_bytes(*u.as_bytes())))
    }

    /// The role claim of the current request (anon, authenticated, service_role ...), or NULL.
    #[pg_extern(stable, parallel_safe)]
    fn role() -> Option<String> {
        with_claims(|c| claim_str(c, "role").map(str::to_owned))
    }

    /// The email claim of the current request, or NULL.
    #[pg_extern(stable, parallel_safe)]
    fn email() -> Option<String> {
        with_claims(|c| claim_str(c, "email").map(str::to_owned))
    }

    /// All claims of the current request as jsonb, or NULL.
    #[pg_extern(stable, parallel_safe)]
    fn jwt() -> Option<pgrx::JsonB> {
        with_claims(|c| c.cloned().map(pgrx::JsonB))
    }
}

/// The acting user for change events and history: `auth.uid()` of the writing transaction.
pub fn current_uid() -> Option<uuid::Uuid> {
    with_claims(uid_from)
}
