-- DDL on a tracked table keeps its change triggers in step with the primary key.
-- After each statement that fails, its SQLSTATE is echoed, so an error code collapsing to XX000 shows.
CREATE TABLE things (id int PRIMARY KEY, label text);
SELECT sluice.enable_realtime('things');
ALTER TABLE things RENAME COLUMN id TO thing_id;
SELECT pk_columns FROM sluice.collections WHERE relid = 'things'::regclass;
SELECT coalesce(max(position), 0) AS start FROM sluice.changes \gset
INSERT INTO things VALUES (1, 'one');
SELECT op, pk FROM sluice.changes_after(:start, 10);

-- Removing the primary key of a tracked table is refused with the way out.
ALTER TABLE things DROP CONSTRAINT things_pkey;
\echo :LAST_ERROR_SQLSTATE
SELECT sluice.disable_realtime('things');
ALTER TABLE things DROP CONSTRAINT things_pkey;

-- The event triggers that signal sidecars are installed.
SELECT evtname, evtevent, evtenabled FROM pg_event_trigger WHERE evtname LIKE 'sluice%' ORDER BY evtname;
DROP TABLE things;
