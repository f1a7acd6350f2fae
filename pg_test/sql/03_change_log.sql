-- INSERT, UPDATE, DELETE and TRUNCATE on a realtime table append events with full records,
-- After each statement that fails, its SQLSTATE is echoed, so an error code collapsing to XX000 shows.
-- readable in commit order after any position.
CREATE TABLE tasks (id int PRIMARY KEY, title text, done boolean DEFAULT false);
SELECT sluice.enable_realtime('tasks');
SELECT coalesce(max(position), 0) AS start FROM sluice.changes \gset

BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "d3b07384-d9a0-4c3f-9a8e-6f2b1c0e5a11"}', true) IS NOT NULL AS set;
INSERT INTO tasks (id, title) VALUES (1, 'write tests');
COMMIT;
UPDATE tasks SET done = true WHERE id = 1;
DELETE FROM tasks WHERE id = 1;

SELECT position > :start AS after_start, schema_name, table_name, op, pk, record, old_record, actor
FROM sluice.changes_after(:start, 10);

-- Positions increase; resuming from the second event returns only the third.
SELECT position AS second FROM sluice.changes_after(:start, 2) ORDER BY position DESC LIMIT 1 \gset
SELECT op FROM sluice.changes_after(:second, 10);
-- max_rows bounds a read.
SELECT count(*) FROM sluice.changes_after(:start, 2);
SELECT count(*) FROM sluice.changes_after(:start, 0);

-- A statement touching many rows gives one event per row, in statement order.
INSERT INTO tasks (id, title) SELECT g, 'task ' || g FROM generate_series(10, 12) AS g;
TRUNCATE tasks;
SELECT op, pk FROM sluice.changes_after(:second, 100) WHERE op <> 'DELETE';

-- A rolled-back transaction leaves no events.
SELECT coalesce(max(position), 0) AS before_rollback FROM sluice.changes \gset
BEGIN;
INSERT INTO tasks (id, title) VALUES (99, 'never');
ROLLBACK;
SELECT count(*) AS events FROM sluice.changes_after(:before_rollback, 10);

-- A 1 MB row is logged whole (the NOTIFY payload names positions only; see the Rust tests).
INSERT INTO tasks (id, title) VALUES (100, repeat('x', 1024 * 1024));
SELECT op, length(record ->> 'title') AS title_length FROM sluice.changes_after(:before_rollback, 10);

-- The log is readable by service_role, not by anon or authenticated, and nobody forges events.
SET ROLE authenticated;
SELECT count(*) FROM sluice.changes_after(0, 1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO sluice.changes (seq, schema_name, table_name, op) VALUES (1, 'public', 'tasks', 'INSERT');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE service_role;
SELECT count(*) > 0 AS readable FROM sluice.changes_after(0, 1);
RESET ROLE;

-- Pruning deletes events older than the interval and records how far it went.
SELECT sluice.prune_changes('1 hour') AS pruned_recent;
UPDATE sluice.changes SET at = at - interval '2 days' WHERE position <= :second;
SELECT sluice.prune_changes('1 day') AS pruned_old;
SELECT pruned_through = :second AS horizon_recorded FROM sluice.change_log_state;
SELECT count(*) AS left_after_start FROM sluice.changes_after(:start, 100);

DROP TABLE tasks;
