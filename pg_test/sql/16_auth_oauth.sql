-- OAuth / OpenID Connect sign-in (issue 15): auth.sluice_oauth_user finds, links or creates the user
-- behind a provider account as GoTrue does.
-- A new account whose email the provider verified: a new, confirmed user with the identity.
SELECT (r ->> 'created')::boolean AS created, (r ->> 'linked')::boolean AS linked
FROM auth.sluice_oauth_user('keycloak', 'sub-1', '{"sub": "sub-1", "email": "Kay@Example.com", "name": "Kay"}',
                            'Kay@Example.com', true, true) AS r;
SELECT u.email, u.email_confirmed_at IS NOT NULL AS confirmed, u.raw_app_meta_data AS app_metadata,
       u.raw_user_meta_data ->> 'name' AS name, i.provider, i.provider_id, i.email AS identity_email
FROM auth.users AS u JOIN auth.identities AS i ON i.user_id = u.id
WHERE u.email = 'kay@example.com';
-- The same account again: the same user, no new identity.
SELECT (r ->> 'user_id')::uuid = (SELECT id FROM auth.users WHERE email = 'kay@example.com') AS same_user,
       (r ->> 'created')::boolean AS created, (r ->> 'linked')::boolean AS linked
FROM auth.sluice_oauth_user('keycloak', 'sub-1', '{"sub": "sub-1", "email": "kay@example.com"}',
                            'kay@example.com', true, true) AS r;
-- Another provider, the same verified email: a second identity linked to that user.
SELECT (r ->> 'user_id')::uuid = (SELECT id FROM auth.users WHERE email = 'kay@example.com') AS same_user,
       (r ->> 'linked')::boolean AS linked
FROM auth.sluice_oauth_user('github', '42', '{"sub": "42"}', 'kay@example.com', true, true) AS r;
SELECT raw_app_meta_data -> 'providers' AS providers,
       (SELECT count(*) FROM auth.identities WHERE user_id = u.id) AS identities
FROM auth.users AS u WHERE email = 'kay@example.com';
-- An unverified email never links to an account; nor does a verified one to an unconfirmed account.
SELECT auth.sluice_oauth_user('other', 'x', '{"sub": "x"}', 'kay@example.com', false, true) AS unverified;
SELECT id IS NOT NULL AS created
FROM auth.sluice_create_user('lee@example.com', NULL, '{}', '{}', false, NULL) AS u, LATERAL (SELECT (u ->> 'id')::uuid AS id) AS x;
SELECT auth.sluice_oauth_user('keycloak', 'sub-2', '{"sub": "sub-2"}', 'lee@example.com', true, true) AS unconfirmed;
-- A provider that does not verify the email: a new user, email unconfirmed.
SELECT (r ->> 'created')::boolean AS created
FROM auth.sluice_oauth_user('keycloak', 'sub-3', '{"sub": "sub-3"}', 'max@example.com', false, true) AS r;
SELECT email_confirmed_at IS NULL AS unconfirmed FROM auth.users WHERE email = 'max@example.com';
-- Sign-ups disabled: a known identity still signs in, a new account is refused.
SELECT (r ->> 'created')::boolean AS created
FROM auth.sluice_oauth_user('keycloak', 'sub-1', '{"sub": "sub-1"}', 'kay@example.com', true, false) AS r;
SELECT auth.sluice_oauth_user('keycloak', 'sub-4', '{"sub": "sub-4"}', 'new@example.com', true, false) AS disabled;
-- The user JSON lists the provider identities after the email one.
SELECT jsonb_path_query_array(auth.sluice_user_json(u), '$.identities[*].provider') AS providers,
       jsonb_path_query_array(auth.sluice_user_json(u), '$.identities[*] ? (@.provider != "email").id') AS ids
FROM auth.users AS u WHERE email = 'kay@example.com';
