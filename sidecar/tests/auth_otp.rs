//! Passwordless sign-in through the real router and a real Postgres: magic links and email codes,
//! phone codes (test numbers, and a Twilio-shaped HTTP sender against a real receiver started
//! here), PKCE, anonymous users and their conversion, the admin's invitations and generated
//! links; and what must be refused: reused, expired and guessed codes, foreign redirects.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::header::LOCATION;
use axum::http::{HeaderMap, Method, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sluice_sidecar::auth::accounts::ratelimit::Limit;
use sluice_sidecar::auth::accounts::settings::AuthSettings;
use sluice_sidecar::auth::accounts::sms::{SmsProvider, SmsSettings};
use support::auth::{claims_of, unique_email, Fixture, Reply};

const SITE: &str = "https://app.example";

fn settings() -> AuthSettings {
    AuthSettings {
        site_url: SITE.into(),
        ..AuthSettings::default()
    }
}

/// The last mail to `to`: (kind, link, code).
fn last_mail(fx: &Fixture, to: &str) -> (String, String, String) {
    let rows = fx.rows_eventually(
        &format!(
            "SELECT kind, body FROM auth.mail_outbox WHERE recipient = '{to}' ORDER BY id DESC"
        ),
        1,
    );
    let mail = &rows[0];
    let body = mail["body"].as_str().unwrap();
    let link = body
        .lines()
        .find(|line| line.starts_with("http"))
        .expect("a link")
        .to_owned();
    let code = body
        .split("Or enter this code: ")
        .nth(1)
        .expect("a code")
        .trim()
        .to_owned();
    (mail["kind"].as_str().unwrap().to_owned(), link, code)
}

fn verify(fx: &Fixture, body: Value) -> Reply {
    fx.post("/auth/v1/verify", body)
}

/// `GET` of a mailed link (path and query only): the `Location` it redirects to.
fn follow(fx: &Fixture, link: &str) -> String {
    let path = &link[link.find("/auth/v1/").unwrap()..];
    let reply = fx.call(Method::GET, path, None, None);
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
    reply.headers[LOCATION].to_str().unwrap().to_owned()
}

fn fragment(location: &str) -> HashMap<String, String> {
    let fragment = location.split_once('#').map_or("", |(_, f)| f);
    fragment
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn email_codes_and_magic_links_sign_in_once() {
    let fx = Fixture::new(settings());
    let email = unique_email("otp");

    // shouldCreateUser: false for an unknown email: GoTrue's refusal, and nothing is created.
    let refused = fx.post(
        "/auth/v1/otp",
        json!({"email": email, "create_user": false}),
    );
    assert_eq!(
        refused.error_code(StatusCode::UNPROCESSABLE_ENTITY),
        "otp_disabled"
    );
    assert_eq!(
        fx.db
            .rows(&format!("SELECT 1 FROM auth.users WHERE email = '{email}'")),
        json!([])
    );

    // A new email: the account is made, and a confirmation with a link and a code is mailed.
    let sent = fx.post("/auth/v1/otp", json!({"email": email}));
    assert_eq!(sent.ok(), &json!({}));
    let (kind, link, code) = last_mail(&fx, &email);
    assert_eq!(kind, "signup");
    assert_eq!(code.len(), 6);
    // Stored only as hashes: neither the code nor the link's token is in the table.
    let token = link
        .split("token=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let stored = fx
        .db
        .rows("SELECT code_hash, link_hash FROM auth.otp_codes")
        .to_string();
    assert!(
        !stored.contains(&code) && !stored.contains(token),
        "{stored}"
    );

    let wrong = if code == "000000" { "000001" } else { "000000" };
    let guess = verify(
        &fx,
        json!({"type": "email", "email": email, "token": wrong}),
    );
    assert_eq!(guess.error_code(StatusCode::FORBIDDEN), "otp_expired");
    assert_eq!(guess.body["msg"], "Token has expired or is invalid");

    let session = verify(&fx, json!({"type": "email", "email": email, "token": code}))
        .ok()
        .clone();
    assert!(session["access_token"].is_string());
    assert!(session["user"]["email_confirmed_at"].is_string());
    let claims = claims_of(session["access_token"].as_str().unwrap());
    assert_eq!(claims["amr"][0]["method"], "otp");
    assert_eq!(claims["email"], email.as_str());
    assert_eq!(claims["is_anonymous"], false);

    // Single use: the same code, and the link of the same mail, are both spent.
    let again = verify(&fx, json!({"type": "email", "email": email, "token": code}));
    assert_eq!(again.error_code(StatusCode::FORBIDDEN), "otp_expired");
    let spent = fragment(&follow(&fx, &link));
    assert_eq!(spent["error_code"], "otp_expired");

    // A confirmed user gets a magic link; following it signs in (the implicit flow's fragment).
    fx.post("/auth/v1/otp", json!({"email": email})).ok();
    let (kind, link, _) = last_mail(&fx, &email);
    assert_eq!(kind, "magiclink");
    let location = follow(&fx, &link);
    assert!(location.starts_with(&format!("{SITE}#")), "{location}");
    let signed_in = fragment(&location);
    let claims = claims_of(&signed_in["access_token"]);
    assert_eq!(claims["amr"][0]["method"], "magiclink");
    assert_eq!(signed_in["type"], "magiclink");
    // Followed twice: refused.
    assert_eq!(fragment(&follow(&fx, &link))["error_code"], "otp_expired");

    // The token_hash variant (verifyOtp({token_hash, type})), as email templates link it.
    fx.post("/auth/v1/otp", json!({"email": email})).ok();
    let (_, link, _) = last_mail(&fx, &email);
    let token = link
        .split("token=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let hash: String = Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    verify(&fx, json!({"type": "magiclink", "token_hash": hash})).ok();
    let reused = verify(&fx, json!({"type": "magiclink", "token_hash": hash}));
    assert_eq!(reused.error_code(StatusCode::FORBIDDEN), "otp_expired");
}

#[test]
fn expired_and_replaced_codes_are_refused() {
    let fx = Fixture::new(settings());
    let email = unique_email("late");
    fx.post("/auth/v1/otp", json!({"email": email})).ok();
    let (_, link, code) = last_mail(&fx, &email);
    // Two hours old (the validity is one hour).
    fx.db
        .execute("UPDATE auth.otp_codes SET created_at = now() - interval '2 hours'");
    let late = verify(&fx, json!({"type": "email", "email": email, "token": code}));
    assert_eq!(late.error_code(StatusCode::FORBIDDEN), "otp_expired");
    assert_eq!(fragment(&follow(&fx, &link))["error_code"], "otp_expired");

    // A new code replaces the previous one.
    fx.post("/auth/v1/otp", json!({"email": email})).ok();
    let (_, _, first) = last_mail(&fx, &email);
    fx.post("/auth/v1/otp", json!({"email": email})).ok();
    let (_, _, second) = last_mail(&fx, &email);
    if first != second {
        let old = verify(
            &fx,
            json!({"type": "email", "email": email, "token": first}),
        );
        assert_eq!(old.error_code(StatusCode::FORBIDDEN), "otp_expired");
    }
    verify(
        &fx,
        json!({"type": "email", "email": email, "token": second}),
    )
    .ok();
}

#[test]
fn guessing_burns_the_code_and_hits_the_rate_limits() {
    let window = Duration::from_secs(300);
    let fx = Fixture::new(AuthSettings {
        per_email: Limit { limit: 7, window },
        per_ip: Limit { limit: 30, window },
        ..settings()
    });
    let email = unique_email("guess");
    fx.post("/auth/v1/otp", json!({"email": email})).ok();
    let (_, _, code) = last_mail(&fx, &email);
    let wrong: Vec<String> = (0..6)
        .map(|i| format!("{:06}", (code.parse::<u32>().unwrap() + 1 + i) % 1_000_000))
        .collect();
    // Five wrong guesses: each refused, and the fifth deletes the code...
    for guess in &wrong[..5] {
        let reply = verify(
            &fx,
            json!({"type": "email", "email": email, "token": guess}),
        );
        assert_eq!(reply.error_code(StatusCode::FORBIDDEN), "otp_expired");
    }
    // ...so the right code no longer works either.
    let right = verify(&fx, json!({"type": "email", "email": email, "token": code}));
    assert_eq!(right.error_code(StatusCode::FORBIDDEN), "otp_expired");
    assert_eq!(
        fx.db.rows("SELECT 1 FROM auth.otp_codes"),
        json!([]),
        "the guessed code is gone"
    );
    // Every attempt counted toward the account's limit (7 per window): the next ones are 429.
    fx.post("/auth/v1/otp", json!({"email": email})).ok();
    let (_, _, fresh) = last_mail(&fx, &email);
    verify(
        &fx,
        json!({"type": "email", "email": email, "token": wrong[5]}),
    );
    let limited = verify(
        &fx,
        json!({"type": "email", "email": email, "token": fresh}),
    );
    assert_eq!(
        limited.error_code(StatusCode::TOO_MANY_REQUESTS),
        "over_request_rate_limit"
    );
    assert!(limited.headers.contains_key("retry-after"));

    // Per address: guesses at many accounts from one address stop at the address's limit.
    let fx = Fixture::new(AuthSettings {
        per_ip: Limit { limit: 4, window },
        ..settings()
    });
    let mut statuses = Vec::new();
    for i in 0..6 {
        let reply = fx.call_from(
            "203.0.113.9",
            Method::POST,
            "/auth/v1/verify",
            None,
            Some(json!({"type": "email", "email": unique_email(&format!("v{i}")), "token": "123456"})),
        );
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, [403, 403, 403, 403, 429, 429]);
}

#[test]
fn redirects_to_foreign_origins_are_refused() {
    let fx = Fixture::new(AuthSettings {
        additional_redirect_urls: vec!["http://localhost:5173/".into()],
        ..settings()
    });
    let email = unique_email("redir");
    for (asked, landed) in [
        ("https://evil.example/steal", SITE.to_owned()),
        ("https://app.example.evil.example/", SITE.to_owned()),
        (
            "http://localhost:5173/cb",
            "http://localhost:5173/cb".to_owned(),
        ),
        (
            "https://app.example/welcome",
            "https://app.example/welcome".to_owned(),
        ),
    ] {
        let path = format!(
            "/auth/v1/otp?redirect_to={}",
            sluice_sidecar::auth::accounts::percent_encode(asked)
        );
        fx.post(&path, json!({"email": email})).ok();
        let (_, link, _) = last_mail(&fx, &email);
        let location = follow(&fx, &link);
        assert_eq!(location.split('#').next().unwrap(), landed, "{asked}");
    }
    // A link whose redirect_to was edited afterwards still lands on the site.
    fx.post("/auth/v1/otp", json!({"email": email})).ok();
    let (_, link, _) = last_mail(&fx, &email);
    let edited = format!(
        "{}&redirect_to=https%3A%2F%2Fevil.example%2F",
        link.split("&redirect_to=").next().unwrap()
    );
    let location = follow(&fx, &edited);
    assert!(
        location.starts_with(&format!("{SITE}#access_token=")),
        "{location}"
    );
}

/// A PKCE verifier and its S256 challenge.
fn pkce_pair(seed: &str) -> (String, String) {
    let verifier = format!("{seed}-{}", "v".repeat(50));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn code_of(location: &str) -> String {
    let query = location.split_once('?').expect("a query").1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("code="))
        .expect("a code")
        .to_owned()
}

fn exchange(fx: &Fixture, code: &str, verifier: &str) -> Reply {
    fx.post(
        "/auth/v1/token?grant_type=pkce",
        json!({"auth_code": code, "code_verifier": verifier}),
    )
}

#[test]
fn pkce_magic_link_signup_and_recovery_exchange_once() {
    let fx = Fixture::new(settings());
    let email = unique_email("pkce");

    // Magic link (a new user, so a sign-up confirmation) with a challenge: the link redirects
    // with ?code=, which only the verifier turns into a session.
    let (verifier, challenge) = pkce_pair("a");
    fx.post(
        "/auth/v1/otp",
        json!({"email": email, "code_challenge": challenge, "code_challenge_method": "s256"}),
    )
    .ok();
    let (_, link, _) = last_mail(&fx, &email);
    let location = follow(&fx, &link);
    assert!(location.starts_with(&format!("{SITE}?code=")), "{location}");
    let code = code_of(&location);
    let wrong = exchange(&fx, &code, &pkce_pair("b").0);
    assert_eq!(
        wrong.error_code(StatusCode::BAD_REQUEST),
        "bad_code_verifier"
    );
    // The code was used up by that attempt: a stolen code gets one try, not many.
    let after = exchange(&fx, &code, &verifier);
    assert_eq!(
        after.error_code(StatusCode::NOT_FOUND),
        "flow_state_not_found"
    );

    fx.post(
        "/auth/v1/otp",
        json!({"email": email, "code_challenge": challenge, "code_challenge_method": "s256"}),
    )
    .ok();
    let (_, link, _) = last_mail(&fx, &email);
    let code = code_of(&follow(&fx, &link));
    let session = exchange(&fx, &code, &verifier).ok().clone();
    assert_eq!(session["user"]["email"], email.as_str());
    assert_eq!(
        claims_of(session["access_token"].as_str().unwrap())["amr"][0]["method"],
        "magiclink"
    );
    let reused = exchange(&fx, &code, &verifier);
    assert_eq!(
        reused.error_code(StatusCode::NOT_FOUND),
        "flow_state_not_found"
    );
    assert_eq!(
        exchange(&fx, "", &verifier).error_code(StatusCode::BAD_REQUEST),
        "validation_failed"
    );

    // An expired auth code (older than five minutes).
    fx.post(
        "/auth/v1/otp",
        json!({"email": email, "code_challenge": challenge, "code_challenge_method": "s256"}),
    )
    .ok();
    let (_, link, _) = last_mail(&fx, &email);
    let code = code_of(&follow(&fx, &link));
    fx.db
        .execute("UPDATE auth.flow_state SET auth_code_issued_at = now() - interval '10 minutes'");
    assert_eq!(
        exchange(&fx, &code, &verifier).error_code(StatusCode::UNPROCESSABLE_ENTITY),
        "flow_state_expired"
    );

    // Sign-up with a password, PKCE: the confirmation link gives a code.
    let other = unique_email("pkce-signup");
    let (verifier, challenge) = pkce_pair("c");
    fx.post(
        "/auth/v1/signup",
        json!({"email": other, "password": "pkce-password",
               "code_challenge": challenge, "code_challenge_method": "s256"}),
    )
    .ok();
    let (kind, link, _) = last_mail(&fx, &other);
    assert_eq!(kind, "signup");
    let code = code_of(&follow(&fx, &link));
    let session = exchange(&fx, &code, &verifier).ok().clone();
    assert!(session["user"]["email_confirmed_at"].is_string());

    // Recovery, PKCE.
    let (verifier, challenge) = pkce_pair("d");
    fx.post(
        "/auth/v1/recover",
        json!({"email": other, "code_challenge": challenge, "code_challenge_method": "s256"}),
    )
    .ok();
    let rows = fx.rows_eventually(
        &format!(
            "SELECT body FROM auth.mail_outbox WHERE recipient = '{other}' AND kind = 'recovery'"
        ),
        1,
    );
    let body = rows[0]["body"].as_str().unwrap();
    let link = body.lines().find(|line| line.starts_with("http")).unwrap();
    let code = code_of(&follow(&fx, link));
    let session = exchange(&fx, &code, &verifier).ok().clone();
    assert_eq!(
        claims_of(session["access_token"].as_str().unwrap())["amr"][0]["method"],
        "recovery"
    );

    // A challenge without its method is refused.
    let bad = fx.post(
        "/auth/v1/otp",
        json!({"email": email, "code_challenge": challenge}),
    );
    assert_eq!(bad.error_code(StatusCode::BAD_REQUEST), "validation_failed");
}

/// A Twilio-shaped receiver: records each message and answers as Twilio's Messages API does.
struct Twilio {
    url: String,
    received: Arc<Mutex<Vec<(HeaderMap, String, String)>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Twilio {
    fn start() -> Twilio {
        use axum::extract::{Path, State};
        use axum::response::IntoResponse;
        type Log = Arc<Mutex<Vec<(HeaderMap, String, String)>>>;
        async fn messages(
            State(log): State<Log>,
            Path(account): Path<String>,
            headers: HeaderMap,
            body: String,
        ) -> axum::response::Response {
            let n = {
                let mut log = log.lock().unwrap();
                log.push((headers, account, body.clone()));
                log.len()
            };
            if body.contains("To=%2B15559999999") {
                let error = json!({"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400});
                return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
            }
            let answer = json!({"sid": format!("SM{n:032}"), "status": "queued"});
            (StatusCode::CREATED, axum::Json(answer)).into_response()
        }
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let received: Log = Arc::default();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Messages.json",
                axum::routing::post(messages),
            )
            .with_state(Arc::clone(&received));
        runtime.spawn(async move { axum::serve(listener, app).await });
        Twilio {
            url,
            received,
            _runtime: runtime,
        }
    }
}

fn form_value(body: &str, name: &str) -> String {
    let raw = body
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .unwrap_or_default();
    percent_encoding::percent_decode_str(&raw.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

#[test]
fn phone_codes_test_numbers_and_the_twilio_sender() {
    let twilio = Twilio::start();
    let fx = Fixture::new(AuthSettings {
        sms: SmsSettings {
            provider: SmsProvider::Twilio {
                api_url: twilio.url.clone(),
                account_sid: "AC123".into(),
                auth_token: "twilio-secret".into(),
                message_service_sid: "MG456".into(),
            },
            test_otp: HashMap::from([("15550001111".to_owned(), "123456".to_owned())]),
        },
        ..settings()
    });

    // A test number: a fixed code, nothing sent.
    let sent = fx.post("/auth/v1/otp", json!({"phone": "+1 555 000 1111"}));
    assert_eq!(sent.ok()["message_id"], "");
    assert!(twilio.received.lock().unwrap().is_empty());
    let session = verify(
        &fx,
        json!({"type": "sms", "phone": "+15550001111", "token": "123456"}),
    )
    .ok()
    .clone();
    assert_eq!(session["user"]["phone"], "15550001111");
    assert!(session["user"]["phone_confirmed_at"].is_string());
    assert_eq!(session["user"]["email"], "");
    assert_eq!(
        claims_of(session["access_token"].as_str().unwrap())["amr"][0]["method"],
        "otp"
    );
    let reused = verify(
        &fx,
        json!({"type": "sms", "phone": "+15550001111", "token": "123456"}),
    );
    assert_eq!(reused.error_code(StatusCode::FORBIDDEN), "otp_expired");

    // A real number: Twilio's API shape, with basic auth and the messaging service.
    let sent = fx
        .post("/auth/v1/otp", json!({"phone": "+15550002222"}))
        .ok()
        .clone();
    let (headers, account, body) = twilio.received.lock().unwrap()[0].clone();
    assert_eq!(account, "AC123");
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("AC123:twilio-secret")
    );
    assert_eq!(headers["authorization"], expected.as_str());
    assert_eq!(form_value(&body, "To"), "+15550002222");
    assert_eq!(form_value(&body, "MessagingServiceSid"), "MG456");
    let text = form_value(&body, "Body");
    let code = text
        .strip_prefix("Your code is ")
        .expect("the template")
        .to_owned();
    assert_eq!(sent["message_id"], "SM00000000000000000000000000000001");
    let wrong = verify(
        &fx,
        json!({"type": "sms", "phone": "15550002222", "token": "999999"}),
    );
    if code != "999999" {
        assert_eq!(wrong.error_code(StatusCode::FORBIDDEN), "otp_expired");
    }
    verify(
        &fx,
        json!({"type": "sms", "phone": "15550002222", "token": code}),
    )
    .ok();

    // Phone sign-up with a password: no session until the texted code is verified.
    let signed_up = fx
        .post(
            "/auth/v1/signup",
            json!({"phone": "+15550003333", "password": "phone-pass"}),
        )
        .ok()
        .clone();
    assert_eq!(signed_up["phone"], "15550003333");
    assert!(signed_up.get("access_token").is_none());
    let early = fx.post(
        "/auth/v1/token?grant_type=password",
        json!({"phone": "+15550003333", "password": "phone-pass"}),
    );
    assert_eq!(
        early.error_code(StatusCode::BAD_REQUEST),
        "phone_not_confirmed"
    );
    let (_, _, body) = twilio.received.lock().unwrap()[1].clone();
    let code = form_value(&body, "Body").replace("Your code is ", "");
    verify(
        &fx,
        json!({"type": "sms", "phone": "+15550003333", "token": code}),
    )
    .ok();
    // Then the phone and password sign in; a wrong password is the usual refusal.
    let signed_in = fx
        .post(
            "/auth/v1/token?grant_type=password",
            json!({"phone": "15550003333", "password": "phone-pass"}),
        )
        .ok()
        .clone();
    assert_eq!(signed_in["user"]["phone"], "15550003333");
    let wrong = fx.post(
        "/auth/v1/token?grant_type=password",
        json!({"phone": "15550003333", "password": "not-it"}),
    );
    assert_eq!(
        wrong.error_code(StatusCode::BAD_REQUEST),
        "invalid_credentials"
    );
    let taken = fx.post(
        "/auth/v1/signup",
        json!({"phone": "+15550003333", "password": "phone-pass"}),
    );
    assert_eq!(
        taken.error_code(StatusCode::UNPROCESSABLE_ENTITY),
        "phone_exists"
    );

    // Malformed numbers: GoTrue's validation error, and nothing sent or stored.
    for bad in ["12ab", "+1", "not a phone", "+123456789012345678"] {
        let reply = fx.post("/auth/v1/otp", json!({"phone": bad}));
        assert_eq!(
            reply.error_code(StatusCode::BAD_REQUEST),
            "validation_failed",
            "{bad}"
        );
        assert_eq!(
            reply.body["msg"],
            "Invalid phone number format (E.164 required)"
        );
    }
    assert_eq!(twilio.received.lock().unwrap().len(), 2);

    // The provider refuses: 500 sms_send_failed, its message in the log, not to the client.
    let refused = fx.post("/auth/v1/otp", json!({"phone": "+15559999999"}));
    assert_eq!(
        refused.error_code(StatusCode::INTERNAL_SERVER_ERROR),
        "sms_send_failed"
    );
    assert!(!refused.text.contains("21211"));
}

#[test]
fn phone_codes_go_to_the_sms_outbox_by_default() {
    let fx = Fixture::new(settings());
    let sent = fx
        .post("/auth/v1/otp", json!({"phone": "+4915112345678"}))
        .ok()
        .clone();
    let rows = fx
        .db
        .rows("SELECT id, recipient, body FROM auth.sms_outbox");
    assert_eq!(rows[0]["recipient"], "4915112345678");
    assert_eq!(sent["message_id"], rows[0]["id"].to_string());
    let code = rows[0]["body"]
        .as_str()
        .unwrap()
        .replace("Your code is ", "");
    let session = verify(
        &fx,
        json!({"type": "sms", "phone": "4915112345678", "token": code}),
    );
    assert_eq!(session.ok()["user"]["phone"], "4915112345678");
}

#[test]
fn anonymous_users_are_off_by_default_and_convert_keeping_their_id() {
    let off = Fixture::new(settings());
    let refused = off.post("/auth/v1/signup", json!({"data": {}}));
    assert_eq!(
        refused.error_code(StatusCode::UNPROCESSABLE_ENTITY),
        "anonymous_provider_disabled"
    );
    let settings_reply = off.call(Method::GET, "/auth/v1/settings", None, None);
    assert_eq!(settings_reply.body["external"]["anonymous_users"], false);

    let fx = Fixture::new(AuthSettings {
        anonymous_users: true,
        ..settings()
    });
    let session = fx
        .post("/auth/v1/signup", json!({"data": {"nick": "guest"}}))
        .ok()
        .clone();
    let token = session["access_token"].as_str().unwrap().to_owned();
    let claims = claims_of(&token);
    assert_eq!(claims["is_anonymous"], true);
    assert_eq!(claims["role"], "authenticated");
    assert_eq!(claims["amr"][0]["method"], "anonymous");
    assert_eq!(session["user"]["is_anonymous"], true);
    assert_eq!(session["user"]["identities"], json!([]));
    let id = session["user"]["id"].clone();

    // Conversion: add an email, confirm it with the mailed code; same id, no longer anonymous.
    let email = unique_email("convert");
    let updated = fx.call(
        Method::PUT,
        "/auth/v1/user",
        Some(&token),
        Some(json!({"email": email})),
    );
    assert_eq!(updated.ok()["new_email"], email.as_str());
    let rows = fx.rows_eventually(
        &format!("SELECT body FROM auth.mail_outbox WHERE recipient = '{email}'"),
        1,
    );
    let body = rows[0]["body"].as_str().unwrap();
    let code = body.split("Or enter this code: ").nth(1).unwrap().trim();
    let converted = verify(
        &fx,
        json!({"type": "email_change", "email": email, "token": code}),
    )
    .ok()
    .clone();
    assert_eq!(converted["user"]["id"], id);
    assert_eq!(converted["user"]["email"], email.as_str());
    assert_eq!(converted["user"]["is_anonymous"], false);
    let claims = claims_of(converted["access_token"].as_str().unwrap());
    assert_eq!(claims["is_anonymous"], false);
    assert_eq!(claims["sub"], id);
}

#[test]
fn admin_invites_and_generates_links_in_gotrues_shape() {
    let fx = Fixture::new(settings());
    let admin = fx.service_key.clone();

    // Only the service key (the fixture sends the anon key).
    let email = unique_email("invited");
    let refused = fx.call(
        Method::POST,
        "/auth/v1/invite",
        None,
        Some(json!({"email": email})),
    );
    assert_eq!(refused.error_code(StatusCode::FORBIDDEN), "not_admin");
    let generate = fx.call(
        Method::POST,
        "/auth/v1/admin/generate_link",
        None,
        Some(json!({"type": "magiclink", "email": email})),
    );
    assert_eq!(generate.error_code(StatusCode::FORBIDDEN), "not_admin");

    let invited = fx
        .call(
            Method::POST,
            "/auth/v1/invite",
            Some(&admin),
            Some(json!({"email": email, "data": {"team": "a"}})),
        )
        .ok()
        .clone();
    assert_eq!(invited["email"], email.as_str());
    assert!(invited["invited_at"].is_string());
    assert_eq!(invited["user_metadata"]["team"], "a");
    let (kind, _, code) = last_mail(&fx, &email);
    assert_eq!(kind, "invite");
    let session = verify(
        &fx,
        json!({"type": "invite", "email": email, "token": code}),
    )
    .ok()
    .clone();
    assert_eq!(session["user"]["id"], invited["id"]);
    let again = fx.call(
        Method::POST,
        "/auth/v1/invite",
        Some(&admin),
        Some(json!({"email": email})),
    );
    assert_eq!(
        again.error_code(StatusCode::UNPROCESSABLE_ENTITY),
        "email_exists"
    );

    // generate_link: the user with the link's fields; no mail.
    let mails = fx.db.rows("SELECT count(*) AS n FROM auth.mail_outbox")[0]["n"].clone();
    let other = unique_email("generated");
    let link = fx
        .call(
            Method::POST,
            "/auth/v1/admin/generate_link",
            Some(&admin),
            Some(json!({"type": "magiclink", "email": other, "redirect_to": "https://evil.example/"})),
        )
        .ok()
        .clone();
    assert_eq!(link["email"], other.as_str());
    assert_eq!(
        link["verification_type"], "signup",
        "a magic link for a new email signs it up"
    );
    assert_eq!(link["redirect_to"], SITE);
    assert_eq!(link["email_otp"].as_str().unwrap().len(), 6);
    let action = link["action_link"].as_str().unwrap();
    assert!(action.contains("/auth/v1/verify?token="), "{action}");
    assert_eq!(
        fx.db.rows("SELECT count(*) AS n FROM auth.mail_outbox")[0]["n"],
        mails
    );
    let location = follow(&fx, action);
    assert!(
        fragment(&location).contains_key("access_token"),
        "{location}"
    );

    for kind in ["magiclink", "recovery"] {
        let link = fx
            .call(
                Method::POST,
                "/auth/v1/admin/generate_link",
                Some(&admin),
                Some(json!({"type": kind, "email": other})),
            )
            .ok()
            .clone();
        assert_eq!(link["verification_type"], kind);
        let session = verify(
            &fx,
            json!({"type": kind, "token_hash": link["hashed_token"]}),
        );
        assert_eq!(session.ok()["user"]["email"], other.as_str(), "{kind}");
    }
    let unknown = fx.call(
        Method::POST,
        "/auth/v1/admin/generate_link",
        Some(&admin),
        Some(json!({"type": "recovery", "email": unique_email("nobody")})),
    );
    assert_eq!(unknown.error_code(StatusCode::NOT_FOUND), "user_not_found");
    let signup_taken = fx.call(
        Method::POST,
        "/auth/v1/admin/generate_link",
        Some(&admin),
        Some(json!({"type": "signup", "email": other, "password": "x-password"})),
    );
    assert_eq!(
        signup_taken.error_code(StatusCode::UNPROCESSABLE_ENTITY),
        "email_exists"
    );
}
