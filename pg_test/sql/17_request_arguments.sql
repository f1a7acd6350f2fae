-- sluice.run_request's arguments reach the statement as given: the parameters (the text[]
-- argument, passed on element by element as text, NULL elements included, in storage order for
-- an array of more dimensions), the settings (as the request's role), and the result row's
-- columns as text (NULL columns included; no row is NULL).
-- After each statement that fails, its SQLSTATE is echoed, so an error code collapsing to XX000 shows.

-- Each parameter arrives as the element it was, in order; a NULL element is SQL NULL.
SELECT sluice.run_request('anon', '{}', 'GET', '/', '{}', true, '',
    'SELECT $1 AS a, $2 IS NULL AS b_is_null, $3 AS c, pg_typeof($1)::text AS t',
    ARRAY['first', NULL, 'th"ird, with {braces} and \ backslash']) AS row;

-- No parameters; and parameters that the statement reads as numbers and arrays.
SELECT sluice.run_request('anon', '{}', 'GET', '/', '{}', true, '', 'SELECT 1, NULL::text, 3', '{}') AS row;
SELECT sluice.run_request('anon', '{}', 'GET', '/', '{}', true, '',
    'SELECT $1::text::int + $2::text::int, array_length($3::text[], 1)',
    ARRAY['40', '2', '{"a","b,c","NULL"}']) AS row;

-- A two-dimensional array: its elements in storage order, as unnest reads them.
SELECT sluice.run_request('anon', '{}', 'GET', '/', '{}', true, '',
    'SELECT concat_ws(''|'', $1, $2, $3, $4)', ARRAY[['a', 'b'], ['c', 'd']]) AS row;

-- A long parameter (stored compressed once it is a value of a table) arrives whole.
CREATE TEMP TABLE long_values (v text[]);
INSERT INTO long_values VALUES (ARRAY[repeat('0123456789', 10000)]);
SELECT sluice.run_request('anon', '{}', 'GET', '/', '{}', true, '',
    'SELECT length($1), md5($1) = md5(repeat(''0123456789'', 10000))', v) AS row
FROM long_values;

-- A statement that returns no row answers NULL.
SELECT sluice.run_request('anon', '{}', 'GET', '/', '{}', true, '',
    'SELECT 1 WHERE $1 = ''no''', ARRAY['yes']) IS NULL AS no_row;

-- More parameters than the statement has placeholders are declared and left unused; fewer is
-- Postgres's own error.
SELECT sluice.run_request('anon', '{}', 'GET', '/', '{}', true, '', 'SELECT $1', ARRAY['a', 'b']);
\echo :LAST_ERROR_SQLSTATE
SELECT sluice.run_request('anon', '{}', 'GET', '/', '{}', true, '', 'SELECT $1, $2', ARRAY['a']);
\echo :LAST_ERROR_SQLSTATE

-- The settings, made as the request's role, seen by the statement; the role is the request's.
SET SESSION AUTHORIZATION authenticator;
SELECT sluice.run_request('authenticated', '{"sub":"u1","role":"authenticated"}', 'PATCH', '/rest/v1/x',
    '{"x-h":"v"}', false, '2s',
    'SELECT current_user, current_setting(''request.jwt.claims''), current_setting(''request.method''),
            current_setting(''request.path''), current_setting(''request.headers''),
            current_setting(''transaction_read_only''), current_setting(''statement_timeout''),
            current_setting(''jit'')', '{}') AS row;
SELECT sluice.run_request('anon', '{}', 'GET', '/', '{}', true, '',
    'SELECT current_user, current_setting(''transaction_read_only'')', '{}') AS row;
-- A role the session user may not become is refused as SET ROLE refuses it.
SELECT sluice.run_request('postgres', '{}', 'GET', '/', '{}', true, '', 'SELECT 1', '{}');
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;

-- Nothing outlives the call: the settings were transaction-local.
SELECT current_user, current_setting('request.method', true) IS NULL OR current_setting('request.method', true) = '' AS no_method;
