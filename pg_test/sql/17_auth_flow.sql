-- Resend, reauthentication and phone change (extension/sql/auth_flow.sql): nonces and phone-change
-- codes each have a channel of their own, are found by user or new number, taken once and expire;
-- a phone change applies only when taken, never to a number another user has; the user JSON
-- leaves GoTrue's omitempty fields out while unset (and nothing inside the metadata).
SET client_min_messages = warning;
\set VERBOSITY terse

SELECT u ? 'email_confirmed_at' AS email_confirmed_at, u ? 'confirmed_at' AS confirmed_at,
       u ? 'last_sign_in_at' AS last_sign_in_at, u ? 'new_email' AS new_email,
       u ? 'new_phone' AS new_phone, u ? 'reauthentication_sent_at' AS reauthentication_sent_at,
       u ->> 'phone' AS phone, u -> 'user_metadata' AS user_metadata, u ? 'identities' AS identities
FROM auth.sluice_create_otp_user('flow@example.com', NULL, '{"kept": null}', NULL, false) AS u;
UPDATE auth.users SET email_confirmed_at = now() WHERE email = 'flow@example.com';
SELECT u ? 'email_confirmed_at' AS email_confirmed_at, u ? 'confirmed_at' AS confirmed_at
FROM auth.sluice_user_by_contact('flow@example.com', NULL) AS u;

-- A reauthentication nonce: pending for its user, a wrong hash takes nothing, the right one once.
SELECT x ? 'reauthentication_sent_at' AS sent
FROM auth.users AS u, auth.sluice_issue_flow_code(u.id, 'reauthentication', 'nonce-hash', NULL) AS x
WHERE u.email = 'flow@example.com';
SELECT p ->> 'code_hash' AS pending
FROM auth.users AS u, auth.sluice_flow_code_pending(u.id, 'reauthentication', NULL, '1 hour') AS p
WHERE u.email = 'flow@example.com';
SELECT auth.sluice_take_flow_code(u.id, 'reauthentication', 'wrong-hash', '1 hour') AS wrong
FROM auth.users AS u WHERE u.email = 'flow@example.com';
SELECT x ? 'reauthentication_sent_at' AS still_sent
FROM auth.users AS u, auth.sluice_take_flow_code(u.id, 'reauthentication', 'nonce-hash', '1 hour') AS x
WHERE u.email = 'flow@example.com';
SELECT auth.sluice_take_flow_code(u.id, 'reauthentication', 'nonce-hash', '1 hour') AS again
FROM auth.users AS u WHERE u.email = 'flow@example.com';

-- A phone change: pending as new_phone, the phone unchanged until the code is taken.
SELECT x ->> 'phone' AS phone, x ->> 'new_phone' AS new_phone, x ? 'phone_change_sent_at' AS sent
FROM auth.users AS u, auth.sluice_issue_flow_code(u.id, 'phone_change', 'phone-hash', '15550009999') AS x
WHERE u.email = 'flow@example.com';
SELECT auth.sluice_create_otp_user(NULL, '15550008888', '{}', NULL, false) ->> 'phone' AS other_user;
SELECT auth.sluice_issue_flow_code(u.id, 'phone_change', 'phone-hash-2', '15550008888') AS taken
FROM auth.users AS u WHERE u.email = 'flow@example.com';
SELECT p ->> 'code_hash' AS pending
FROM auth.sluice_flow_code_pending(NULL, 'phone_change', '15550009999', '1 hour') AS p;
-- Another channel's code does not replace it.
SELECT auth.sluice_issue_otp(u.id, 'email', 'magiclink', 'mail-hash', 'mail-link') IS NOT NULL AS mailed
FROM auth.users AS u WHERE u.email = 'flow@example.com';
SELECT o.channel, o.purpose FROM auth.otp_codes AS o JOIN auth.users AS u ON u.id = o.user_id
WHERE u.email = 'flow@example.com' ORDER BY o.channel;
SELECT x ->> 'phone' AS phone, x ? 'new_phone' AS new_phone, x ? 'phone_confirmed_at' AS confirmed
FROM auth.users AS u, auth.sluice_take_flow_code(u.id, 'phone_change', 'phone-hash', '1 hour') AS x
WHERE u.email = 'flow@example.com';
SELECT auth.sluice_take_flow_code(u.id, 'phone_change', 'phone-hash', '1 hour') AS again
FROM auth.users AS u WHERE u.email = 'flow@example.com';

-- Expired: not pending, not taken, the phone stays.
SELECT auth.sluice_issue_flow_code(u.id, 'phone_change', 'phone-hash', '15550007777') IS NOT NULL AS issued
FROM auth.users AS u WHERE u.email = 'flow@example.com';
UPDATE auth.otp_codes SET created_at = now() - interval '2 hours' WHERE channel = 'phone_change';
SELECT auth.sluice_flow_code_pending(NULL, 'phone_change', '15550007777', '1 hour') AS pending;
SELECT auth.sluice_take_flow_code(u.id, 'phone_change', 'phone-hash', '1 hour') AS expired
FROM auth.users AS u WHERE u.email = 'flow@example.com';
SELECT phone, phone_change FROM auth.users WHERE email = 'flow@example.com';

-- Autoconfirm sets the phone at once and drops a pending change's code.
SELECT x ->> 'phone' AS phone, x ? 'new_phone' AS new_phone
FROM auth.users AS u, auth.sluice_set_phone(u.id, '15550006666') AS x WHERE u.email = 'flow@example.com';
SELECT count(*) AS phone_change_codes FROM auth.otp_codes WHERE channel = 'phone_change';

-- A resent signup confirmation drops the mailed signup token.
SELECT auth.sluice_issue_one_time_token('flow@example.com', 'signup', 'signup-hash') IS NOT NULL AS token;
SELECT auth.sluice_drop_one_time_token(u.id, 'signup') FROM auth.users AS u WHERE u.email = 'flow@example.com';
SELECT count(*) AS signup_tokens FROM auth.one_time_tokens WHERE token_hash = 'signup-hash';

-- Request roles cannot call them.
SET ROLE authenticated;
SELECT auth.sluice_take_flow_code(gen_random_uuid(), 'reauthentication', 'x', '1 hour');
SELECT auth.sluice_session_age(gen_random_uuid());
RESET ROLE;
