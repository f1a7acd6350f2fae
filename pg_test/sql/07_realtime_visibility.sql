-- sluice.policies_admit: which claim sets may see one version of a row, judged by the table's
-- After each statement that fails, its SQLSTATE is echoed, so an error code collapsing to XX000 shows.
-- SELECT policies under each set's role and claims (the row as an event carries it, not the
-- table's current row).
CREATE TABLE rt_notes (id int PRIMARY KEY, owner uuid NOT NULL, body text, team int);
ALTER TABLE rt_notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON rt_notes FOR SELECT TO authenticated USING (owner = auth.uid());
GRANT SELECT ON rt_notes TO authenticated, service_role;
SELECT sluice.enable_realtime('rt_notes');

-- 0: ann, 1: bob, 2: anon (no SELECT privilege), 3: service_role (bypasses RLS), 4: no role and
-- 5: role "none" (both would otherwise reset to the session user).
\set sets '[{"role": "authenticated", "sub": "00000000-0000-4000-8000-00000000000a"}, {"role": "authenticated", "sub": "00000000-0000-4000-8000-00000000000b"}, {"role": "anon"}, {"role": "service_role"}, {}, {"role": "none"}]'
\set ann_row '{"id": 1, "owner": "00000000-0000-4000-8000-00000000000a", "body": "ann", "team": 1}'
\set bob_row '{"id": 2, "owner": "00000000-0000-4000-8000-00000000000b", "body": "bob", "team": 2}'
-- The version is judged, whether or not the table holds it: the table is empty here.
SELECT count(*) AS rows_in_table FROM rt_notes;
SET ROLE authenticator;
SELECT set_config('request.jwt.claims', '{"role": "before"}', false) IS NOT NULL AS set;
SELECT array(SELECT sluice.policies_admit('rt_notes', :'ann_row', :'sets')) AS sees_ann_row;
SELECT array(SELECT sluice.policies_admit('rt_notes', :'bob_row', :'sets')) AS sees_bob_row;
-- A key alone (no owner) satisfies no owner policy: only RLS-bypassing roles see it.
SELECT array(SELECT sluice.policies_admit('rt_notes', '{"id": 1}', :'sets')) AS sees_key_only;
-- The caller's role and claims are as they were.
SELECT current_user, current_setting('request.jwt.claims');
RESET ROLE;

-- Policies combine as in Postgres: permissive ones OR'ed, restrictive ones AND'ed, policies for
-- other commands or roles ignored; a subquery policy sees the row's columns by the table's name.
CREATE TABLE rt_members (team int, uid uuid);
GRANT SELECT ON rt_members TO authenticated;
INSERT INTO rt_members VALUES (2, '00000000-0000-4000-8000-00000000000a');
CREATE POLICY teammates ON rt_notes FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM rt_members m WHERE m.team = rt_notes.team AND m.uid = auth.uid()));
CREATE POLICY no_drafts ON rt_notes AS RESTRICTIVE FOR ALL TO authenticated USING (body IS DISTINCT FROM 'draft');
CREATE POLICY anyone_may_delete ON rt_notes FOR DELETE TO authenticated USING (true);
CREATE POLICY anon_only ON rt_notes FOR SELECT TO anon USING (true);
SELECT sluice.select_policy_expr('rt_notes', 'authenticated') AS authenticated_sees,
       sluice.select_policy_expr('rt_notes', 'anon') AS anon_sees,
       sluice.select_policy_expr('rt_notes', 'service_role') AS service_role_sees,
       sluice.select_policy_expr('rt_notes', 'no_such_role') AS unknown_role_sees;
SET ROLE authenticator;
-- Ann now also sees Bob's row through her team; a draft nobody but service_role.
SELECT array(SELECT sluice.policies_admit('rt_notes', :'bob_row', :'sets')) AS sees_bob_row;
SELECT array(SELECT sluice.policies_admit('rt_notes',
    '{"id": 1, "owner": "00000000-0000-4000-8000-00000000000a", "body": "draft", "team": 1}', :'sets')) AS sees_draft;
RESET ROLE;

-- The owner of a table without FORCE sees all, with FORCE only what the policies admit.
CREATE TABLE rt_owned (id int PRIMARY KEY, owner uuid NOT NULL);
ALTER TABLE rt_owned ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON rt_owned FOR SELECT USING (owner = auth.uid());
SELECT sluice.enable_realtime('rt_owned');
CREATE ROLE rt_table_owner;
GRANT rt_table_owner TO authenticator;
ALTER TABLE rt_owned OWNER TO rt_table_owner;
SELECT sluice.select_policy_expr('rt_owned', 'rt_table_owner') AS owner_sees;
ALTER TABLE rt_owned FORCE ROW LEVEL SECURITY;
SELECT sluice.select_policy_expr('rt_owned', 'rt_table_owner') AS forced_owner_sees;
SET ROLE authenticator;
SELECT array(SELECT sluice.policies_admit('rt_owned', '{"id": 1, "owner": "00000000-0000-4000-8000-00000000000a"}',
    '[{"role": "rt_table_owner", "sub": "00000000-0000-4000-8000-00000000000a"}, {"role": "rt_table_owner"}]')) AS forced_owner_admitted;
RESET ROLE;

-- Only the sidecar's login may call it: a request role could otherwise probe rows under
-- someone else's claims.
SET ROLE authenticated;
SELECT sluice.policies_admit('rt_notes', :'ann_row', :'sets');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE service_role;
SELECT sluice.policies_admit('rt_notes', :'ann_row', :'sets');
\echo :LAST_ERROR_SQLSTATE
SELECT sluice.visible_to_each('rt_notes', :'sets', 'SELECT true', false);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- A policy that fails for some claims hides the row from those claims only.
CREATE FUNCTION not_for_bob() RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF auth.uid() = '00000000-0000-4000-8000-00000000000b' THEN
        RAISE EXCEPTION 'no bob';
    END IF;
    RETURN true;
END $$;
CREATE TABLE rt_picky (id int PRIMARY KEY);
ALTER TABLE rt_picky ENABLE ROW LEVEL SECURITY;
CREATE POLICY picky ON rt_picky FOR SELECT TO authenticated USING (not_for_bob());
GRANT SELECT ON rt_picky TO authenticated;
SELECT sluice.enable_realtime('rt_picky');
-- No policy for a role means no rows for it (NULL: nothing to evaluate).
SELECT sluice.select_policy_expr('rt_picky', 'anon') IS NULL AS anon_has_no_policy;
SET ROLE authenticator;
SELECT array(SELECT sluice.policies_admit('rt_picky', '{"id": 1}', :'sets')) AS sees_picky_row;
SELECT current_user, current_setting('request.jwt.claims');
RESET ROLE;

-- A table Sluice does not track is refused.
CREATE TABLE untracked (id int PRIMARY KEY);
SELECT sluice.policies_admit('untracked', '{"id": 1}', '[]');
\echo :LAST_ERROR_SQLSTATE

-- Roles are cluster-wide: leave none behind.
DROP TABLE rt_owned;
REVOKE rt_table_owner FROM authenticator;
DROP ROLE rt_table_owner;
