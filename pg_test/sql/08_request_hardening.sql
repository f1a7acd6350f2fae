-- Request hardening: the request roles' default statement timeouts, JIT off inside requests, and
-- sluice.planned_rows limited to one SELECT in sessions of authenticator.
-- After each statement that fails, its SQLSTATE is echoed, so an error code collapsing to XX000 shows.

-- Supabase's defaults, for all databases (an operator's own ALTER ROLE ... SET wins).
SELECT r.rolname, s.setconfig
FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
WHERE s.setdatabase = 0 AND r.rolname IN ('anon', 'authenticated', 'service_role')
ORDER BY 1;

-- JIT is off inside a request, whatever the server's setting, unless sluice.request_jit is on.
SET jit = on;
SELECT sluice.run_request('anon', '{}', 'GET', '/', '{}', true, '', 'SELECT current_setting(''jit'')', '{}') AS jit;
SET sluice.request_jit = on;
SELECT sluice.run_request('anon', '{}', 'GET', '/', '{}', true, '', 'SELECT current_setting(''jit'')', '{}') AS jit;
RESET sluice.request_jit;
RESET jit;

CREATE TABLE counted (id int PRIMARY KEY);
INSERT INTO counted SELECT generate_series(1, 1000);
ANALYZE counted;
GRANT SELECT ON counted TO anon;

-- The sidecar's path: a session of authenticator, inside a request switched to the caller's role.
SET SESSION AUTHORIZATION authenticator;
SELECT sluice.run_request('anon', '{}', 'GET', '/', '{}', true, '',
    'SELECT sluice.planned_rows(''SELECT 1 FROM public.counted WHERE id > $1::text::int'', ARRAY[$1])', ARRAY['900']) AS planned;
RESET SESSION AUTHORIZATION;

-- Exactly one SELECT: nothing else reaches EXPLAIN, so nothing else can run.
SELECT sluice.planned_rows('SELECT 1 FROM counted; DELETE FROM counted', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT sluice.planned_rows('DELETE FROM counted', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT sluice.planned_rows('SELECT 1 FROM counted WHERE', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS still_there FROM counted;

-- A session of any other role may not call it, even as a request role.
SET SESSION AUTHORIZATION anon;
SELECT sluice.planned_rows('SELECT 1 FROM public.counted', '{}');
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;

-- A read takes no transaction id, so its commit writes no WAL record and waits for no WAL flush;
-- a write still takes one, when it writes (and a GET's write still meets the read-only transaction).
BEGIN;
SELECT sluice.run_request('anon', '{}', 'GET', '/', '{}', true, '',
    'SELECT count(*) FROM public.counted WHERE id > $1::text::int', ARRAY['900']) AS read;
SELECT sluice.planned_rows('SELECT 1 FROM counted', '{}') > 0 AS planned;
SELECT pg_current_xact_id_if_assigned() IS NULL AS read_has_no_xid;
ROLLBACK;
BEGIN;
SELECT sluice.run_request('postgres', '{}', 'POST', '/', '{}', false, '',
    'INSERT INTO public.counted VALUES ($1::text::int) RETURNING id', ARRAY['1001']) AS written;
SELECT pg_current_xact_id_if_assigned() IS NOT NULL AS write_has_an_xid;
ROLLBACK;
SELECT sluice.run_request('postgres', '{}', 'GET', '/', '{}', true, '',
    'INSERT INTO public.counted VALUES ($1::text::int) RETURNING id', ARRAY['1001']);
\echo :LAST_ERROR_SQLSTATE

DROP TABLE counted;
