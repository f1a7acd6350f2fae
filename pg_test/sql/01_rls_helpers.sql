-- auth.uid(), auth.role(), auth.email(), auth.jwt() read request.jwt.claims; anything unusable is NULL.
-- After each statement that fails, its SQLSTATE is echoed, so an error code collapsing to XX000 shows.
SELECT auth.uid(), auth.role(), auth.email(), auth.jwt();

BEGIN;
SELECT set_config('request.jwt.claims',
    '{"sub": "d3b07384-d9a0-4c3f-9a8e-6f2b1c0e5a11", "role": "authenticated", "email": "ann@example.com", "app_metadata": {"plan": "pro"}}', true) IS NOT NULL AS set;
SELECT auth.uid(), auth.role(), auth.email(), auth.jwt() -> 'app_metadata' ->> 'plan' AS plan;
COMMIT;
-- The setting is transaction-local: gone after COMMIT.
SELECT auth.uid() IS NULL AS cleared;

BEGIN;
SELECT set_config('request.jwt.claims', '', true) IS NOT NULL AS set;
SELECT auth.uid(), auth.role(), auth.jwt();
SELECT set_config('request.jwt.claims', '{not json', true) IS NOT NULL AS set;
SELECT auth.uid(), auth.role(), auth.jwt();
SELECT set_config('request.jwt.claims', '{"sub": "42", "role": 7}', true) IS NOT NULL AS set;
SELECT auth.uid(), auth.role(), auth.jwt();
ROLLBACK;

-- A policy written the Supabase way: each user sees only their own rows; no claims, no rows.
CREATE TABLE todos (id int PRIMARY KEY, owner uuid NOT NULL, title text);
ALTER TABLE todos ENABLE ROW LEVEL SECURITY;
CREATE POLICY todos_owner ON todos FOR ALL TO authenticated
    USING (owner = auth.uid()) WITH CHECK (owner = auth.uid());
GRANT SELECT, INSERT, UPDATE, DELETE ON todos TO authenticated;
INSERT INTO todos VALUES
    (1, 'd3b07384-d9a0-4c3f-9a8e-6f2b1c0e5a11', 'ann: buy milk'),
    (2, 'd3b07384-d9a0-4c3f-9a8e-6f2b1c0e5a11', 'ann: call bob'),
    (3, '9a4c1e2b-77f0-4d2e-8c1a-2b3c4d5e6f70', 'bob: fix bike');

BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "d3b07384-d9a0-4c3f-9a8e-6f2b1c0e5a11", "role": "authenticated"}', true) IS NOT NULL AS set;
SELECT id, title FROM todos ORDER BY id;
-- Writing someone else's row is refused by the policy.
INSERT INTO todos VALUES (4, '9a4c1e2b-77f0-4d2e-8c1a-2b3c4d5e6f70', 'forged');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

BEGIN;
SET LOCAL ROLE authenticated;
SELECT id, title FROM todos ORDER BY id;
ROLLBACK;

-- service_role bypasses RLS, as in Supabase.
GRANT SELECT ON todos TO service_role;
BEGIN;
SET LOCAL ROLE service_role;
SELECT count(*) FROM todos;
ROLLBACK;

DROP TABLE todos;
