//! What the auth API must refuse: expired, tampered and unsigned tokens, refresh-token reuse,
//! banned users, password guessing past the rate limit; and password hashes must be readable
//! through no endpoint. Real router, real pool as `authenticator`, real Postgres.

mod support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;
use sluice_sidecar::auth::accounts::ratelimit::Limit;
use sluice_sidecar::auth::accounts::settings::AuthSettings;
use support::auth::{claims_of, sign, unique_email, Fixture};

fn no_grace() -> AuthSettings {
    AuthSettings {
        autoconfirm: true,
        refresh_reuse_interval: Duration::ZERO,
        ..AuthSettings::default()
    }
}

#[test]
fn expired_tampered_and_unsigned_tokens_are_refused_by_auth_and_rest() {
    let fx = Fixture::autoconfirm();
    let ann = fx.sign_up(&unique_email("ann"), "ann-password");
    let bob = fx.sign_up(&unique_email("bob"), "bob-password");
    let token = ann["access_token"].as_str().unwrap();
    let mut claims = claims_of(token);

    // Expired: the same claims, an hour past their end (beyond the 30 s leeway).
    let now = claims["iat"].as_u64().unwrap();
    claims["iat"] = json!(now - 7200);
    claims["exp"] = json!(now - 3600);
    let expired = sign(&claims);

    // Tampered: Bob's id put into Ann's token, her signature kept.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut forged = claims_of(token);
    forged["sub"] = bob["user"]["id"].clone();
    parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
    let tampered = parts.join(".");

    // alg none: no signature at all.
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{header}.{}.", parts[1]);

    for (name, bad, rest_code) in [
        ("expired", &expired, "PGRST303"),
        ("tampered", &tampered, "PGRST301"),
        ("alg none", &unsigned, "PGRST301"),
    ] {
        let user = fx.call(Method::GET, "/auth/v1/user", Some(bad), None);
        assert_eq!(user.error_code(StatusCode::FORBIDDEN), "bad_jwt", "{name}");
        let update = fx.call(
            Method::PUT,
            "/auth/v1/user",
            Some(bad),
            Some(json!({"data": {"x": 1}})),
        );
        assert_eq!(
            update.error_code(StatusCode::FORBIDDEN),
            "bad_jwt",
            "{name}"
        );
        let logout = fx.call(Method::POST, "/auth/v1/logout", Some(bad), None);
        assert_eq!(
            logout.error_code(StatusCode::FORBIDDEN),
            "bad_jwt",
            "{name}"
        );
        let rest = fx.call(Method::GET, "/rest/v1/todos", Some(bad), None);
        assert_eq!(
            rest.status,
            StatusCode::UNAUTHORIZED,
            "{name}: {}",
            rest.text
        );
        assert_eq!(rest.body["code"], rest_code, "{name}");
    }
    // The genuine token still works, and Bob's session was untouched.
    fx.call(Method::GET, "/auth/v1/user", Some(token), None)
        .ok();
    let bob_token = bob["access_token"].as_str().unwrap();
    fx.call(Method::GET, "/auth/v1/user", Some(bob_token), None)
        .ok();
    let missing = fx.call(Method::GET, "/auth/v1/user", None, None);
    assert_eq!(
        missing.error_code(StatusCode::UNAUTHORIZED),
        "no_authorization"
    );
    let api_key = fx.anon_key.clone();
    let not_a_user = fx.call(Method::GET, "/auth/v1/user", Some(&api_key), None);
    assert_eq!(not_a_user.error_code(StatusCode::FORBIDDEN), "bad_jwt");
}

