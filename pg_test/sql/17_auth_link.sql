-- Manual identity linking (issue 15): auth.sluice_link_identity adds a provider identity to a given
-- user (never by email), auth.sluice_unlink_identity removes one, as GoTrue's linkIdentity and
-- unlinkIdentity do.
CREATE TEMP TABLE ids (name text PRIMARY KEY, id uuid);
-- An anonymous user links an identity whose email the provider did not verify: refused, nothing
-- changes; with a verified email: the same user, no longer anonymous, with that email.
INSERT INTO ids SELECT 'anon', (auth.sluice_create_otp_user(NULL, NULL, '{}', NULL, false) ->> 'id')::uuid;
SELECT auth.sluice_link_identity((SELECT id FROM ids WHERE name = 'anon'), 'keycloak', 'link-1',
       '{"sub": "link-1", "email": "Guest@Link.test", "email_verified": false}', 'Guest@Link.test', false) AS unverified;
SELECT count(*) AS identities FROM auth.identities WHERE provider_id = 'link-1';
SELECT r ->> 'converted' AS converted, (r ->> 'user_id')::uuid = (SELECT id FROM ids WHERE name = 'anon') AS same_user
FROM auth.sluice_link_identity((SELECT id FROM ids WHERE name = 'anon'), 'keycloak', 'link-1',
       '{"sub": "link-1", "email": "Guest@Link.test", "email_verified": true}', 'Guest@Link.test', true) AS r;
SELECT u.email, u.is_anonymous, u.email_confirmed_at IS NOT NULL AS confirmed, u.raw_app_meta_data AS app_metadata,
       jsonb_path_query_array(auth.sluice_user_json(u), '$.identities[*].provider') AS identities
FROM auth.users AS u WHERE id = (SELECT id FROM ids WHERE name = 'anon');
-- The same identity again, to this user or to another: refused.
SELECT auth.sluice_link_identity((SELECT id FROM ids WHERE name = 'anon'), 'keycloak', 'link-1', '{}', NULL, false) AS again;
INSERT INTO ids SELECT 'eve', (auth.sluice_create_user('eve@link.test', NULL, '{}', '{}', true, NULL) ->> 'id')::uuid;
SELECT auth.sluice_link_identity((SELECT id FROM ids WHERE name = 'eve'), 'keycloak', 'link-1', '{}', NULL, false) AS taken;
-- A user with an email keeps it: the identity's email does not replace it.
SELECT r ? 'error' AS refused
FROM auth.sluice_link_identity((SELECT id FROM ids WHERE name = 'eve'), 'github', 'link-2',
       '{"sub": "link-2", "email": "other@link.test", "email_verified": true}', 'other@link.test', true) AS r;
SELECT u.email, u.raw_app_meta_data AS app_metadata,
       jsonb_path_query_array(auth.sluice_user_json(u), '$.identities[*].provider') AS identities
FROM auth.users AS u WHERE id = (SELECT id FROM ids WHERE name = 'eve');
-- An anonymous user may not take another user's email through an identity.
INSERT INTO ids SELECT 'anon2', (auth.sluice_create_otp_user(NULL, NULL, '{}', NULL, false) ->> 'id')::uuid;
SELECT auth.sluice_link_identity((SELECT id FROM ids WHERE name = 'anon2'), 'keycloak', 'link-3',
       '{"sub": "link-3", "email": "eve@link.test", "email_verified": true}', 'eve@link.test', true) AS email_taken;
-- Unlinking: not someone else's identity, not the last one.
SELECT auth.sluice_unlink_identity((SELECT id FROM ids WHERE name = 'eve'),
       (SELECT id FROM auth.identities WHERE provider_id = 'link-1')) AS foreign_identity;
SELECT auth.sluice_unlink_identity((SELECT id FROM ids WHERE name = 'anon'),
       (SELECT id FROM auth.identities WHERE provider_id = 'link-1')) AS last_identity;
-- Eve unlinks her email identity: no identity left has her address, so she takes the email of the
-- best one left (github's, verified) and stays confirmed.
SELECT auth.sluice_unlink_identity((SELECT id FROM ids WHERE name = 'eve'), (SELECT id FROM ids WHERE name = 'eve')) AS unlinked;
SELECT u.email, u.email_confirmed_at IS NOT NULL AS confirmed, u.raw_app_meta_data AS app_metadata,
       jsonb_path_query_array(auth.sluice_user_json(u), '$.identities[*].provider') AS identities
FROM auth.users AS u WHERE id = (SELECT id FROM ids WHERE name = 'eve');
-- A user whose email identity and provider identity share the address keeps it after unlinking.
INSERT INTO ids SELECT 'fay', (auth.sluice_create_user('fay@link.test', NULL, '{}', '{}', true, NULL) ->> 'id')::uuid;
SELECT r ? 'error' AS refused
FROM auth.sluice_link_identity((SELECT id FROM ids WHERE name = 'fay'), 'keycloak', 'link-4',
       '{"sub": "link-4", "email": "fay@link.test", "email_verified": true}', 'fay@link.test', true) AS r;
SELECT auth.sluice_unlink_identity((SELECT id FROM ids WHERE name = 'fay'), (SELECT id FROM ids WHERE name = 'fay')) AS unlinked;
SELECT u.email, u.email_confirmed_at IS NOT NULL AS confirmed,
       jsonb_path_query_array(auth.sluice_user_json(u), '$.identities[*].provider') AS identities
FROM auth.users AS u WHERE id = (SELECT id FROM ids WHERE name = 'fay');
-- An email that another user has by now: unlinking is refused and changes nothing.
INSERT INTO ids SELECT 'gus', (auth.sluice_create_user('gus@link.test', NULL, '{}', '{}', true, NULL) ->> 'id')::uuid;
SELECT r ? 'error' AS refused
FROM auth.sluice_link_identity((SELECT id FROM ids WHERE name = 'gus'), 'keycloak', 'link-5',
       '{"sub": "link-5", "email": "hal@link.test", "email_verified": true}', 'hal@link.test', true) AS r;
SELECT auth.sluice_create_user('hal@link.test', NULL, '{}', '{}', true, NULL) IS NOT NULL AS hal_created;
SELECT auth.sluice_unlink_identity((SELECT id FROM ids WHERE name = 'gus'), (SELECT id FROM ids WHERE name = 'gus')) AS conflict;
SELECT u.email, jsonb_path_query_array(auth.sluice_user_json(u), '$.identities[*].provider') AS identities
FROM auth.users AS u WHERE id = (SELECT id FROM ids WHERE name = 'gus');
-- Request roles cannot call them.
SELECT has_function_privilege('authenticated', 'auth.sluice_link_identity(uuid, text, text, jsonb, text, boolean)', 'EXECUTE') AS authenticated_may_link,
       has_function_privilege('authenticator', 'auth.sluice_unlink_identity(uuid, uuid)', 'EXECUTE') AS authenticator_may_unlink,
       has_table_privilege('service_role', 'auth.email_identity_removed', 'SELECT') AS service_role_reads_marks;
