-- Users written straight into auth.users with GoTrue's columns, as Supabase seeds do: the bcrypt
-- hash in encrypted_password moves to auth.passwords; the row (and so the change log and
-- history) never holds it, nor GoTrue's token columns.
CREATE EXTENSION IF NOT EXISTS pgcrypto;
INSERT INTO auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
    raw_app_meta_data, raw_user_meta_data, confirmation_token, email_change, email_change_token_new,
    recovery_token)
VALUES ('00000000-0000-0000-0000-000000000000', '11111111-1111-1111-1111-111111111111',
    'authenticated', 'authenticated', 'Seeded@Example.com', crypt('pw-1', gen_salt('bf')), now(),
    '{"provider":"email","providers":["email"]}', NULL, 'token', '', '', 'token');
SELECT email, encrypted_password, confirmation_token, recovery_token, raw_user_meta_data,
       confirmed_at IS NOT NULL AS confirmed
FROM auth.users WHERE id = '11111111-1111-1111-1111-111111111111';
SELECT left(hash, 4) AS scheme, hash = crypt('pw-1', hash) AS verifies
FROM auth.passwords WHERE user_id = '11111111-1111-1111-1111-111111111111';
SELECT count(*) AS log_rows_with_a_hash FROM sluice.changes AS c WHERE to_jsonb(c)::text LIKE '%$2a$%';

-- An update that sets a new hash replaces the stored one; an update without one keeps it.
UPDATE auth.users SET encrypted_password = crypt('pw-2', gen_salt('bf'))
WHERE id = '11111111-1111-1111-1111-111111111111';
UPDATE auth.users SET last_sign_in_at = now() WHERE id = '11111111-1111-1111-1111-111111111111';
SELECT hash = crypt('pw-2', hash) AS new_hash_verifies FROM auth.passwords
WHERE user_id = '11111111-1111-1111-1111-111111111111';
SELECT count(*) AS log_rows_with_a_hash FROM sluice.changes AS c WHERE to_jsonb(c)::text LIKE '%$2a$%';

-- Anything but bcrypt or Argon2id is refused, not stored.
\set VERBOSITY terse
INSERT INTO auth.users (email, encrypted_password) VALUES ('md5@example.com', 'md5abcdef');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default

-- The rehash after a verified bcrypt sign-in happens only over the hash that was verified.
SELECT auth.sluice_rehash_password('11111111-1111-1111-1111-111111111111', 'stale', '$argon2id$x')
    AS replaced_stale;
SELECT auth.sluice_rehash_password('11111111-1111-1111-1111-111111111111', hash, '$argon2id$x')
    AS replaced
FROM auth.passwords WHERE user_id = '11111111-1111-1111-1111-111111111111';

-- GoTrue's identities load beside their users and go with them.
INSERT INTO auth.identities (user_id, provider_id, identity_data, provider)
VALUES ('11111111-1111-1111-1111-111111111111', '11111111-1111-1111-1111-111111111111',
    '{"sub":"11111111-1111-1111-1111-111111111111","email":"Seeded@Example.com"}', 'email');
SELECT email FROM auth.identities;
DELETE FROM auth.users WHERE id = '11111111-1111-1111-1111-111111111111';
SELECT (SELECT count(*) FROM auth.identities) AS identities,
       (SELECT count(*) FROM auth.passwords WHERE user_id = '11111111-1111-1111-1111-111111111111') AS passwords;