#[test]
fn refresh_token_reuse_revokes_the_whole_session_including_the_newest_token() {
    let fx = Fixture::new(no_grace());
    let email = unique_email("cat");
    fx.sign_up(&email, "cat-password");
    let first = fx.sign_in(&email, "cat-password").ok().clone();
    let bystander = fx.sign_in(&email, "cat-password").ok().clone();

    let r0 = first["refresh_token"].as_str().unwrap().to_owned();
    let second = fx.refresh(&r0).ok().clone();
    let r1 = second["refresh_token"].as_str().unwrap().to_owned();
    let third = fx.refresh(&r1).ok().clone();
    let r2 = third["refresh_token"].as_str().unwrap().to_owned();
    let newest_access = third["access_token"].as_str().unwrap().to_owned();
    fx.call(Method::GET, "/auth/v1/user", Some(&newest_access), None)
        .ok();

    // A thief replays the first token: refused, and the session is revoked.
    std::thread::sleep(Duration::from_millis(20));
    let replay = fx.refresh(&r0);
    assert_eq!(
        replay.error_code(StatusCode::BAD_REQUEST),
        "refresh_token_already_used"
    );
    assert_eq!(replay.body["msg"], "Invalid Refresh Token: Already Used");
    // The newest token, and the newest access token's session, are dead too.
    assert_eq!(
        fx.refresh(&r2).error_code(StatusCode::BAD_REQUEST),
        "refresh_token_not_found"
    );
    assert_eq!(
        fx.call(Method::GET, "/auth/v1/user", Some(&newest_access), None)
            .error_code(StatusCode::FORBIDDEN),
        "session_not_found"
    );
    // The user's other session is not affected.
    fx.refresh(bystander["refresh_token"].as_str().unwrap())
        .ok();
    // Stored hashed with parent links: the chain r0 -> r1 -> r2 existed, now gone with the session.
    let left = fx
        .db
        .rows("SELECT count(*) AS n FROM auth.refresh_tokens WHERE parent IS NOT NULL");
    assert_eq!(
        left[0]["n"], 1,
        "only the bystander's rotated token: {left}"
    );
}

#[test]
fn a_concurrent_refresh_within_the_grace_window_is_not_reuse() {
    let fx = Fixture::autoconfirm(); // the default 10 s window
    let session = fx.sign_up(&unique_email("dan"), "dan-password");
    let r0 = session["refresh_token"].as_str().unwrap().to_owned();
    let a = fx.refresh(&r0).ok().clone();
    let b = fx.refresh(&r0).ok().clone();
    assert_ne!(a["refresh_token"], b["refresh_token"]);
    // Both answers are usable: whichever the client kept works.
    fx.refresh(a["refresh_token"].as_str().unwrap()).ok();
    fx.refresh(b["refresh_token"].as_str().unwrap()).ok();
    let tokens = fx.db.rows("SELECT token_hash FROM auth.refresh_tokens");
    let stored = tokens.to_string();
    assert!(!stored.contains(&r0), "tokens are stored hashed");
    assert!(tokens[0]["token_hash"].as_str().unwrap().len() == 64);
}

#[test]
fn a_banned_user_cannot_sign_in_or_refresh() {
    let fx = Fixture::autoconfirm();
    let service = fx.service_key.clone();
    let email = unique_email("eve");
    let session = fx.sign_up(&email, "eve-password");
    let id = session["user"]["id"].as_str().unwrap().to_owned();
    let kept = fx.sign_in(&email, "eve-password").ok().clone();

    // Banned directly in SQL (sessions kept): refresh is refused for the ban itself.
    fx.db.execute(&format!(
        "UPDATE auth.users SET banned_until = now() + interval '1 day' WHERE id = '{id}'"
    ));
    let refused = fx.refresh(kept["refresh_token"].as_str().unwrap());
    assert_eq!(refused.error_code(StatusCode::BAD_REQUEST), "user_banned");
    assert_eq!(refused.body["msg"], "User is banned");
    let sign_in = fx.sign_in(&email, "eve-password");
    assert_eq!(sign_in.error_code(StatusCode::BAD_REQUEST), "user_banned");
    // A wrong password still says only that the credentials are wrong.
    assert_eq!(
        fx.sign_in(&email, "guess")
            .error_code(StatusCode::BAD_REQUEST),
        "invalid_credentials"
    );

    // Lifted by an admin, then banned by an admin, which also ends the sessions.
    let path = format!("/auth/v1/admin/users/{id}");
    let lifted = fx.call(
        Method::PUT,
        &path,
        Some(&service),
        Some(json!({"ban_duration": "none"})),
    );
    assert!(lifted.ok().get("banned_until").is_none());
    let again = fx.sign_in(&email, "eve-password").ok().clone();
    let banned = fx.call(
        Method::PUT,
        &path,
        Some(&service),
        Some(json!({"ban_duration": "24h"})),
    );
    assert!(banned.ok()["banned_until"].is_string());
    assert_eq!(
        fx.refresh(again["refresh_token"].as_str().unwrap())
            .error_code(StatusCode::BAD_REQUEST),
        "refresh_token_not_found"
    );
    assert_eq!(
        fx.sign_in(&email, "eve-password")
            .error_code(StatusCode::BAD_REQUEST),
        "user_banned"
    );
    let bad = fx.call(
        Method::PUT,
        &path,
        Some(&service),
        Some(json!({"ban_duration": "1 week"})),
    );
    assert_eq!(bad.error_code(StatusCode::BAD_REQUEST), "validation_failed");
}

