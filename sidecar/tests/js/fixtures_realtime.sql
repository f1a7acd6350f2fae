-- Fixtures for the realtime client tests (realtime.test.mjs): a table everyone may read, and one
-- whose rows only their owner may read (RLS), both with realtime on.
CREATE TABLE rt_items (
    id int PRIMARY KEY,
    kind text NOT NULL,
    name text NOT NULL,
    qty int NOT NULL DEFAULT 0
);
GRANT SELECT ON rt_items TO anon, authenticated;
GRANT ALL ON rt_items TO service_role;
DO $$ BEGIN PERFORM sluice.enable_realtime('rt_items'); END $$;

CREATE TABLE rt_notes (
    id int PRIMARY KEY,
    owner uuid NOT NULL,
    body text NOT NULL
);
ALTER TABLE rt_notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_notes ON rt_notes FOR SELECT TO authenticated USING (owner = auth.uid());
GRANT SELECT ON rt_notes TO authenticated;
GRANT ALL ON rt_notes TO service_role;
DO $$ BEGIN PERFORM sluice.enable_realtime('rt_notes'); END $$;
