-- sluice.visible_to: which claim sets may see one row, checked under each set's role and claims.
CREATE TABLE rt_notes (id int PRIMARY KEY, owner uuid NOT NULL, body text);
ALTER TABLE rt_notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON rt_notes FOR SELECT TO authenticated USING (owner = auth.uid());
GRANT SELECT ON rt_notes TO authenticated, service_role;
SELECT sluice.enable_realtime('rt_notes');
INSERT INTO rt_notes VALUES
    (1, '00000000-0000-4000-8000-00000000000a', 'ann'),
    (2, '00000000-0000-4000-8000-00000000000b', 'bob');

-- 0: ann, 1: bob, 2: anon (no SELECT privilege), 3: service_role (bypasses RLS), 4: no role and
-- 5: role "none" (both would otherwise reset to the session user).
\set sets '[{"role": "authenticated", "sub": "00000000-0000-4000-8000-00000000000a"}, {"role": "authenticated", "sub": "00000000-0000-4000-8000-00000000000b"}, {"role": "anon"}, {"role": "service_role"}, {}, {"role": "none"}]'
SET ROLE authenticator;
SELECT set_config('request.jwt.claims', '{"role": "before"}', false) IS NOT NULL AS set;
SELECT sluice.visible_to('rt_notes', '{"id": 1}', :'sets') AS sees_ann_row;
SELECT sluice.visible_to('rt_notes', '{"id": 2}', :'sets') AS sees_bob_row;
-- A key that matches no row is visible to nobody.
SELECT count(*) FROM sluice.visible_to('rt_notes', '{"id": 3}', :'sets');
-- The caller's role and claims are as they were.
SELECT current_user, current_setting('request.jwt.claims');
RESET ROLE;

-- Only the sidecar's login may call it: a request role could otherwise probe rows under
-- someone else's claims.
SET ROLE authenticated;
SELECT sluice.visible_to('rt_notes', '{"id": 1}', :'sets');
RESET ROLE;
SET ROLE service_role;
SELECT sluice.visible_to('rt_notes', '{"id": 1}', :'sets');
SELECT sluice.visible_to_each('rt_notes', :'sets', 'SELECT true', false);
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
INSERT INTO rt_picky VALUES (1);
SET ROLE authenticator;
SELECT sluice.visible_to('rt_picky', '{"id": 1}', :'sets') AS sees_picky_row;
SELECT current_user, current_setting('request.jwt.claims');
RESET ROLE;

-- A table Sluice does not track is refused.
CREATE TABLE untracked (id int PRIMARY KEY);
SELECT sluice.visible_to('untracked', '{"id": 1}', '[]');