#[test]
fn password_guessing_is_stopped_by_the_rate_limits() {
    let fx = Fixture::new(AuthSettings {
        autoconfirm: true,
        per_ip: Limit {
            limit: 8,
            window: Duration::from_secs(60),
        },
        per_email: Limit {
            limit: 4,
            window: Duration::from_secs(60),
        },
        ..AuthSettings::default()
    });
    let email = unique_email("fred");
    fx.sign_up(&email, "fred-password");
    let guess = |ip: &str, email: &str, password: &str| {
        fx.call_from(
            ip,
            Method::POST,
            "/auth/v1/token?grant_type=password",
            None,
            Some(json!({"email": email, "password": password})),
        )
    };

    // Per account from one address: four guesses, then even the right password is refused
    // there; the owner, from another address, is not locked out (tests/auth_lockout.rs does the
    // same with real client addresses).
    for i in 0..4 {
        let reply = guess("10.0.0.1", &email, &format!("guess-{i}"));
        assert_eq!(
            reply.error_code(StatusCode::BAD_REQUEST),
            "invalid_credentials"
        );
    }
    let limited = guess("10.0.0.1", &email, "fred-password");
    assert_eq!(
        limited.error_code(StatusCode::TOO_MANY_REQUESTS),
        "over_request_rate_limit"
    );
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    guess("10.0.0.9", &email, "fred-password").ok();

    // Per IP: one address trying many emails.
    for i in 0..8 {
        let reply = guess("10.1.1.1", &unique_email(&format!("x{i}")), "guess");
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    }
    let limited = guess("10.1.1.1", &unique_email("y"), "guess");
    assert_eq!(
        limited.error_code(StatusCode::TOO_MANY_REQUESTS),
        "over_request_rate_limit"
    );
    assert!(limited.headers.contains_key("retry-after"));
    // Another address is not affected.
    let other = guess("10.2.2.2", &unique_email("z"), "guess");
    assert_eq!(
        other.error_code(StatusCode::BAD_REQUEST),
        "invalid_credentials"
    );

    // Sign-up and recovery are limited too.
    for _ in 0..8 {
        fx.call_from(
            "10.3.3.3",
            Method::POST,
            "/auth/v1/recover",
            None,
            Some(json!({"email": unique_email("r")})),
        )
        .ok();
    }
    let recover = fx.call_from(
        "10.3.3.3",
        Method::POST,
        "/auth/v1/recover",
        None,
        Some(json!({"email": unique_email("r")})),
    );
    assert_eq!(recover.status, StatusCode::TOO_MANY_REQUESTS);
}

