//! The auth API end to end through the real router, the real pool (as `authenticator`) and real
//! Postgres with the extension: sign-up, sign-in, sessions, users, recovery and admin, in GoTrue's
//! shapes; and the tokens it issues driving RLS on `/rest/v1/`.

mod support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use sluice_sidecar::auth::accounts::settings::AuthSettings;
use support::auth::{claims_of, unique_email, Fixture};

#[test]
fn sign_up_returns_a_session_whose_token_drives_rls_on_rest() {
    let fx = Fixture::autoconfirm();
    let email = unique_email("Ann");
    let session = fx.sign_up(&email, "ann-password");
    assert_eq!(session["token_type"], "bearer");
    assert_eq!(session["expires_in"], 3600);
    assert!(session["refresh_token"].as_str().unwrap().len() >= 40);
    let user = &session["user"];
    assert_eq!(
        user["email"],
        email.to_lowercase(),
        "emails are stored lower-cased"
    );
    assert_eq!(user["role"], "authenticated");
    assert_eq!(user["aud"], "authenticated");
    assert_eq!(user["app_metadata"]["provider"], "email");
    assert!(user["email_confirmed_at"].is_string());

    let access = session["access_token"].as_str().unwrap();
    let claims = claims_of(access);
    assert_eq!(claims["sub"], user["id"]);
    assert_eq!(claims["role"], "authenticated");
    assert_eq!(claims["aud"], "authenticated");
    assert_eq!(claims["aal"], "aal1");
    assert_eq!(claims["is_anonymous"], false);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );
    assert!(claims["session_id"].is_string());

    // The REST verifier accepts the token, and RLS sees its `sub`.
    let inserted = fx.call(
        Method::POST,
        "/rest/v1/todos",
        Some(access),
        Some(json!({"title": "mine"})),
    );
    assert_eq!(inserted.status, StatusCode::CREATED, "{}", inserted.text);
    let other = fx.sign_up(&unique_email("bob"), "bob-password");
    let bob = other["access_token"].as_str().unwrap();
    fx.call(
        Method::POST,
        "/rest/v1/todos",
        Some(bob),
        Some(json!({"title": "bob's"})),
    );
    let mine = fx.call(
        Method::GET,
        "/rest/v1/todos?select=title,user_id",
        Some(access),
        None,
    );
    assert_eq!(mine.body, json!([{"title": "mine", "user_id": user["id"]}]));
    let theirs = fx.call(Method::GET, "/rest/v1/todos?select=title", Some(bob), None);
    assert_eq!(theirs.body, json!([{"title": "bob's"}]));
}

#[test]
fn sign_in_refresh_user_update_and_logout() {
    let fx = Fixture::autoconfirm();
    let email = unique_email("carol");
    fx.sign_up(&email, "carol-password");

    let session = fx
        .sign_in(&email.to_uppercase(), "carol-password")
        .ok()
        .clone();
    let access = session["access_token"].as_str().unwrap().to_owned();
    let user = fx.call(Method::GET, "/auth/v1/user", Some(&access), None);
    assert_eq!(user.ok()["email"], email);
    assert!(user.body["last_sign_in_at"].is_string());

    let refreshed = fx.refresh(session["refresh_token"].as_str().unwrap());
    let refreshed = refreshed.ok().clone();
    assert_ne!(refreshed["refresh_token"], session["refresh_token"]);
    assert_eq!(
        claims_of(refreshed["access_token"].as_str().unwrap())["session_id"],
        claims_of(&access)["session_id"],
        "refreshing keeps the session"
    );
    let access = refreshed["access_token"].as_str().unwrap().to_owned();

    // Metadata merges; null removes a key.
    let updated = fx.call(
        Method::PUT,
        "/auth/v1/user",
        Some(&access),
        Some(json!({"data": {"theme": "dark", "lang": "fr"}})),
    );
    assert_eq!(
        updated.ok()["user_metadata"],
        json!({"theme": "dark", "lang": "fr"})
    );
    let updated = fx.call(
        Method::PUT,
        "/auth/v1/user",
        Some(&access),
        Some(json!({"data": {"lang": null}})),
    );
    assert_eq!(updated.ok()["user_metadata"], json!({"theme": "dark"}));

    // A new password: the old one is refused, the new one works, other sessions end.
    let other = fx.sign_in(&email, "carol-password").ok().clone();
    let changed = fx.call(
        Method::PUT,
        "/auth/v1/user",
        Some(&access),
        Some(json!({"password": "carol-password-2"})),
    );
    changed.ok();
    assert_eq!(
        fx.sign_in(&email, "carol-password")
            .error_code(StatusCode::BAD_REQUEST),
        "invalid_credentials"
    );
    assert_eq!(
        fx.refresh(other["refresh_token"].as_str().unwrap())
            .error_code(StatusCode::BAD_REQUEST),
        "refresh_token_not_found"
    );
    let user = fx.call(Method::GET, "/auth/v1/user", Some(&access), None);
    user.ok();
    fx.sign_in(&email, "carol-password-2").ok();

    // Logout (scope global by default) ends every session; the token then finds none.
    let logout = fx.call(Method::POST, "/auth/v1/logout", Some(&access), None);
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{}", logout.text);
    let after = fx.call(Method::GET, "/auth/v1/user", Some(&access), None);
    assert_eq!(after.error_code(StatusCode::FORBIDDEN), "session_not_found");
    assert_eq!(
        fx.refresh(refreshed["refresh_token"].as_str().unwrap())
            .error_code(StatusCode::BAD_REQUEST),
        "refresh_token_not_found"
    );
}

