//! Password guessing must not lock the owner out: wrong passwords from one client address limit
//! that address, never the account's owner signing in from another. Against the real `sluice`
//! binary with its default limits (10 sign-ins per account and address, 30 per address, per 300 s),
//! with real client addresses: sockets bound to 127.0.0.2 (the attacker) and 127.0.0.1 (the owner),
//! or, behind a trusted proxy, the address the proxy puts in `X-Forwarded-For`.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde_json::{json, Value};
use support::postgres::{Server, TestDb};
use support::sidecar::{serve_command, Sidecar};

const OWNER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const PASSWORD: &str = "the-owners-password";
/// The default `SLUICE_AUTH_RATE_LIMIT_EMAIL`.
const PER_ACCOUNT: usize = 10;

fn sidecar(db: &TestDb, client_ip_header: Option<&str>) -> Sidecar {
    let mut command = serve_command(&db.url());
    command
        .env("SLUICE_AUTH_AUTOCONFIRM", "true")
        .env_remove("SLUICE_AUTH_RATE_LIMIT_IP")
        .env_remove("SLUICE_AUTH_RATE_LIMIT_EMAIL")
        .env_remove("SLUICE_AUTH_RATE_LIMIT_WINDOW")
        .env_remove("SLUICE_AUTH_CLIENT_IP_HEADER");
    if let Some(header) = client_ip_header {
        command.env("SLUICE_AUTH_CLIENT_IP_HEADER", header);
    }
    let mut sidecar = Sidecar::spawn(command);
    sidecar.wait_listening(Duration::from_secs(30));
    sidecar
}

/// POSTs `body` from `local` with `headers`; the status and GoTrue's `error_code` (or the body).
fn post(
    sidecar: &Sidecar,
    local: IpAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (u16, Value) {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    let (status, text) = support::http::post_from(
        local,
        sidecar.addr(),
        path,
        &all,
        body.to_string().as_bytes(),
    )
    .unwrap_or_else(|err| panic!("POST {path} from {local}: {err}"));
    let body = serde_json::from_str(&text).unwrap_or_else(|err| panic!("{err}: {text}"));
    (status, body)
}

fn sign_in(
    sidecar: &Sidecar,
    local: IpAddr,
    headers: &[(&str, &str)],
    email: &str,
    password: &str,
) -> (u16, Value) {
    post(
        sidecar,
        local,
        "/auth/v1/token?grant_type=password",
        headers,
        json!({"email": email, "password": password}),
    )
}

fn sign_up(sidecar: &Sidecar) -> String {
    let email = format!("owner-{}@example.com", support::random_suffix());
    let (status, body) = post(
        sidecar,
        OWNER,
        "/auth/v1/signup",
        &[],
        json!({"email": email, "password": PASSWORD}),
    );
    assert_eq!(status, 200, "{body}");
    email
}

/// `PER_ACCOUNT` wrong passwords are refused as wrong, the next attempt as over the limit.
fn guess_until_limited(sidecar: &Sidecar, local: IpAddr, header: Option<&str>, email: &str) {
    for i in 0..=PER_ACCOUNT {
        // Without a trusted proxy, a client's own X-Forwarded-For must not buy it new addresses.
        let forwarded = format!("203.0.113.{i}");
        let headers: Vec<(&str, &str)> = match header {
            Some(value) => vec![("x-forwarded-for", value)],
            None => vec![("x-forwarded-for", forwarded.as_str())],
        };
        let (status, body) = sign_in(sidecar, local, &headers, email, &format!("guess-{i}"));
        if i < PER_ACCOUNT {
            assert_eq!(
                (status, body["error_code"].as_str()),
                (400, Some("invalid_credentials")),
                "guess {i}: {body}"
            );
        } else {
            assert_eq!(
                (status, body["error_code"].as_str()),
                (429, Some("over_request_rate_limit")),
                "guess {i}: {body}"
            );
        }
    }
}

#[test]
fn wrong_passwords_from_one_address_do_not_lock_out_the_owner_on_another() {
    let db = TestDb::create(&Server::shared());
    db.install_extension();
    let sidecar = sidecar(&db, None);
    let email = sign_up(&sidecar);

    guess_until_limited(&sidecar, ATTACKER, None, &email);

    // The owner, from their own address, signs in.
    let (status, body) = sign_in(&sidecar, OWNER, &[], &email, PASSWORD);
    assert_eq!(status, 200, "the owner is locked out: {body}");
    assert!(body["access_token"].is_string(), "{body}");
    // The attacker's address stays limited, even with the right password.
    let (status, body) = sign_in(&sidecar, ATTACKER, &[], &email, PASSWORD);
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error_code"], "over_request_rate_limit");
}

#[test]
fn behind_a_trusted_proxy_its_header_tells_the_clients_apart() {
    let db = TestDb::create(&Server::shared());
    db.install_extension();
    let sidecar = sidecar(&db, Some("x-forwarded-for"));
    let email = sign_up(&sidecar);
    // Both clients reach the sidecar through the proxy at 127.0.0.1, which appends their address.
    let attacker = [("x-forwarded-for", "198.51.100.66")];
    let owner = [("x-forwarded-for", "10.1.2.3, 198.51.100.7")];

    guess_until_limited(&sidecar, OWNER, Some(attacker[0].1), &email);

    let (status, body) = sign_in(&sidecar, OWNER, &owner, &email, PASSWORD);
    assert_eq!(status, 200, "the owner is locked out: {body}");
    let (status, body) = sign_in(&sidecar, OWNER, &attacker, &email, PASSWORD);
    assert_eq!(status, 429, "{body}");
}
