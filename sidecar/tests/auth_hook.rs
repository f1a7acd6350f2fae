//! The custom access token hook (`SLUICE_AUTH_HOOK_CUSTOM_ACCESS_TOKEN_URI`): a real SQL function
//! adds a claim from a table of the app, an RLS policy reads it through `auth.jwt()`, and the
//! hook's refusals and failures reach the client as GoTrue sends them.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::json;
use sluice_sidecar::auth::accounts::hooks::AccessTokenHook;
use sluice_sidecar::auth::accounts::settings::AuthSettings;
use support::auth::{claims_of, unique_email, Fixture};

const HOOK: &str = r#"
    CREATE TABLE user_roles (user_id uuid PRIMARY KEY, role text NOT NULL);
    GRANT SELECT ON user_roles TO service_role;

    CREATE FUNCTION public.custom_claims(event jsonb) RETURNS jsonb
    LANGUAGE plpgsql STABLE AS $$
    DECLARE
        claims jsonb := event->'claims';
        email text := event->'claims'->>'email';
    BEGIN
        IF email LIKE 'blocked-%' THEN
            RETURN jsonb_build_object('error', jsonb_build_object(
                'http_code', 403, 'message', 'Sign-ins are closed for you'));
        ELSIF email LIKE 'broken-%' THEN
            RETURN jsonb_build_object('claims', claims - 'sub');
        ELSIF email LIKE 'raises-%' THEN
            RAISE EXCEPTION 'the hook failed on purpose';
        END IF;
        claims := claims || jsonb_build_object(
            'user_role', (SELECT role FROM public.user_roles
                          WHERE user_id = (event->>'user_id')::uuid),
            'hook_saw', event->>'authentication_method');
        RETURN jsonb_build_object('claims', claims);
    END
    $$;
    REVOKE EXECUTE ON FUNCTION public.custom_claims(jsonb) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION public.custom_claims(jsonb) TO service_role;

    CREATE TABLE reports (id int PRIMARY KEY, body text NOT NULL);
    ALTER TABLE reports ENABLE ROW LEVEL SECURITY;
    CREATE POLICY editors_read ON reports FOR SELECT TO authenticated
        USING (auth.jwt()->>'user_role' = 'editor');
    GRANT SELECT ON reports TO authenticated;
    INSERT INTO reports VALUES (1, 'quarterly');
"#;

fn fixture() -> Fixture {
    let settings = AuthSettings {
        autoconfirm: true,
        access_token_hook: Some(
            AccessTokenHook::from_uri("pg-functions://postgres/public/custom_claims").unwrap(),
        ),
        ..AuthSettings::default()
    };
    Fixture::with_setup(settings, &[HOOK], None)
}

#[test]
fn the_hooks_claim_reaches_the_token_and_an_rls_policy_reads_it() {
    let fx = fixture();
    let email = unique_email("editor");
    let signed_up = fx.sign_up(&email, "editor-password");
    let user_id = signed_up["user"]["id"].as_str().unwrap().to_owned();
    let first = signed_up["access_token"].as_str().unwrap();
    // Not an editor yet: the hook ran (it saw the method), the claim is null, the policy refuses.
    assert_eq!(claims_of(first)["hook_saw"], "password");
    assert_eq!(claims_of(first)["user_role"], json!(null));
    let reports = fx.call(
        Method::GET,
        "/rest/v1/reports?select=body",
        Some(first),
        None,
    );
    assert_eq!(reports.body, json!([]));

    fx.db.execute(&format!(
        "INSERT INTO user_roles VALUES ('{user_id}', 'editor')"
    ));
    let session = fx.sign_in(&email, "editor-password").ok().clone();
    let token = session["access_token"].as_str().unwrap();
    let claims = claims_of(token);
    assert_eq!(claims["user_role"], "editor");
    // The claims GoTrue's schema requires are all still there.
    assert_eq!(claims["sub"], user_id);
    assert_eq!(claims["role"], "authenticated");
    assert_eq!(claims["aal"], "aal1");
    let reports = fx.call(
        Method::GET,
        "/rest/v1/reports?select=body",
        Some(token),
        None,
    );
    assert_eq!(reports.body, json!([{"body": "quarterly"}]));
    assert_eq!(session["expires_at"], claims["exp"]);

    // Refreshing runs the hook again, with GoTrue's method name.
    let refreshed = fx.refresh(session["refresh_token"].as_str().unwrap());
    let refreshed = claims_of(refreshed.ok()["access_token"].as_str().unwrap());
    assert_eq!(refreshed["hook_saw"], "token_refresh");
    assert_eq!(refreshed["user_role"], "editor");

    // Another user gets no such claim, and no reports.
    let other = fx.sign_up(&unique_email("viewer"), "viewer-password");
    let other = other["access_token"].as_str().unwrap();
    let reports = fx.call(
        Method::GET,
        "/rest/v1/reports?select=body",
        Some(other),
        None,
    );
    assert_eq!(reports.body, json!([]));
}

#[test]
fn the_hooks_refusals_and_failures_reach_the_client_as_gotrue_sends_them() {
    let fx = fixture();
    // An error the hook returns: its status and message.
    let blocked = fx.post(
        "/auth/v1/signup",
        json!({"email": unique_email("blocked"), "password": "blocked-password"}),
    );
    assert_eq!(blocked.status, StatusCode::FORBIDDEN, "{}", blocked.text);
    assert_eq!(blocked.body["code"], 403);
    assert_eq!(blocked.body["msg"], "Sign-ins are closed for you");
    assert!(blocked.body.get("access_token").is_none());
    // The session started for it does not outlive the refusal.
    let sessions = fx.db.rows(
        "SELECT s.id FROM auth.sessions AS s JOIN auth.users AS u ON u.id = s.user_id \
         WHERE u.email LIKE 'blocked-%'",
    );
    assert_eq!(sessions, json!([]));

    // Claims without one GoTrue requires: 500, saying which.
    let broken = fx.post(
        "/auth/v1/signup",
        json!({"email": unique_email("broken"), "password": "broken-password"}),
    );
    assert_eq!(
        broken.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        broken.text
    );
    let message = broken.body["msg"].as_str().unwrap();
    assert!(
        message.starts_with("output claims do not conform to the expected schema")
            && message.contains("sub is required"),
        "{message}"
    );

    // A function that raises: 500 naming the hook, the database's message only in the log.
    let raises = fx.post(
        "/auth/v1/signup",
        json!({"email": unique_email("raises"), "password": "raises-password"}),
    );
    assert_eq!(
        raises.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        raises.text
    );
    assert_eq!(
        raises.body["msg"],
        "Error running hook URI: pg-functions://postgres/public/custom_claims"
    );
    assert!(!raises.text.contains("on purpose"), "{}", raises.text);
}