#[test]
fn logout_scopes_local_and_others() {
    let fx = Fixture::autoconfirm();
    let email = unique_email("dora");
    fx.sign_up(&email, "dora-password");
    let sessions: Vec<Value> = (0..3)
        .map(|_| fx.sign_in(&email, "dora-password").ok().clone())
        .collect();
    let token = |i: usize| sessions[i]["access_token"].as_str().unwrap().to_owned();
    let refresh = |i: usize| sessions[i]["refresh_token"].as_str().unwrap().to_owned();

    let local = fx.call(
        Method::POST,
        "/auth/v1/logout?scope=local",
        Some(&token(0)),
        None,
    );
    assert_eq!(local.status, StatusCode::NO_CONTENT);
    assert_eq!(
        fx.refresh(&refresh(0)).error_code(StatusCode::BAD_REQUEST),
        "refresh_token_not_found"
    );
    let others = fx.call(
        Method::POST,
        "/auth/v1/logout?scope=others",
        Some(&token(1)),
        None,
    );
    assert_eq!(others.status, StatusCode::NO_CONTENT);
    assert_eq!(
        fx.refresh(&refresh(2)).error_code(StatusCode::BAD_REQUEST),
        "refresh_token_not_found"
    );
    fx.refresh(&refresh(1)).ok();

    let bad = fx.call(
        Method::POST,
        "/auth/v1/logout?scope=everything",
        Some(&token(1)),
        None,
    );
    assert_eq!(bad.error_code(StatusCode::BAD_REQUEST), "validation_failed");
    let anonymous = fx.call(Method::POST, "/auth/v1/logout", None, None);
    assert_eq!(
        anonymous.error_code(StatusCode::UNAUTHORIZED),
        "no_authorization"
    );
}

