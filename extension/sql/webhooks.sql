-- Webhooks (issue 12): defined here, delivered by the sidecars from the change log.
--
-- A webhook names tables and events; the sidecar that leads it (one per webhook, by an advisory lock)
-- reads the change log after the webhook's cursor and POSTs each matching event, signed as Standard
-- Webhooks says. The cursor moves only after a 2xx (or when the event is given up as dead), so delivery
-- is at least once and in position order per webhook. Every attempt is logged in
-- sluice.webhook_deliveries.
--
-- Access model. service_role (and superusers) manage webhooks through the functions below (SECURITY
-- DEFINER, executable by service_role only) and may read the definitions, cursors and delivery log. The
-- signing secrets live apart, in sluice.webhook_secrets, which is granted to authenticator (the sidecar's
-- login role) alone and is not tracked by the change log: a secret is seen once, when
-- create_webhook or rotate_webhook_secret returns it.

CREATE TABLE sluice.webhooks (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_-]{1,63}$'),
    target text NOT NULL CHECK (target ~* '^https?://[^[:space:]]+$'),
    tables regclass[] NOT NULL CHECK (cardinality(tables) > 0),
    events text[] NOT NULL
        CHECK (cardinality(events) > 0 AND events <@ '{INSERT,UPDATE,DELETE,TRUNCATE}'::text[]),
    headers jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(headers) = 'object'),
    -- realtime's column filter: `column=op.value`, op one of eq, neq, lt, lte, gt, gte, in.
    filter text CHECK (filter ~ '^[^=]+=(eq|neq|lt|lte|gt|gte|in)\..*$'),
    timeout interval NOT NULL DEFAULT '10 s' CHECK (timeout > '0' AND timeout <= '5 min'),
    max_attempts int NOT NULL DEFAULT 10 CHECK (max_attempts BETWEEN 1 AND 100),
    -- The first retry waits about this long; each next one twice as long (jitter added), at most 1 hour.
    retry_delay interval NOT NULL DEFAULT '1 s' CHECK (retry_delay >= '0' AND retry_delay <= '1 hour'),
    -- After a dead delivery: go on with the next event, or pause (disable) the webhook.
    on_dead text NOT NULL DEFAULT 'continue' CHECK (on_dead IN ('continue', 'pause')),
    active boolean NOT NULL DEFAULT true,
    disabled_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Standard Webhooks secrets (`whsec_` + base64 of the key). During a rotation the old secret stays
