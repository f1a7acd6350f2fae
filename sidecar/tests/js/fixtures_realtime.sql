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

-- The same, with whole old records (REPLICA IDENTITY FULL).
CREATE TABLE rt_notes_full (LIKE rt_notes INCLUDING ALL);
ALTER TABLE rt_notes_full REPLICA IDENTITY FULL;
ALTER TABLE rt_notes_full ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_notes ON rt_notes_full FOR SELECT TO authenticated USING (owner = auth.uid());
GRANT SELECT ON rt_notes_full TO authenticated;
GRANT ALL ON rt_notes_full TO service_role;
DO $$ BEGIN PERFORM sluice.enable_realtime('rt_notes_full'); END $$;
-- A row inserted for one owner and given to another in the same transaction: by the time its
-- events are delivered, the table shows only the second version.
CREATE FUNCTION rt_insert_then_give(note_id int, first_owner uuid, second_owner uuid) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO rt_notes_full VALUES (note_id, first_owner, 'first');
    UPDATE rt_notes_full SET owner = second_owner, body = 'given' WHERE id = note_id;
$$;
REVOKE ALL ON FUNCTION rt_insert_then_give(int, uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rt_insert_then_give(int, uuid, uuid) TO service_role;

-- TRUNCATE reaches postgres_changes listeners (Sluice sends it; Supabase's postgres_changes has none).
CREATE TABLE rt_emptied (id int PRIMARY KEY);
GRANT SELECT ON rt_emptied TO anon;
GRANT ALL ON rt_emptied TO service_role;
DO $$ BEGIN PERFORM sluice.enable_realtime('rt_emptied'); END $$;
CREATE FUNCTION rt_empty() RETURNS void LANGUAGE sql AS 'TRUNCATE rt_emptied';
REVOKE ALL ON FUNCTION rt_empty() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rt_empty() TO service_role;
