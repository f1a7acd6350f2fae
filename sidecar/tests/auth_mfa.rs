//! MFA with TOTP through the real router and database: enroll, challenge, verify (aal2 and `amr`
//! in the token, kept across a refresh), a policy that requires aal2, single-use codes, the limit on
//! attempts, unenroll and the admin's view. Codes are computed here with `totp-rs` from the secret
//! the API hands out; `js/auth_mfa.test.mjs` does the same with an independent library.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use sluice_sidecar::auth::accounts::settings::AuthSettings;
use support::auth::{claims_of, unique_email, Fixture};
use totp_rs::{Algorithm, Secret, TOTP};

const AAL2_ONLY: &str = r#"
    CREATE TABLE vault (id int PRIMARY KEY, secret text NOT NULL);
    ALTER TABLE vault ENABLE ROW LEVEL SECURITY;
    CREATE POLICY aal2_only ON vault FOR SELECT TO authenticated
        USING (auth.jwt()->>'aal' = 'aal2');
    GRANT SELECT ON vault TO authenticated;
    INSERT INTO vault VALUES (1, 'the combination');
"#;

fn fixture() -> Fixture {
    let settings = AuthSettings {
        autoconfirm: true,
        ..AuthSettings::default()
    };
    Fixture::with_setup(settings, &[AAL2_ONLY], None)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn code(secret: &str, at: u64) -> String {
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
    TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes, None, String::new())
        .unwrap()
        .generate(at)
}

fn token(session: &Value) -> String {
    session["access_token"].as_str().unwrap().to_owned()
}

/// Enrolls a factor for the holder of `access`: (factor id, secret).
fn enroll(fx: &Fixture, access: &str, name: &str) -> (String, String) {
    let enrolled = fx.call(
        Method::POST,
        "/auth/v1/factors",
        Some(access),
        Some(json!({"factor_type": "totp", "friendly_name": name, "issuer": "Sluice Tests"})),
    );
    let body = enrolled.ok();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["totp"]["secret"].as_str().unwrap().to_owned(),
    )
}

fn challenge(fx: &Fixture, access: &str, factor: &str) -> String {
    let reply = fx.call(
        Method::POST,
        &format!("/auth/v1/factors/{factor}/challenge"),
        Some(access),
        None,
    );
    reply.ok()["id"].as_str().unwrap().to_owned()
}

fn verify(
    fx: &Fixture,
    access: &str,
    factor: &str,
    challenge: &str,
    code: &str,
) -> support::auth::Reply {
    fx.call(
        Method::POST,
        &format!("/auth/v1/factors/{factor}/verify"),
        Some(access),
        Some(json!({"challenge_id": challenge, "code": code})),
    )
}

fn vault(fx: &Fixture, access: &str) -> Value {
    fx.call(
        Method::GET,
        "/rest/v1/vault?select=secret",
        Some(access),
        None,
    )
    .ok()
    .clone()
}