#[test]
fn confirmation_mail_and_link_when_autoconfirm_is_off() {
    let fx = Fixture::new(AuthSettings {
        additional_redirect_urls: vec!["https://app.example/".into()],
        ..AuthSettings::default()
    });
    let email = unique_email("erin");
    let signed_up = fx.post(
        "/auth/v1/signup?redirect_to=https%3A%2F%2Fapp.example%2Fwelcome",
        json!({"email": email, "password": "erin-password", "data": {"name": "Erin"}}),
    );
    let user = signed_up.ok().clone();
    assert!(
        user.get("access_token").is_none(),
        "no session before confirmation"
    );
    assert_eq!(user["email"], email);
    assert!(user["email_confirmed_at"].is_null());
    assert!(user["confirmation_sent_at"].is_string());
    assert_eq!(user["user_metadata"], json!({"name": "Erin"}));
    assert_eq!(
        fx.sign_in(&email, "erin-password")
            .error_code(StatusCode::BAD_REQUEST),
        "email_not_confirmed"
    );

    // The mail went to the outbox; its link confirms and redirects with a session.
    let mail = fx.db.rows(&format!(
        "SELECT kind, subject, body FROM auth.mail_outbox WHERE recipient = '{email}'"
    ));
    assert_eq!(mail[0]["kind"], "signup");
    let body = mail[0]["body"].as_str().unwrap();
    let link = body
        .lines()
        .find(|line| line.contains("/auth/v1/verify?"))
        .unwrap();
    assert!(
        // As GoTrue writes it: a redirect without `&`, `=` or `#` goes in as it is.
        link.ends_with("redirect_to=https://app.example/welcome"),
        "{link}"
    );
    let path = link[link.find("/auth/v1/verify").unwrap()..].to_owned();
    let followed = fx.call(Method::GET, &path, None, None);
    assert_eq!(followed.status, StatusCode::SEE_OTHER, "{}", followed.text);
    let location = followed.headers["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://app.example/welcome#access_token="),
        "{location}"
    );
    assert!(location.contains("&refresh_token=") && location.contains("&type=signup"));
    fx.sign_in(&email, "erin-password").ok();

    // A used link is refused, in the fragment.
    let again = fx.call(Method::GET, &path, None, None);
    let location = again.headers["location"].to_str().unwrap();
    assert!(
        location.contains("#error=access_denied&error_code=otp_expired"),
        "{location}"
    );
    // Signing up again with the email: the answer of a new sign-up, with a made-up id and no
    // identities; no mail is sent and the account is unchanged.
    let again = fx.post(
        "/auth/v1/signup",
        json!({"email": email, "password": "another-password"}),
    );
    let stand_in = again.ok().clone();
    assert_eq!(stand_in["email"], email);
    assert_eq!(stand_in["identities"], json!([]));
    assert_ne!(stand_in["id"], user["id"]);
    assert!(stand_in["confirmation_sent_at"].is_string());
    let mails = fx.db.rows(&format!(
        "SELECT 1 FROM auth.mail_outbox WHERE recipient = '{email}'"
    ));
    assert_eq!(mails.as_array().unwrap().len(), 1);
    fx.sign_in(&email, "erin-password").ok();

    // A link edited to send the browser elsewhere goes to the site URL instead.
    let evil = path.replace("app.example", "evil.example");
    let diverted = fx.call(Method::GET, &evil, None, None);
    assert_eq!(diverted.status, StatusCode::SEE_OTHER);
    let location = diverted.headers["location"].to_str().unwrap();
    assert!(location.starts_with("http://127.0.0.1:3000#"), "{location}");
}

#[test]
fn password_recovery_through_the_outbox() {
    let fx = Fixture::autoconfirm();
    let email = unique_email("fay");
    fx.sign_up(&email, "fay-password");

    // Unknown and known emails get the same answer; only the known one gets mail.
    let unknown = fx.post("/auth/v1/recover", json!({"email": unique_email("nobody")}));
    assert_eq!(unknown.ok(), &json!({}));
    let known = fx.post("/auth/v1/recover", json!({"email": email}));
    assert_eq!(known.ok(), &json!({}));
    // The link is mailed after the answer (so that its time does not tell either).
    let mail = fx.rows_eventually(
        "SELECT recipient, body FROM auth.mail_outbox WHERE kind = 'recovery'",
        1,
    );
    assert_eq!(mail.as_array().unwrap().len(), 1, "{mail}");
    assert_eq!(mail[0]["recipient"], email);
    let body = mail[0]["body"].as_str().unwrap();
    let code = body.rsplit("Or enter this code: ").next().unwrap().trim();

    let session = fx.post(
        "/auth/v1/verify",
        json!({"type": "recovery", "email": email, "token": code}),
    );
    let access = session.ok()["access_token"].as_str().unwrap().to_owned();
    fx.call(
        Method::PUT,
        "/auth/v1/user",
        Some(&access),
        Some(json!({"password": "fay-new-password"})),
    )
    .ok();
    fx.sign_in(&email, "fay-new-password").ok();

    let reused = fx.post(
        "/auth/v1/verify",
        json!({"type": "recovery", "token": code}),
    );
    assert_eq!(reused.error_code(StatusCode::FORBIDDEN), "otp_expired");
}