-- valid until `expires_at`, and each delivery carries one signature per valid secret.
CREATE TABLE sluice.webhook_secrets (
    webhook_id bigint NOT NULL REFERENCES sluice.webhooks (id) ON DELETE CASCADE,
    secret text NOT NULL CHECK (secret ~ '^whsec_[A-Za-z0-9+/]+={0,2}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    PRIMARY KEY (webhook_id, secret)
);

-- Each webhook's place in the change log: events up to `position` are handled. `attempts` failed
-- attempts were made at the next event (so a restart goes on counting), the next not before
-- `next_attempt_at`. `generation` changes when the cursor is moved by hand (retry_webhook), so a
-- sidecar delivering meanwhile does not move it back.
CREATE TABLE sluice.webhook_cursors (
    webhook_id bigint PRIMARY KEY REFERENCES sluice.webhooks (id) ON DELETE CASCADE,
    position bigint NOT NULL,
    attempts int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    generation bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every attempt: `succeeded` (2xx), `failed` (retried later), `dead` (given up). `pending` is accepted
-- for the issue's fixed vocabulary; this version's dispatcher writes a row when an attempt has ended.
CREATE TABLE sluice.webhook_deliveries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook text NOT NULL,
    position bigint NOT NULL,
    attempt int NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
    response_status int,
    error text,
    duration_ms int,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_webhook_position_idx ON sluice.webhook_deliveries (webhook, position);
CREATE INDEX webhook_deliveries_at_idx ON sluice.webhook_deliveries (at);

REVOKE ALL ON sluice.webhooks, sluice.webhook_secrets, sluice.webhook_cursors, sluice.webhook_deliveries
    FROM PUBLIC;
GRANT SELECT ON sluice.webhooks, sluice.webhook_cursors, sluice.webhook_deliveries TO service_role;
-- The dispatcher (the sidecar's login role): reads definitions and secrets, moves cursors, logs attempts,
-- and disables a webhook whose receiver answered 410 or that pauses after a dead delivery.
GRANT SELECT ON sluice.webhooks, sluice.webhook_secrets, sluice.webhook_cursors TO authenticator;
GRANT UPDATE (active, disabled_reason, updated_at) ON sluice.webhooks TO authenticator;
GRANT UPDATE (position, attempts, next_attempt_at, updated_at) ON sluice.webhook_cursors TO authenticator;
GRANT INSERT ON sluice.webhook_deliveries TO authenticator;

-- Backups: definitions, secrets and cursors are the user's; the log too (it is pruned by retention).
SELECT pg_catalog.pg_extension_config_dump('sluice.webhooks', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.webhooks_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.webhook_secrets', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.webhook_cursors', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.webhook_deliveries', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.webhook_deliveries_id_seq', '');

-- A new secret: `whsec_` and 32 random bytes (two random UUIDs, 244 random bits), base64.
CREATE FUNCTION sluice.new_webhook_secret()
RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'whsec_' || encode(decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'), 'base64')
$$;

-- A secret given by the caller must be one that Standard Webhooks libraries accept.
CREATE FUNCTION sluice.checked_webhook_secret(secret text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key bytea;
BEGIN
    IF secret IS NULL OR secret !~ '^whsec_[A-Za-z0-9+/]+={0,2}$' THEN
        RAISE EXCEPTION 'a webhook secret is "whsec_" followed by base64'
            USING ERRCODE = '22023', HINT = 'Leave it out and one is made for you.';
    END IF;
    BEGIN
        key := decode(substr(secret, 7), 'base64');
    EXCEPTION WHEN others THEN
        RAISE EXCEPTION 'the webhook secret is not valid base64' USING ERRCODE = '22023';
    END;
    IF length(key) < 16 OR length(key) > 64 THEN
        RAISE EXCEPTION 'the webhook secret''s key must be 16 to 64 bytes (it is %)', length(key)
            USING ERRCODE = '22023';
    END IF;
    RETURN secret;
END
$$;

-- The tables a webhook may watch: a table already in the change log (its events are readable by
-- service_role there already, auth.users among them), or one service_role may SELECT; a superuser may
-- name any. Sluice's own tables never. Watching a table puts its changes in the log.
CREATE FUNCTION sluice.checked_webhook_tables(tables regclass[])
RETURNS regclass[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regclass;
    superuser boolean := (SELECT rolsuper FROM pg_roles WHERE rolname = session_user);
BEGIN
    IF tables IS NULL OR cardinality(tables) = 0 THEN
        RAISE EXCEPTION 'a webhook watches at least one table' USING ERRCODE = '22023';
    END IF;
    FOREACH t IN ARRAY tables LOOP
        IF (SELECT relnamespace = 'sluice'::regnamespace FROM pg_class WHERE oid = t) THEN
            RAISE EXCEPTION 'a webhook cannot watch %: it is one of Sluice''s own tables', t
                USING ERRCODE = '42501';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM sluice.collections c WHERE c.relid = t AND c.realtime) THEN
            IF NOT superuser AND NOT has_table_privilege('service_role', t, 'SELECT') THEN
                RAISE EXCEPTION 'a webhook cannot watch %: service_role may not read it', t
                    USING ERRCODE = '42501';
            END IF;
            PERFORM sluice.enable_realtime(t);
        END IF;
    END LOOP;
    RETURN tables;
END
$$;

CREATE FUNCTION sluice.checked_webhook_events(events text[])
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wanted text[] := (SELECT array_agg(DISTINCT upper(e)) FROM unnest(events) AS e);
BEGIN
    IF wanted IS NULL OR NOT wanted <@ '{INSERT,UPDATE,DELETE,TRUNCATE}'::text[] THEN
        RAISE EXCEPTION 'webhook events are INSERT, UPDATE, DELETE and TRUNCATE (got %)', events
            USING ERRCODE = '22023';
    END IF;
    RETURN wanted;
END
$$;

-- The target URL and the filter, checked before they reach the table's constraints, with messages that
-- say what is expected.
CREATE FUNCTION sluice.checked_webhook_target(target text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF target IS NULL OR target !~* '^https?://[^[:space:]]+$' THEN
        RAISE EXCEPTION 'a webhook target is an http:// or https:// URL (got %)', coalesce(quote_literal(target), 'NULL')
            USING ERRCODE = '22023';
    END IF;
    RETURN target;
END
$$;

CREATE FUNCTION sluice.checked_webhook_filter(filter text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF filter IS NOT NULL AND filter !~ '^[^=]+=(eq|neq|lt|lte|gt|gte|in)\..*$' THEN
        RAISE EXCEPTION 'a webhook filter is realtime''s column=op.value, op one of eq, neq, lt, lte, gt, gte, in (got %)',
            quote_literal(filter) USING ERRCODE = '22023';
    END IF;
    RETURN filter;
END
$$;

-- A webhook by name, locked, or an error that says so.
CREATE FUNCTION sluice.webhook_named(webhook_name text)
RETURNS sluice.webhooks
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hook sluice.webhooks;
BEGIN
    SELECT * INTO hook FROM sluice.webhooks w WHERE w.name = webhook_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'there is no webhook named "%"', webhook_name USING ERRCODE = '42704';
    END IF;
    RETURN hook;
END
$$;

CREATE FUNCTION sluice.create_webhook(
    name text,
    target text,
    tables regclass[],
    events text[] DEFAULT '{INSERT,UPDATE,DELETE}',
    secret text DEFAULT NULL,
    headers jsonb DEFAULT '{}',
    filter text DEFAULT NULL,
    timeout interval DEFAULT '10 s',
    max_attempts int DEFAULT 10,
    retry_delay interval DEFAULT '1 s',
    on_dead text DEFAULT 'continue')
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    created bigint;
    signing text := CASE WHEN secret IS NULL THEN sluice.new_webhook_secret()
                         ELSE sluice.checked_webhook_secret(secret) END;
BEGIN
    IF EXISTS (SELECT 1 FROM sluice.webhooks w WHERE w.name = create_webhook.name) THEN
        RAISE EXCEPTION 'a webhook named "%" exists', create_webhook.name
            USING ERRCODE = '42710', HINT = 'Use sluice.alter_webhook, or sluice.drop_webhook first.';
    END IF;
    INSERT INTO sluice.webhooks AS w (name, target, tables, events, headers, filter, timeout, max_attempts,
                                     retry_delay, on_dead)
    VALUES (create_webhook.name, sluice.checked_webhook_target(create_webhook.target),
            sluice.checked_webhook_tables(create_webhook.tables),
            sluice.checked_webhook_events(create_webhook.events), coalesce(create_webhook.headers, '{}'),
            sluice.checked_webhook_filter(create_webhook.filter), create_webhook.timeout, create_webhook.max_attempts,
            create_webhook.retry_delay, create_webhook.on_dead)
    RETURNING w.id INTO created;
    INSERT INTO sluice.webhook_secrets (webhook_id, secret) VALUES (created, signing);
    -- Events committed from now on.
    INSERT INTO sluice.webhook_cursors (webhook_id, position)
    SELECT created, coalesce(max(c.position), 0) FROM sluice.changes c WHERE c.position IS NOT NULL;
    PERFORM pg_notify('sluice_webhooks', create_webhook.name);
    RETURN signing;
END
$$;
COMMENT ON FUNCTION sluice.create_webhook(text, text, regclass[], text[], text, jsonb, text, interval, int, interval, text)
    IS 'Creates a webhook delivering the changes of these tables; returns its signing secret (whsec_...).';

-- Changes what is given (NULL: unchanged).
CREATE FUNCTION sluice.alter_webhook(
    name text,
    target text DEFAULT NULL,
    tables regclass[] DEFAULT NULL,
    events text[] DEFAULT NULL,
    headers jsonb DEFAULT NULL,
    filter text DEFAULT NULL,
    timeout interval DEFAULT NULL,
    max_attempts int DEFAULT NULL,
    retry_delay interval DEFAULT NULL,
    on_dead text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w sluice.webhooks := sluice.webhook_named(name);
BEGIN
    UPDATE sluice.webhooks SET
        target = CASE WHEN alter_webhook.target IS NULL THEN w.target
                      ELSE sluice.checked_webhook_target(alter_webhook.target) END,
        tables = CASE WHEN alter_webhook.tables IS NULL THEN w.tables
                      ELSE sluice.checked_webhook_tables(alter_webhook.tables) END,
        events = CASE WHEN alter_webhook.events IS NULL THEN w.events
                      ELSE sluice.checked_webhook_events(alter_webhook.events) END,
        headers = coalesce(alter_webhook.headers, w.headers),
        filter = coalesce(sluice.checked_webhook_filter(alter_webhook.filter), w.filter),
        timeout = coalesce(alter_webhook.timeout, w.timeout),
        max_attempts = coalesce(alter_webhook.max_attempts, w.max_attempts),
        retry_delay = coalesce(alter_webhook.retry_delay, w.retry_delay),
        on_dead = coalesce(alter_webhook.on_dead, w.on_dead),
        updated_at = now()
    WHERE id = w.id;
    PERFORM pg_notify('sluice_webhooks', w.name);
END
$$;

CREATE FUNCTION sluice.drop_webhook(name text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM sluice.webhooks w WHERE w.name = drop_webhook.name;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pg_notify('sluice_webhooks', drop_webhook.name);
    RETURN true;
END
$$;

CREATE FUNCTION sluice.enable_webhook(name text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w sluice.webhooks := sluice.webhook_named(name);
BEGIN
    UPDATE sluice.webhooks SET active = true, disabled_reason = NULL, updated_at = now() WHERE id = w.id;
    PERFORM pg_notify('sluice_webhooks', w.name);
END
$$;

CREATE FUNCTION sluice.disable_webhook(name text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w sluice.webhooks := sluice.webhook_named(name);
BEGIN
    UPDATE sluice.webhooks SET active = false, disabled_reason = 'disabled by ' || session_user,
                               updated_at = now()
    WHERE id = w.id;
    PERFORM pg_notify('sluice_webhooks', w.name);
END
$$;

-- Delivers again from `from_position` (inclusive), or, without it, from the earliest dead delivery
-- that was not delivered since; events after it are delivered again too, each with its webhook-id of
-- the first time, so receivers can deduplicate. Enables the webhook. Returns the position delivery
-- resumes at (NULL: nothing to retry).
CREATE FUNCTION sluice.retry_webhook(name text, from_position bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w sluice.webhooks := sluice.webhook_named(name);
    start bigint := from_position;
    pruned bigint := coalesce((SELECT pruned_through FROM sluice.change_log_state), 0);
BEGIN
    IF start IS NULL THEN
        SELECT min(d.position) INTO start
        FROM sluice.webhook_deliveries d
        WHERE d.webhook = w.name AND d.status = 'dead' AND d.at >= w.created_at
          AND NOT EXISTS (SELECT 1 FROM sluice.webhook_deliveries s
                          WHERE s.webhook = d.webhook AND s.position = d.position
                            AND s.status = 'succeeded' AND s.at > d.at);
        IF start IS NULL THEN
            RETURN NULL;
        END IF;
    END IF;
    IF start < 1 THEN
        RAISE EXCEPTION 'change log positions start at 1' USING ERRCODE = '22023';
    END IF;
    IF start <= pruned THEN
        RAISE EXCEPTION 'the change log was pruned through position %', pruned USING ERRCODE = '22023',
            HINT = format('Retry from position %s or later.', pruned + 1);
    END IF;
    UPDATE sluice.webhook_cursors
    SET position = start - 1, attempts = 0, next_attempt_at = NULL, generation = generation + 1,
        updated_at = now()
    WHERE webhook_id = w.id;
    UPDATE sluice.webhooks SET active = true, disabled_reason = NULL, updated_at = now() WHERE id = w.id;
    PERFORM pg_notify('sluice_webhooks', w.name);
    RETURN start;
END
$$;

-- A new signing secret (given, or made); the others stay valid for `keep_old`, and each delivery
-- meanwhile carries a signature for every valid secret. Returns the new secret.
CREATE FUNCTION sluice.rotate_webhook_secret(name text, secret text DEFAULT NULL, keep_old interval DEFAULT '24 hours')
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w sluice.webhooks := sluice.webhook_named(name);
    signing text := CASE WHEN secret IS NULL THEN sluice.new_webhook_secret()
                         ELSE sluice.checked_webhook_secret(secret) END;
BEGIN
    DELETE FROM sluice.webhook_secrets s WHERE s.webhook_id = w.id AND s.expires_at <= now();
    UPDATE sluice.webhook_secrets s SET expires_at = least(s.expires_at, now() + keep_old)
    WHERE s.webhook_id = w.id AND s.secret <> signing;
    INSERT INTO sluice.webhook_secrets (webhook_id, secret) VALUES (w.id, signing)
    ON CONFLICT ON CONSTRAINT webhook_secrets_pkey DO UPDATE SET expires_at = NULL;
    PERFORM pg_notify('sluice_webhooks', w.name);
    RETURN signing;
END
$$;

-- Retention of the delivery log.
CREATE FUNCTION sluice.prune_webhook_deliveries(older_than interval DEFAULT '7 days')
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (DELETE FROM sluice.webhook_deliveries WHERE at < now() - older_than RETURNING 1)
    SELECT count(*) FROM gone
$$;

DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'sluice.new_webhook_secret()',
        'sluice.checked_webhook_secret(text)',
        'sluice.checked_webhook_tables(regclass[])',
        'sluice.checked_webhook_events(text[])',
        'sluice.checked_webhook_target(text)',
        'sluice.checked_webhook_filter(text)',
        'sluice.webhook_named(text)',
        'sluice.create_webhook(text, text, regclass[], text[], text, jsonb, text, interval, int, interval, text)',
        'sluice.alter_webhook(text, text, regclass[], text[], jsonb, text, interval, int, interval, text)',
        'sluice.drop_webhook(text)',
        'sluice.enable_webhook(text)',
        'sluice.disable_webhook(text)',
        'sluice.retry_webhook(text, bigint)',
        'sluice.rotate_webhook_secret(text, text, interval)',
        'sluice.prune_webhook_deliveries(interval)'
    ] LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$grants$;
GRANT EXECUTE ON FUNCTION
    sluice.create_webhook(text, text, regclass[], text[], text, jsonb, text, interval, int, interval, text),
    sluice.alter_webhook(text, text, regclass[], text[], jsonb, text, interval, int, interval, text),
    sluice.drop_webhook(text),
    sluice.enable_webhook(text),
    sluice.disable_webhook(text),
    sluice.retry_webhook(text, bigint),
    sluice.rotate_webhook_secret(text, text, interval),
    sluice.prune_webhook_deliveries(interval)
TO service_role;
