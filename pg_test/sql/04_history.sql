-- History: every change stores a numbered version; restore writes one back as a new version.
-- After each statement that fails, its SQLSTATE is echoed, so an error code collapsing to XX000 shows.
CREATE TABLE articles (slug text, lang text, body text, PRIMARY KEY (slug, lang));
SELECT sluice.enable_history('articles');

BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "d3b07384-d9a0-4c3f-9a8e-6f2b1c0e5a11"}', true) IS NOT NULL AS set;
INSERT INTO articles VALUES ('hello', 'en', 'first draft');
COMMIT;
UPDATE articles SET body = 'second draft';
DELETE FROM articles;

SELECT version, op, record, actor, at IS NOT NULL AS has_time
FROM sluice.history('articles', '{"slug": "hello", "lang": "en"}');

-- Restoring version 1 brings the deleted row back, recorded as version 4.
SELECT sluice.restore('articles', '{"lang": "en", "slug": "hello"}', 1);
SELECT * FROM articles;
SELECT version, op, record ->> 'body' AS body FROM sluice.history('articles', '{"slug": "hello", "lang": "en"}');
-- Restoring over an existing row updates it.
SELECT sluice.restore('articles', '{"slug": "hello", "lang": "en"}', 2) ->> 'body' AS restored;
SELECT version, op, record ->> 'body' AS body FROM sluice.history('articles', '{"slug": "hello", "lang": "en"}');

-- Bad keys and versions are clear errors.
SELECT * FROM sluice.history('articles', '{"slug": "hello"}');
\echo :LAST_ERROR_SQLSTATE
SELECT sluice.restore('articles', '{"slug": "hello", "lang": "en"}', 42);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM sluice.history('articles', '{"slug": "nope", "lang": "en"}');

-- TRUNCATE records each row's last state before the rows go.
TRUNCATE articles;
SELECT version, op FROM sluice.history('articles', '{"slug": "hello", "lang": "en"}') ORDER BY version DESC LIMIT 1;

-- Under RLS, a user who cannot read a row cannot read its history.
CREATE TABLE diaries (id int PRIMARY KEY, owner uuid, entry text);
ALTER TABLE diaries ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_diary ON diaries TO authenticated USING (owner = auth.uid());
GRANT SELECT, INSERT, UPDATE ON diaries TO authenticated;
SELECT sluice.enable_history('diaries');
INSERT INTO diaries VALUES (1, 'd3b07384-d9a0-4c3f-9a8e-6f2b1c0e5a11', 'ann''s secret');
UPDATE diaries SET entry = entry || '!';

BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "d3b07384-d9a0-4c3f-9a8e-6f2b1c0e5a11"}', true) IS NOT NULL AS set;
SELECT count(*) AS ann_sees FROM sluice.history('diaries', '{"id": 1}');
SELECT set_config('request.jwt.claims', '{"sub": "9a4c1e2b-77f0-4d2e-8c1a-2b3c4d5e6f70"}', true) IS NOT NULL AS set;
SELECT count(*) AS bob_sees FROM sluice.history('diaries', '{"id": 1}');
SELECT sluice.restore('diaries', '{"id": 1}', 1);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- anon has no SELECT on the table at all.
BEGIN;
SET LOCAL ROLE anon;
SELECT count(*) FROM sluice.history('diaries', '{"id": 1}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- Nobody reads the history table directly.
SET ROLE authenticated;
SELECT count(*) FROM sluice.history_entries;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

DROP TABLE articles, diaries;
