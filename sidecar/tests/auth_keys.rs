//! Asymmetric signing keys (`SLUICE_AUTH_JWT_SIGNING_KEY_FILE` as a JWK file, Supabase's
//! `signing_keys.json`): tokens signed by each kind of key drive RLS on `/rest/v1/`, the public
//! keys are published at `/auth/v1/.well-known/jwks.json` without a private part, HS256 tokens
//! signed with the secret stay valid, and a rotation keeps old tokens valid until their key leaves
//! the file.

mod support;

use axum::http::{Method, StatusCode};
use base64::Engine;
use serde_json::{json, Value};
use sluice_sidecar::auth::accounts::settings::AuthSettings;
use sluice_sidecar::auth::jwt::signing::{signing_keys_from_json, SigningKeys};
use support::auth::{claims_of, sign, unique_email, Fixture};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwt");

/// The private JWK in `file`, with `key_ops`.
fn private_key(file: &str, ops: &[&str]) -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{file}")).unwrap();
    let mut key: Value = serde_json::from_str(&text).unwrap();
    key["key_ops"] = json!(ops);
    key
}

/// The same key without its private parameters: a key that only verifies.
fn public_only(file: &str) -> Value {
    let mut key = private_key(file, &["verify"]);
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        key.as_object_mut().unwrap().remove(private);
    }
    key
}

fn key_file(keys: &[Value]) -> SigningKeys {
    signing_keys_from_json(&Value::from(keys.to_vec()).to_string()).unwrap()
}

