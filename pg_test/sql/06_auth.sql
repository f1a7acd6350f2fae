-- Auth tables: users are tracked by the change log; no request role can reach the tables or the
-- After each statement that fails, its SQLSTATE is echoed, so an error code collapsing to XX000 shows.
-- functions; only authenticator may call the functions, which run as the extension's owner.
SELECT relid, realtime FROM sluice.collections WHERE relid = 'auth.users'::regclass;

SELECT count(*) AS privileges_on_auth_tables
FROM pg_tables AS t
CROSS JOIN unnest(ARRAY['anon', 'authenticated', 'service_role', 'authenticator']) AS r(role)
CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p(privilege)
WHERE t.schemaname = 'auth'
  AND has_table_privilege(r.role, format('%I.%I', t.schemaname, t.tablename), p.privilege);

SELECT p.proname,
       p.prosecdef AS definer,
       has_function_privilege('authenticator', p.oid, 'EXECUTE') AS authenticator,
       has_function_privilege('service_role', p.oid, 'EXECUTE') AS service_role,
       has_function_privilege('authenticated', p.oid, 'EXECUTE') AS authenticated,
       has_function_privilege('anon', p.oid, 'EXECUTE') AS anon
FROM pg_proc AS p
WHERE p.pronamespace = 'auth'::regnamespace AND p.proname LIKE 'sluice\_%'
ORDER BY p.proname;

-- A user, as the sidecar creates one (the hash is a stand-in; the sidecar stores Argon2id).
SELECT u ->> 'email' AS email, u -> 'app_metadata' AS app_metadata, u -> 'user_metadata' AS user_metadata
FROM auth.sluice_create_user('Ann@Example.com', 'stand-in-hash', '{"name": "Ann"}', '{}', true, NULL) AS u;
SELECT op, record ->> 'email' AS email, record ? 'hash' AS has_hash
FROM sluice.changes WHERE schema_name = 'auth' AND table_name = 'users';

-- Metadata merges as GoTrue's: new keys replace, null removes.
SELECT auth.sluice_merge_meta('{"a": 1, "b": 2}', '{"b": null, "c": 3}') AS merged;

-- The service_role key's role cannot read hashes, directly or through the functions.
SET ROLE service_role;
SELECT hash FROM auth.passwords;
\echo :LAST_ERROR_SQLSTATE
SELECT hash FROM auth.sluice_password_of('ann@example.com');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- authenticator can call the functions, not read the tables.
SET ROLE authenticator;
SELECT hash, banned, confirmed FROM auth.sluice_password_of('ANN@example.com');
SELECT count(*) FROM auth.users;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