#[test]
fn password_hashes_are_readable_through_no_endpoint() {
    let fx = Fixture::autoconfirm();
    let service = fx.service_key.clone();
    let email = unique_email("gil");
    let session = fx.sign_up(&email, "gil-password");
    let access = session["access_token"].as_str().unwrap().to_owned();
    let id = session["user"]["id"].as_str().unwrap().to_owned();
    let stored = fx.db.rows("SELECT hash FROM auth.passwords");
    assert!(stored[0]["hash"]
        .as_str()
        .unwrap()
        .starts_with("$argon2id$"));

    // Every auth answer about the user.
    let answers = [
        session.to_string(),
        fx.sign_in(&email, "gil-password").text,
        fx.call(Method::GET, "/auth/v1/user", Some(&access), None)
            .text,
        fx.call(Method::GET, "/auth/v1/admin/users", Some(&service), None)
            .text,
        fx.call(
            Method::GET,
            &format!("/auth/v1/admin/users/{id}"),
            Some(&service),
            None,
        )
        .text,
    ];
    for answer in &answers {
        assert!(!answer.contains("argon2"), "{answer}");
        assert!(!answer.contains("hash"), "{answer}");
    }

    // REST refuses the auth schema, with any key.
    for token in [&access, &service] {
        for path in ["/rest/v1/users", "/rest/v1/passwords"] {
            let reply = fx.call_with(
                "127.0.0.1",
                Method::GET,
                path,
                &[("accept-profile", "auth")],
                Some(token),
                None,
            );
            assert!(reply.status.is_client_error(), "{path}: {}", reply.text);
            assert!(!reply.text.contains("argon2"));
        }
        let rpc = fx.call(
            Method::POST,
            "/rest/v1/rpc/sluice_password_of",
            Some(token),
            Some(json!({"email": email})),
        );
        assert!(rpc.status.is_client_error(), "{}", rpc.text);
    }

    // Even a function someone writes in an exposed schema cannot read them with the service key:
    // the request roles hold no privilege on the auth tables or functions.
    fx.db.execute(
        "CREATE FUNCTION public.leak() RETURNS SETOF text LANGUAGE sql AS \
         $$ SELECT hash FROM auth.passwords $$; \
         CREATE FUNCTION public.leak_fn(email text) RETURNS text LANGUAGE sql AS \
         $$ SELECT hash FROM auth.sluice_password_of(email) $$; \
         NOTIFY pgrst, 'reload schema';",
    );
    // The schema cache reloads after DDL (its task runs while the fixture's runtime does, that
    // is during calls): ask until it knows the function.
    let rpc = |path: &str, body| fx.call(Method::POST, path, Some(&service), Some(body));
    let mut leak = rpc("/rest/v1/rpc/leak", json!({}));
    for _ in 0..100 {
        if leak.status != StatusCode::NOT_FOUND {
            break;
        }
        fx.runtime
            .block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });
        leak = rpc("/rest/v1/rpc/leak", json!({}));
    }
    assert_eq!(leak.status, StatusCode::FORBIDDEN, "{}", leak.text);
    assert_eq!(leak.body["code"], "42501");
    let leak = fx.call(
        Method::POST,
        "/rest/v1/rpc/leak_fn",
        Some(&service),
        Some(json!({"email": email})),
    );
    assert_eq!(leak.status, StatusCode::FORBIDDEN, "{}", leak.text);
}

#[test]
fn behind_a_proxy_the_configured_header_names_the_client() {
    let fx = Fixture::new(AuthSettings {
        autoconfirm: true,
        client_ip_header: Some("x-forwarded-for".into()),
        per_ip: Limit {
            limit: 2,
            window: Duration::from_secs(60),
        },
        ..AuthSettings::default()
    });
    let attempt = |forwarded: &str| {
        fx.call_with(
            "10.9.9.9", // the proxy
            Method::POST,
            "/auth/v1/token?grant_type=password",
            &[("x-forwarded-for", forwarded)],
            None,
            Some(json!({"email": unique_email("p"), "password": "guess"})),
        )
    };
    // The spoofable first entries do not matter; the proxy's own (last) entry does.
    assert_eq!(
        attempt("1.1.1.1, 198.51.100.1").status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        attempt("2.2.2.2, 198.51.100.1").status,
        StatusCode::BAD_REQUEST
    );
    let limited = attempt("3.3.3.3, 198.51.100.1");
    assert_eq!(
        limited.error_code(StatusCode::TOO_MANY_REQUESTS),
        "over_request_rate_limit"
    );
    // Another client behind the same proxy has its own budget.
    assert_eq!(attempt("198.51.100.2").status, StatusCode::BAD_REQUEST);
}