fn settings() -> AuthSettings {
    AuthSettings {
        autoconfirm: true,
        ..AuthSettings::default()
    }
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The titles `token` reads from `todos` (RLS: its own rows), or the refusal's status.
fn titles(fx: &Fixture, token: &str) -> Result<Value, StatusCode> {
    let reply = fx.call(
        Method::GET,
        "/rest/v1/todos?select=title",
        Some(token),
        None,
    );
    if reply.status == StatusCode::OK {
        Ok(reply.body)
    } else {
        Err(reply.status)
    }
}

#[test]
fn tokens_signed_by_each_key_drive_rls_and_the_jwks_publishes_only_public_parts() {
    for (signer, alg) in [("rsa-1", "RS256"), ("ec-1", "ES256")] {
        let ops = |kid: &str| {
            if kid == signer {
                vec!["sign", "verify"]
            } else {
                vec!["verify"]
            }
        };
        let keys = key_file(&[
            private_key("rsa-private.jwk.json", &ops("rsa-1")),
            private_key("ec-private.jwk.json", &ops("ec-1")),
        ]);
        let fx = Fixture::with_setup(settings(), &[], Some(&keys));
        let session = fx.sign_up(&unique_email("keys"), "keys-password");
        let token = session["access_token"].as_str().unwrap();
        let header = header_of(token);
        assert_eq!(header["alg"], alg);
        assert_eq!(header["kid"], signer);

        let inserted = fx.call(
            Method::POST,
            "/rest/v1/todos",
            Some(token),
            Some(json!({"title": format!("by {signer}")})),
        );
        assert_eq!(inserted.status, StatusCode::CREATED, "{}", inserted.text);
        assert_eq!(
            titles(&fx, token),
            Ok(json!([{"title": format!("by {signer}")}]))
        );
        let user = fx.call(Method::GET, "/auth/v1/user", Some(token), None);
        assert_eq!(user.ok()["id"], claims_of(token)["sub"]);

        // An HS256 token signed with the JWT secret stays valid beside the keys.
        let legacy = sign(&json!({
            "sub": claims_of(token)["sub"],
            "role": "authenticated",
            "exp": claims_of(token)["exp"],
        }));
        assert_eq!(
            titles(&fx, &legacy),
            Ok(json!([{"title": format!("by {signer}")}]))
        );

        let jwks = fx.call(Method::GET, "/auth/v1/.well-known/jwks.json", None, None);
        assert_eq!(jwks.status, StatusCode::OK);
        assert_eq!(jwks.headers["cache-control"], "public, max-age=600");
        let published = jwks.body["keys"].as_array().unwrap();
        let kids: Vec<&str> = published
            .iter()
            .map(|key| key["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, ["rsa-1", "ec-1"]);
        for key in published {
            let names: Vec<&String> = key.as_object().unwrap().keys().collect();
            for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                assert!(!names.iter().any(|name| *name == private), "{key}");
            }
            assert_eq!(key["use"], "sig");
            assert_eq!(key["key_ops"], json!(["verify"]));
        }
        assert_eq!(published[0]["alg"], "RS256");
        assert_eq!(published[1]["alg"], "ES256");
        assert_eq!(published[1]["crv"], "P-256");
        // The published key is the one that verifies: rebuilding a verifier from the JWKS alone
        // accepts the token.
        let from_jwks = signing_keys_from_json(
            &json!([private_key(
                if signer == "rsa-1" {
                    "rsa-private.jwk.json"
                } else {
                    "ec-private.jwk.json"
                },
                &["sign"]
            )])
            .to_string(),
        )
        .unwrap();
        assert_eq!(
            from_jwks.jwks["keys"][0],
            published[kids.iter().position(|k| *k == signer).unwrap()]
        );
    }
}

#[test]
fn without_a_key_file_the_jwks_is_empty() {
    let fx = Fixture::autoconfirm();
    let jwks = fx.call(Method::GET, "/auth/v1/.well-known/jwks.json", None, None);
    assert_eq!(jwks.ok(), &json!({"keys": []}));
}

#[test]
fn a_rotation_keeps_old_tokens_valid_until_their_key_leaves_the_file() {
    // Before: rsa-1 signs; ec-2, the next key, is already published (public only).
    let before = key_file(&[
        private_key("rsa-private.jwk.json", &["sign", "verify"]),
        public_only("ec2-private.jwk.json"),
    ]);
    let mut fx = Fixture::with_setup(settings(), &[], Some(&before));
    let email = unique_email("rotation");
    let first = fx.sign_up(&email, "rotation-password");
    let old = first["access_token"].as_str().unwrap().to_owned();
    assert_eq!(header_of(&old)["kid"], "rsa-1");
    fx.call(
        Method::POST,
        "/rest/v1/todos",
        Some(&old),
        Some(json!({"title": "kept"})),
    )
    .ok();

    // During: ec-2 signs, rsa-1 only verifies. Old tokens still work, new ones carry ec-2.
    let during = key_file(&[
        public_only("rsa-private.jwk.json"),
        private_key("ec2-private.jwk.json", &["sign", "verify"]),
    ]);
    fx.restart(settings(), Some(&during));
    assert_eq!(titles(&fx, &old), Ok(json!([{"title": "kept"}])));
    let second = fx.sign_in(&email, "rotation-password");
    let new = second.ok()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(header_of(&new)["kid"], "ec-2");
    assert_eq!(header_of(&new)["alg"], "ES256");
    assert_eq!(titles(&fx, &new), Ok(json!([{"title": "kept"}])));
    // A refresh token from before the rotation gets a token from the new key.
    let refreshed = fx.refresh(first["refresh_token"].as_str().unwrap());
    let refreshed = refreshed.ok()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(header_of(&refreshed)["kid"], "ec-2");
    let jwks = fx.call(Method::GET, "/auth/v1/.well-known/jwks.json", None, None);
    assert_eq!(jwks.ok()["keys"].as_array().unwrap().len(), 2);

    // After: rsa-1 is gone. Its tokens are refused; ec-2's still work.
    let after = key_file(&[private_key("ec2-private.jwk.json", &["sign", "verify"])]);
    fx.restart(settings(), Some(&after));
    assert_eq!(titles(&fx, &old), Err(StatusCode::UNAUTHORIZED));
    assert_eq!(titles(&fx, &new), Ok(json!([{"title": "kept"}])));
    let jwks = fx.call(Method::GET, "/auth/v1/.well-known/jwks.json", None, None);
    let kids: Vec<Value> = jwks.ok()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].clone())
        .collect();
    assert_eq!(kids, [json!("ec-2")]);
}