#[test]
fn totp_enrollment_reaches_aal2_which_a_policy_requires() {
    let fx = fixture();
    let email = unique_email("mfa");
    let session = fx.sign_up(&email, "mfa-password");
    let aal1 = token(&session);
    assert_eq!(claims_of(&aal1)["aal"], "aal1");

    let enrolled = fx.call(
        Method::POST,
        "/auth/v1/factors",
        Some(&aal1),
        Some(json!({"factor_type": "totp", "friendly_name": "phone", "issuer": "Sluice Tests"})),
    );
    let body = enrolled.ok().clone();
    assert_eq!(body["type"], "totp");
    assert_eq!(body["friendly_name"], "phone");
    let secret = body["totp"]["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32, "160 bits, base32");
    let uri = body["totp"]["uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Sluice%20Tests:"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    let svg = body["totp"]["qr_code"].as_str().unwrap();
    assert!(svg.contains("<svg") && svg.ends_with("</svg>"), "{svg}");
    let factor = body["id"].as_str().unwrap().to_owned();
    // The same name twice is refused.
    let again = fx.call(
        Method::POST,
        "/auth/v1/factors",
        Some(&aal1),
        Some(json!({"factor_type": "totp", "friendly_name": "phone"})),
    );
    assert_eq!(
        again.error_code(StatusCode::UNPROCESSABLE_ENTITY),
        "mfa_factor_name_conflict"
    );

    let user = fx.call(Method::GET, "/auth/v1/user", Some(&aal1), None);
    assert_eq!(user.ok()["factors"][0]["status"], "unverified");
    assert_eq!(user.body["factors"][0]["factor_type"], "totp");

    let challenge_id = challenge(&fx, &aal1, &factor);
    let wrong = format!(
        "{:06}",
        (code(&secret, now()).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    let refused = verify(&fx, &aal1, &factor, &challenge_id, &wrong);
    assert_eq!(
        refused.error_code(StatusCode::UNPROCESSABLE_ENTITY),
        "mfa_verification_failed"
    );

    let verified = verify(&fx, &aal1, &factor, &challenge_id, &code(&secret, now()));
    let aal2_session = verified.ok().clone();
    let aal2 = token(&aal2_session);
    let claims = claims_of(&aal2);
    assert_eq!(claims["aal"], "aal2");
    assert_eq!(claims["session_id"], claims_of(&aal1)["session_id"]);
    let methods: Vec<&str> = claims["amr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["totp", "password"]);
    assert_eq!(aal2_session["user"]["factors"][0]["status"], "verified");

    // The policy: aal1 sees nothing, aal2 sees the row.
    assert_eq!(vault(&fx, &aal1), json!([]));
    assert_eq!(vault(&fx, &aal2), json!([{"secret": "the combination"}]));

    // A challenge is single use, and so is a code.
    let reused = verify(&fx, &aal2, &factor, &challenge_id, &code(&secret, now()));
    assert_eq!(
        reused.error_code(StatusCode::UNPROCESSABLE_ENTITY),
        "mfa_factor_not_found"
    );
    let fresh = challenge(&fx, &aal2, &factor);
    let replayed = verify(&fx, &aal2, &factor, &fresh, &code(&secret, now()));
    assert_eq!(
        replayed.error_code(StatusCode::UNPROCESSABLE_ENTITY),
        "mfa_verification_failed"
    );

    // A refresh keeps the session at aal2, with its methods.
    let refreshed = fx.refresh(aal2_session["refresh_token"].as_str().unwrap());
    let refreshed = token(refreshed.ok());
    assert_eq!(claims_of(&refreshed)["aal"], "aal2");
    assert_eq!(claims_of(&refreshed)["amr"][0]["method"], "totp");
    assert_eq!(
        vault(&fx, &refreshed),
        json!([{"secret": "the combination"}])
    );

    // A new sign-in starts at aal1, and its user lists the verified factor (so supabase-js's
    // getAuthenticatorAssuranceLevel says nextLevel = aal2).
    let again = fx.sign_in(&email, "mfa-password");
    assert_eq!(claims_of(&token(again.ok()))["aal"], "aal1");
    assert_eq!(again.body["user"]["factors"][0]["id"], factor);

    // Unenrolling a verified factor needs aal2.
    let from_aal1 = fx.call(
        Method::DELETE,
        &format!("/auth/v1/factors/{factor}"),
        Some(&token(&again.body)),
        None,
    );
    assert_eq!(
        from_aal1.error_code(StatusCode::UNPROCESSABLE_ENTITY),
        "insufficient_aal"
    );
    let removed = fx.call(
        Method::DELETE,
        &format!("/auth/v1/factors/{factor}"),
        Some(&refreshed),
        None,
    );
    assert_eq!(removed.ok(), &json!({"id": factor}));
    let user = fx.call(Method::GET, "/auth/v1/user", Some(&refreshed), None);
    assert!(user.ok().get("factors").is_none(), "{}", user.text);
}

#[test]
fn wrong_codes_count_toward_a_limit() {
    let fx = fixture();
    let session = fx.sign_up(&unique_email("guesser"), "guess-password");
    let access = token(&session);
    let (factor, secret) = enroll(&fx, &access, "");
    let challenge_id = challenge(&fx, &access, &factor);
    let right = code(&secret, now());
    let mut statuses = Vec::new();
    for guess in 0..12u32 {
        let guess = format!("{:06}", guess);
        if guess == right {
            continue;
        }
        statuses.push(verify(&fx, &access, &factor, &challenge_id, &guess).status);
    }
    // The per-user limit (10 in the window by default), then 429 even for the right code.
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
            .count(),
        10,
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let limited = verify(&fx, &access, &factor, &challenge_id, &right);
    assert_eq!(
        limited.error_code(StatusCode::TOO_MANY_REQUESTS),
        "over_request_rate_limit"
    );
}

#[test]
fn the_admin_lists_and_deletes_a_users_factors() {
    let fx = fixture();
    let session = fx.sign_up(&unique_email("managed"), "managed-password");
    let access = token(&session);
    let user_id = session["user"]["id"].as_str().unwrap().to_owned();
    let (factor, _) = enroll(&fx, &access, "laptop");
    let path = format!("/auth/v1/admin/users/{user_id}/factors");

    let as_user = fx.call(Method::GET, &path, Some(&access), None);
    assert_eq!(as_user.error_code(StatusCode::FORBIDDEN), "not_admin");
    let listed = fx.call(Method::GET, &path, Some(&fx.service_key), None);
    assert_eq!(listed.ok()[0]["id"], factor);
    assert_eq!(listed.body[0]["friendly_name"], "laptop");

    let deleted = fx.call(
        Method::DELETE,
        &format!("{path}/{factor}"),
        Some(&fx.service_key),
        None,
    );
    assert_eq!(deleted.ok()["id"], factor);
    let listed = fx.call(Method::GET, &path, Some(&fx.service_key), None);
    assert_eq!(listed.ok(), &json!([]));
    let missing = fx.call(
        Method::DELETE,
        &format!("{path}/{factor}"),
        Some(&fx.service_key),
        None,
    );
    assert_eq!(
        missing.error_code(StatusCode::NOT_FOUND),
        "mfa_factor_not_found"
    );
    // A user that does not exist is GoTrue's 404, not an empty list (auth-js's admin suite).
    let nobody = fx.call(
        Method::GET,
        "/auth/v1/admin/users/00000000-0000-4000-8000-000000000000/factors",
        Some(&fx.service_key),
        None,
    );
    assert_eq!(nobody.error_code(StatusCode::NOT_FOUND), "user_not_found");
}