#[test]
fn admin_users_for_the_service_role_only() {
    let fx = Fixture::autoconfirm();
    let service = fx.service_key.clone();
    let email = unique_email("gus");
    let created = fx.call(
        Method::POST,
        "/auth/v1/admin/users",
        Some(&service),
        Some(json!({
            "email": email, "password": "gus-password", "email_confirm": true,
            "user_metadata": {"name": "Gus"}, "app_metadata": {"plan": "pro"}
        })),
    );
    let user = created.ok().clone();
    let id = user["id"].as_str().unwrap().to_owned();
    assert_eq!(user["app_metadata"]["plan"], "pro");
    assert_eq!(user["app_metadata"]["provider"], "email");
    fx.sign_in(&email, "gus-password").ok();

    let listed = fx.call(
        Method::GET,
        "/auth/v1/admin/users?page=1&per_page=10",
        Some(&service),
        None,
    );
    assert_eq!(listed.ok()["users"][0]["id"], id.as_str());
    assert_eq!(listed.headers["x-total-count"], "1");
    assert!(listed.headers["link"]
        .to_str()
        .unwrap()
        .contains("rel=\"last\""));

    let path = format!("/auth/v1/admin/users/{id}");
    assert_eq!(
        fx.call(Method::GET, &path, Some(&service), None).ok()["email"],
        email
    );
    let updated = fx.call(
        Method::PUT,
        &path,
        Some(&service),
        Some(json!({"app_metadata": {"plan": null, "team": "a"}})),
    );
    assert_eq!(
        updated.ok()["app_metadata"],
        json!({"provider": "email", "providers": ["email"], "team": "a"})
    );

    // Other callers.
    let anon = fx.anon_key.clone();
    let user_token = fx.sign_in(&email, "gus-password").ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for token in [&anon, &user_token] {
        let refused = fx.call(Method::GET, "/auth/v1/admin/users", Some(token), None);
        assert_eq!(refused.error_code(StatusCode::FORBIDDEN), "not_admin");
    }
    let bad_id = fx.call(
        Method::GET,
        "/auth/v1/admin/users/not-a-uuid",
        Some(&service),
        None,
    );
    assert_eq!(
        bad_id.error_code(StatusCode::BAD_REQUEST),
        "validation_failed"
    );

    // Deleting a user ends their sessions.
    let session = fx.sign_in(&email, "gus-password").ok().clone();
    fx.call(Method::DELETE, &path, Some(&service), None).ok();
    assert_eq!(
        fx.call(Method::GET, &path, Some(&service), None)
            .error_code(StatusCode::NOT_FOUND),
        "user_not_found"
    );
    assert_eq!(
        fx.refresh(session["refresh_token"].as_str().unwrap())
            .error_code(StatusCode::BAD_REQUEST),
        "refresh_token_not_found"
    );
    let access = session["access_token"].as_str().unwrap();
    assert_eq!(
        fx.call(Method::GET, "/auth/v1/user", Some(access), None)
            .error_code(StatusCode::FORBIDDEN),
        "user_not_found"
    );
}

#[test]
fn users_go_through_the_change_log() {
    let fx = Fixture::autoconfirm();
    let email = unique_email("hal");
    let session = fx.sign_up(&email, "hal-password");
    let events = fx.db.rows(
        "SELECT op, record FROM sluice.changes \
         WHERE schema_name = 'auth' AND table_name = 'users' ORDER BY position",
    );
    assert_eq!(events[0]["op"], "INSERT", "{events}");
    assert_eq!(events[0]["record"]["email"], email);
    assert_eq!(events[0]["record"]["id"], session["user"]["id"]);
    // Secrets are kept out of the tracked table, so the log never holds a hash.
    assert!(!events.to_string().contains("argon2"), "{events}");
}

#[test]
fn validation_errors_are_gotrue_shaped_4xx() {
    let fx = Fixture::new(AuthSettings {
        autoconfirm: true,
        password_min_length: 10,
        ..AuthSettings::default()
    });
    let weak = fx.post(
        "/auth/v1/signup",
        json!({"email": unique_email("ivy"), "password": "short"}),
    );
    assert_eq!(
        weak.error_code(StatusCode::UNPROCESSABLE_ENTITY),
        "weak_password"
    );
    assert_eq!(weak.body["weak_password"]["reasons"], json!(["length"]));
    assert_eq!(
        weak.body["msg"],
        "Password should be at least 10 characters."
    );

    let email = unique_email("ivy");
    fx.sign_up(&email, "long-enough-password");
    let taken = fx.post(
        "/auth/v1/signup",
        json!({"email": email.to_uppercase(), "password": "long-enough-password"}),
    );
    assert_eq!(
        taken.error_code(StatusCode::UNPROCESSABLE_ENTITY),
        "user_already_exists"
    );

    let bad_email = fx.post(
        "/auth/v1/signup",
        json!({"email": "not an email", "password": "x".repeat(12)}),
    );
    assert_eq!(
        bad_email.error_code(StatusCode::BAD_REQUEST),
        "email_address_invalid"
    );
    // No email, phone or password is an anonymous sign-in (as in GoTrue), off by default.
    let bad_json = fx.call(Method::POST, "/auth/v1/signup", None, None);
    assert_eq!(
        bad_json.error_code(StatusCode::UNPROCESSABLE_ENTITY),
        "anonymous_provider_disabled"
    );
    let no_email = fx.post("/auth/v1/signup", json!({"password": "x".repeat(12)}));
    assert_eq!(
        no_email.error_code(StatusCode::BAD_REQUEST),
        "validation_failed"
    );
    let bad_grant = fx.post("/auth/v1/token?grant_type=magic", json!({}));
    assert_eq!(
        bad_grant.error_code(StatusCode::BAD_REQUEST),
        "validation_failed"
    );
    let no_grant = fx.post("/auth/v1/token", json!({}));
    assert_eq!(
        no_grant.error_code(StatusCode::BAD_REQUEST),
        "validation_failed"
    );

    // A body that is not JSON.
    let reply = fx.runtime.block_on(async {
        use axum::body::{to_bytes, Body};
        use tower::ServiceExt;
        let request = axum::http::Request::post("/auth/v1/signup")
            .body(Body::from("{\"email\":"))
            .unwrap();
        let response = fx.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice::<Value>(&bytes).unwrap())
    });
    assert_eq!(reply.0, StatusCode::BAD_REQUEST);
    assert_eq!(reply.1["error_code"], "bad_json");

    let settings = fx.call(Method::GET, "/auth/v1/settings", None, None);
    assert_eq!(settings.ok()["mailer_autoconfirm"], true);
    assert_eq!(settings.body["external"]["email"], true);
}

