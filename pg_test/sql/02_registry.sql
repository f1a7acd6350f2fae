-- The collection registry: enable/disable are idempotent and recorded in sluice.collections.
-- After each statement that fails, its SQLSTATE is echoed, so an error code collapsing to XX000 shows.
CREATE TABLE posts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text);
SELECT sluice.enable_realtime('posts');
SELECT sluice.enable_realtime('posts');
SELECT sluice.enable_history('posts');
SELECT relid, realtime, history, pk_columns FROM sluice.collections ORDER BY relid::text;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'posts'::regclass ORDER BY tgname;

SELECT sluice.disable_realtime('posts');
SELECT sluice.disable_realtime('posts');
SELECT relid, realtime, history FROM sluice.collections ORDER BY relid::text;
SELECT sluice.disable_history('posts');
SELECT count(*) AS tracked FROM sluice.collections;

-- A table without a primary key gets an error that names the fix.
CREATE TABLE logs (line text);
SELECT sluice.enable_realtime('logs');
\echo :LAST_ERROR_SQLSTATE
SELECT sluice.enable_history('logs');
\echo :LAST_ERROR_SQLSTATE
-- Only tables can be tracked.
CREATE VIEW post_titles AS SELECT title FROM posts;
SELECT sluice.enable_realtime('post_titles');
\echo :LAST_ERROR_SQLSTATE
SELECT sluice.enable_realtime('no_such_table');
\echo :LAST_ERROR_SQLSTATE

-- Dropping a tracked table removes it from the registry.
SELECT sluice.enable_realtime('posts');
DROP VIEW post_titles;
DROP TABLE posts;
SELECT count(*) AS tracked FROM sluice.collections;
DROP TABLE logs;

-- Only someone who may add triggers to a table can track it.
CREATE TABLE private_notes (id int PRIMARY KEY);
SET ROLE authenticated;
SELECT sluice.enable_realtime('private_notes');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP TABLE private_notes;
