//! Flows around an existing account that supabase-js's tests (js/auth_flows.test.mjs) do not
//! reach: a phone sign-up with autoconfirm, reauthentication of a phone-only user by text, a
//! phone change applied at once under autoconfirm, and brute force: a nonce or a phone-change
//! code is gone after 5 wrong guesses, the right one included.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use sluice_sidecar::auth::accounts::settings::AuthSettings;
use support::auth::{unique_email, Fixture, Reply};

fn texts_to(fx: &Fixture, phone: &str) -> Vec<String> {
    fx.db
        .rows(&format!(
            "SELECT body FROM auth.sms_outbox WHERE recipient = '{phone}' ORDER BY id DESC"
        ))
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["body"].as_str().unwrap().to_owned())
        .collect()
}

fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|word| word.len() == 6)
        .expect("a 6-digit code")
        .to_owned()
}

fn put_user(fx: &Fixture, token: &str, body: Value) -> Reply {
    fx.call(Method::PUT, "/auth/v1/user", Some(token), Some(body))
}

fn age_sessions(fx: &Fixture, user_id: &str) {
    fx.db.execute(&format!(
        "UPDATE auth.sessions SET created_at = now() - interval '25 hours' WHERE user_id = '{user_id}'"
    ));
}

#[test]
fn phone_sign_up_with_autoconfirm_and_reauthentication_by_text() {
    let fx = Fixture::new(AuthSettings {
        autoconfirm: true,
        secure_password_change: true,
        ..AuthSettings::default()
    });
    // Signed in at once, the phone confirmed, nothing texted.
    let session = fx
        .post(
            "/auth/v1/signup",
            json!({"phone": "+1 555 000 4444", "password": "phone-pass"}),
        )
        .ok()
        .clone();
    let token = session["access_token"].as_str().unwrap().to_owned();
    let user_id = session["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(session["user"]["phone"], "15550004444");
    assert!(session["user"]["phone_confirmed_at"].is_string());
    assert!(session["user"].get("email_confirmed_at").is_none());
    assert!(texts_to(&fx, "15550004444").is_empty());

    // A user with only a phone gets the nonce by text; its message id is answered.
    let sent = fx.call(Method::GET, "/auth/v1/reauthenticate", Some(&token), None);
    assert!(sent.ok()["message_id"].is_string(), "{}", sent.text);
    let nonce = code_in(&texts_to(&fx, "15550004444")[0]);
    // Stored only as a hash.
    let stored = fx
        .db
        .rows("SELECT code_hash FROM auth.otp_codes WHERE channel = 'reauthentication'");
    assert_eq!(stored.as_array().unwrap().len(), 1);
    assert!(!stored.to_string().contains(&nonce));

    // An old session needs it; 5 wrong guesses and it is gone, the right one with it.
    age_sessions(&fx, &user_id);
    let needed = put_user(&fx, &token, json!({"password": "new-phone-pass"}));
    assert_eq!(
        needed.error_code(StatusCode::BAD_REQUEST),
        "reauthentication_needed"
    );
    let wrong = if nonce == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        let guess = put_user(
            &fx,
            &token,
            json!({"password": "new-phone-pass", "nonce": wrong}),
        );
        assert_eq!(
            guess.error_code(StatusCode::UNPROCESSABLE_ENTITY),
            "reauthentication_not_valid"
        );
    }
    let late = put_user(
        &fx,
        &token,
        json!({"password": "new-phone-pass", "nonce": nonce}),
    );
    assert_eq!(
        late.error_code(StatusCode::UNPROCESSABLE_ENTITY),
        "reauthentication_not_valid"
    );

    // A new nonce works.
    fx.call(Method::GET, "/auth/v1/reauthenticate", Some(&token), None)
        .ok();
    let nonce = code_in(&texts_to(&fx, "15550004444")[0]);
    put_user(
        &fx,
        &token,
        json!({"password": "new-phone-pass", "nonce": nonce}),
    )
    .ok();
    fx.post(
        "/auth/v1/token?grant_type=password",
        json!({"phone": "15550004444", "password": "new-phone-pass"}),
    )
    .ok();

    // With autoconfirm a phone change applies at once.
    let changed = put_user(&fx, &token, json!({"phone": "+15550005555"}));
    assert_eq!(changed.ok()["phone"], "15550005555");
    assert!(changed.body.get("new_phone").is_none());
}

#[test]
fn phone_change_codes_die_after_five_wrong_guesses() {
    let fx = Fixture::new(AuthSettings::default());
    let email = unique_email("phone-change");
    fx.call(
        Method::POST,
        "/auth/v1/admin/users",
        Some(&fx.service_key.clone()),
        Some(json!({"email": email, "password": "change-pass", "email_confirm": true})),
    )
    .ok();
    let session = fx.sign_in(&email, "change-pass").ok().clone();
    let token = session["access_token"].as_str().unwrap().to_owned();

    let asked = put_user(&fx, &token, json!({"phone": "15550006666"}));
    assert_eq!(asked.ok()["new_phone"], "15550006666");
    assert_eq!(asked.body["phone"], "");
    let code = code_in(&texts_to(&fx, "15550006666")[0]);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let verify = |token: &str| {
        fx.post(
            "/auth/v1/verify",
            json!({"type": "phone_change", "phone": "15550006666", "token": token}),
        )
    };
    for _ in 0..5 {
        assert_eq!(
            verify(wrong).error_code(StatusCode::FORBIDDEN),
            "otp_expired"
        );
    }
    assert_eq!(
        verify(&code).error_code(StatusCode::FORBIDDEN),
        "otp_expired"
    );
    let user = fx.call(Method::GET, "/auth/v1/user", Some(&token), None);
    assert_eq!(user.ok()["phone"], "");

    // A malformed number changes nothing.
    let bad = put_user(&fx, &token, json!({"phone": "call me"}));
    assert_eq!(bad.error_code(StatusCode::BAD_REQUEST), "validation_failed");
}