#[test]
fn access_token_lifetime_is_configurable() {
    let fx = Fixture::new(AuthSettings {
        autoconfirm: true,
        jwt_expiry: Duration::from_secs(120),
        ..AuthSettings::default()
    });
    let session = fx.sign_up(&unique_email("jo"), "jo-password");
    assert_eq!(session["expires_in"], 120);
    let claims = claims_of(session["access_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        120
    );
}

#[test]
fn an_email_change_waits_for_the_link_sent_to_the_new_address() {
    let fx = Fixture::new(AuthSettings::default());
    let service = fx.service_key.clone();
    let old = unique_email("kim");
    let created = fx.call(
        Method::POST,
        "/auth/v1/admin/users",
        Some(&service),
        Some(json!({"email": old, "password": "kim-password", "email_confirm": true})),
    );
    created.ok();
    let access = fx.sign_in(&old, "kim-password").ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let taken = unique_email("taken");
    fx.call(
        Method::POST,
        "/auth/v1/admin/users",
        Some(&service),
        Some(json!({"email": taken, "password": "x-password"})),
    )
    .ok();
    let refused = fx.call(
        Method::PUT,
        "/auth/v1/user",
        Some(&access),
        Some(json!({"email": taken})),
    );
    assert_eq!(
        refused.error_code(StatusCode::UNPROCESSABLE_ENTITY),
        "user_already_exists"
    );

    let new = unique_email("kim-new");
    let pending = fx.call(
        Method::PUT,
        "/auth/v1/user",
        Some(&access),
        Some(json!({"email": new.to_uppercase()})),
    );
    assert_eq!(pending.ok()["email"], old, "not changed yet");
    assert_eq!(pending.body["new_email"], new);
    assert!(pending.body["email_change_sent_at"].is_string());
    let mail = fx.db.rows(&format!(
        "SELECT body FROM auth.mail_outbox WHERE kind = 'email_change' AND recipient = '{new}'"
    ));
    let body = mail[0]["body"].as_str().unwrap();
    let code = body.rsplit("Or enter this code: ").next().unwrap().trim();
    fx.post(
        "/auth/v1/verify",
        json!({"type": "email_change", "token": code}),
    )
    .ok();
    let user = fx.call(Method::GET, "/auth/v1/user", Some(&access), None);
    assert_eq!(user.ok()["email"], new);
    assert!(user.body.get("new_email").is_none());
    fx.sign_in(&new, "kim-password").ok();
    assert_eq!(
        fx.sign_in(&old, "kim-password")
            .error_code(StatusCode::BAD_REQUEST),
        "invalid_credentials"
    );
}

#[test]
fn with_autoconfirm_an_email_change_applies_at_once() {
    let fx = Fixture::autoconfirm();
    let session = fx.sign_up(&unique_email("lou"), "lou-password");
    let access = session["access_token"].as_str().unwrap();
    let new = unique_email("lou-new");
    let changed = fx.call(
        Method::PUT,
        "/auth/v1/user",
        Some(access),
        Some(json!({"email": new})),
    );
    assert_eq!(changed.ok()["email"], new);
    fx.sign_in(&new, "lou-password").ok();
}
