-- Passwordless sign-in's functions (extension/sql/auth_otp.sql): codes are single use, die after
-- too many wrong guesses and expire; a flow's auth code is taken once; a confirmed email makes an
-- anonymous user permanent; users without an email read as GoTrue's.
SET client_min_messages = warning;
\set VERBOSITY terse

-- An anonymous user and a phone user.
SELECT u ->> 'email' AS email, u ->> 'phone' AS phone, u -> 'is_anonymous' AS anonymous,
       jsonb_array_length(u -> 'identities') AS identities,
       u -> 'identities' -> 0 ->> 'provider' AS identity, u -> 'app_metadata' AS app_metadata
FROM (VALUES (auth.sluice_create_otp_user(NULL, NULL, '{}', NULL, false)),
             (auth.sluice_create_otp_user(NULL, '15550001111', '{}', NULL, false))) AS x(u);
-- A second user with the same phone is refused.
SELECT auth.sluice_create_otp_user(NULL, '15550001111', '{}', NULL, false);

-- An email user with a code: a wrong code counts, the fifth wrong one deletes it.
SELECT auth.sluice_create_otp_user('Otp@Example.com', NULL, '{}', NULL, false) ->> 'email' AS email;
SELECT auth.sluice_issue_otp(u.id, 'email', 'magiclink', 'code-hash', 'link-hash') IS NOT NULL AS issued
FROM auth.users AS u WHERE u.email = 'otp@example.com';
SELECT p -> 'user_id' IS NOT NULL AS pending
FROM auth.sluice_otp_pending('email', 'OTP@example.com', NULL, ARRAY['magiclink'], '1 hour') AS p;
SELECT auth.sluice_otp_pending('email', 'otp@example.com', NULL, ARRAY['recovery'], '1 hour') AS other_purpose;
SELECT auth.sluice_otp_failed(u.id, 'email', 5) FROM auth.users AS u, generate_series(1, 4)
WHERE u.email = 'otp@example.com';
SELECT failed_attempts FROM auth.otp_codes;
SELECT auth.sluice_otp_failed(u.id, 'email', 5) FROM auth.users AS u WHERE u.email = 'otp@example.com';
SELECT count(*) AS codes_left FROM auth.otp_codes;

-- Used once: by the link, then neither the link nor the code works again; the email is confirmed.
SELECT auth.sluice_issue_otp(u.id, 'email', 'magiclink', 'code-hash', 'link-hash') IS NOT NULL AS issued
FROM auth.users AS u WHERE u.email = 'otp@example.com';
SELECT c ->> 'purpose' AS purpose
FROM auth.sluice_consume_otp(NULL, NULL, 'link-hash', ARRAY['magiclink'], '1 hour') AS c;
SELECT auth.sluice_consume_otp(NULL, NULL, 'link-hash', ARRAY['magiclink'], '1 hour') AS again;
SELECT auth.sluice_consume_otp(u.id, 'code-hash', NULL, ARRAY['magiclink'], '1 hour') AS by_code
FROM auth.users AS u WHERE u.email = 'otp@example.com';
SELECT email_confirmed_at IS NOT NULL AS confirmed FROM auth.users WHERE email = 'otp@example.com';

-- Expired: older than the validity.
SELECT auth.sluice_issue_otp(u.id, 'email', 'magiclink', 'code-hash', 'link-hash') IS NOT NULL AS issued
FROM auth.users AS u WHERE u.email = 'otp@example.com';
UPDATE auth.otp_codes SET created_at = now() - interval '2 hours';
SELECT auth.sluice_consume_otp(u.id, 'code-hash', NULL, ARRAY['magiclink'], '1 hour') AS expired
FROM auth.users AS u WHERE u.email = 'otp@example.com';

-- A flow: its auth code is issued once and taken once.
SELECT auth.sluice_create_flow_state('magiclink', 'magiclink', repeat('c', 43), 's256', NULL, 'flow-link')
    IS NOT NULL AS flow;
SELECT auth.sluice_issue_auth_code(NULL, 'flow-link', u.id, 'code-1') IS NOT NULL AS first,
       auth.sluice_issue_auth_code(NULL, 'flow-link', u.id, 'code-2') IS NOT NULL AS second
FROM auth.users AS u WHERE u.email = 'otp@example.com';
SELECT f ->> 'authentication_method' AS method, f -> 'expired' AS expired
FROM auth.sluice_take_flow_state('code-1', '5 minutes') AS f;
SELECT auth.sluice_take_flow_state('code-1', '5 minutes') AS taken_again;

-- An anonymous user who confirms an email is no longer anonymous.
UPDATE auth.users SET email = 'was-anon@example.com', email_confirmed_at = now() WHERE is_anonymous;
SELECT count(*) AS anonymous_left FROM auth.users WHERE is_anonymous;
