-- Webhooks are defined in SQL: create (a new whsec_ secret, or a valid given one), alter, enable,
-- disable, retry from a position, rotate the secret, drop. Secrets are readable by the sidecar's role
-- only, and a webhook watches only tables service_role may read (or already logged).
-- After each statement that fails, its SQLSTATE is echoed.
CREATE TABLE orders (id int PRIMARY KEY, total numeric);
GRANT SELECT ON orders TO service_role;
CREATE TABLE hidden (id int PRIMARY KEY);

SELECT sluice.create_webhook('orders-hook', 'http://127.0.0.1:9/hook', '{orders}') ~ '^whsec_[A-Za-z0-9+/]{43}=$' AS made_secret;
SELECT name, target, tables, events, headers, filter, timeout, max_attempts, retry_delay, on_dead, active
FROM sluice.webhooks;
-- The watched table's changes are logged from now on; the cursor starts at the log's head.
SELECT realtime FROM sluice.collections WHERE relid = 'orders'::regclass;
SELECT c.position = (SELECT coalesce(max(position), 0) FROM sluice.changes WHERE position IS NOT NULL) AS at_head,
       c.attempts, c.generation
FROM sluice.webhook_cursors c JOIN sluice.webhooks w ON w.id = c.webhook_id;

-- A given secret is kept; a bad one, bad events, a bad target, a duplicate name are refused.
SELECT sluice.create_webhook('users-hook', 'https://example.test/u', '{auth.users}', '{insert,DELETE}',
                             secret => 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
SELECT events FROM sluice.webhooks WHERE name = 'users-hook';
SELECT sluice.create_webhook('bad', 'http://x/', '{orders}', secret => 'not-a-secret');
\echo :LAST_ERROR_SQLSTATE
SELECT sluice.create_webhook('bad', 'http://x/', '{orders}', secret => 'whsec_c2hvcnQ=');
\echo :LAST_ERROR_SQLSTATE
SELECT sluice.create_webhook('bad', 'http://x/', '{orders}', '{UPSERT}');
\echo :LAST_ERROR_SQLSTATE
SELECT sluice.create_webhook('bad', 'ftp://x/', '{orders}');
\echo :LAST_ERROR_SQLSTATE
SELECT sluice.create_webhook('orders-hook', 'http://x/', '{orders}');
\echo :LAST_ERROR_SQLSTATE
SELECT sluice.create_webhook('bad', 'http://x/', '{orders}', filter => 'total>5');
\echo :LAST_ERROR_SQLSTATE

-- service_role (in the sidecar's session, as a request runs) manages webhooks and reads the log, but
-- neither secrets nor tables it cannot read.
SET SESSION AUTHORIZATION authenticator;
SET ROLE service_role;
SELECT sluice.create_webhook('hidden-hook', 'http://x/', '{hidden}');
\echo :LAST_ERROR_SQLSTATE
SELECT sluice.create_webhook('secrets-hook', 'http://x/', '{sluice.webhook_secrets}');
\echo :LAST_ERROR_SQLSTATE
SELECT sluice.create_webhook('by-service', 'http://127.0.0.1:9/s', '{orders}', '{INSERT}', filter => 'total=gt.10') LIKE 'whsec_%' AS created;
SELECT count(*) FROM sluice.webhook_secrets;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS deliveries FROM sluice.webhook_deliveries;
RESET ROLE;
RESET SESSION AUTHORIZATION;
SET ROLE authenticated;
SELECT sluice.drop_webhook('orders-hook');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM sluice.webhooks;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE authenticator;
SELECT count(*) AS secrets_seen_by_the_sidecar FROM sluice.webhook_secrets;
RESET ROLE;
-- No secret is in a table the change log tracks.
SELECT count(*) AS tracked_sluice_tables FROM sluice.collections WHERE relid::text LIKE 'sluice.%';

-- alter, disable, enable.
SELECT sluice.alter_webhook('orders-hook', max_attempts => 3, headers => '{"x-app": "shop"}');
SELECT sluice.disable_webhook('orders-hook');
SELECT active, disabled_reason IS NOT NULL AS has_reason, max_attempts, headers FROM sluice.webhooks WHERE name = 'orders-hook';
SELECT sluice.enable_webhook('orders-hook');
SELECT active, disabled_reason FROM sluice.webhooks WHERE name = 'orders-hook';
SELECT sluice.enable_webhook('nope');
\echo :LAST_ERROR_SQLSTATE

-- retry_webhook: from a position (the cursor goes just before it, a new generation), or from the
-- earliest dead delivery; nothing to retry gives NULL.
SELECT sluice.retry_webhook('orders-hook');
INSERT INTO orders VALUES (1, 5), (2, 20);
SELECT min(position) AS first_order FROM sluice.changes WHERE table_name = 'orders' \gset
INSERT INTO sluice.webhook_deliveries (webhook, position, attempt, status, response_status)
VALUES ('orders-hook', :first_order, 3, 'dead', 500);
SELECT sluice.retry_webhook('orders-hook') = :first_order AS from_dead;
SELECT c.position = :first_order - 1 AS rewound, c.generation FROM sluice.webhook_cursors c
JOIN sluice.webhooks w ON w.id = c.webhook_id WHERE w.name = 'orders-hook';
SELECT sluice.retry_webhook('orders-hook', :first_order + 1) = :first_order + 1 AS from_position;
SELECT sluice.retry_webhook('orders-hook', 0);
\echo :LAST_ERROR_SQLSTATE

-- Rotation: the new secret and the old one (until it expires) are both valid.
SELECT sluice.rotate_webhook_secret('users-hook', 'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=');
SELECT s.secret, s.expires_at IS NOT NULL AS expires FROM sluice.webhook_secrets s
JOIN sluice.webhooks w ON w.id = s.webhook_id WHERE w.name = 'users-hook' ORDER BY s.created_at, s.secret;

-- Retention of the log, and drop (secrets and cursor go with the webhook).
SELECT sluice.prune_webhook_deliveries('1 hour');
UPDATE sluice.webhook_deliveries SET at = now() - interval '2 days';
SELECT sluice.prune_webhook_deliveries('1 day');
SELECT sluice.drop_webhook('orders-hook'), sluice.drop_webhook('orders-hook');
SELECT sluice.drop_webhook('users-hook'), sluice.drop_webhook('by-service');
SELECT (SELECT count(*) FROM sluice.webhooks) AS webhooks, (SELECT count(*) FROM sluice.webhook_secrets) AS secrets,
       (SELECT count(*) FROM sluice.webhook_cursors) AS cursors;
SELECT sluice.disable_realtime('orders');
DROP TABLE orders, hidden;
