-- Sluice finalize: SQL-level functions and the event triggers. Runs after the Rust functions exist.

CREATE FUNCTION sluice.changes_after("position" bigint, max_rows int DEFAULT 1000)
RETURNS SETOF sluice.changes
LANGUAGE sql STABLE
AS $$
    SELECT * FROM sluice.changes
    WHERE changes.position > $1 AND changes.position IS NOT NULL
    ORDER BY changes.position
    LIMIT greatest($2, 0)
$$;
COMMENT ON FUNCTION sluice.changes_after(bigint, int) IS
    'Committed change events after a position, in position (commit) order. Resume with the last position seen.';
REVOKE ALL ON FUNCTION sluice.changes_after(bigint, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sluice.changes_after(bigint, int) TO service_role;

CREATE FUNCTION sluice.prune_changes(older_than interval)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    pruned bigint;
    highest bigint;
BEGIN
    WITH gone AS (
        DELETE FROM sluice.changes
        WHERE position IS NOT NULL AND at < now() - older_than
        RETURNING position
    )
    SELECT count(*), max(position) INTO pruned, highest FROM gone;
    IF highest IS NOT NULL THEN
        UPDATE sluice.change_log_state SET pruned_through = greatest(pruned_through, highest);
    END IF;
    RETURN pruned;
END
$$;
COMMENT ON FUNCTION sluice.prune_changes(interval) IS
    'Deletes change events older than the interval; returns how many were deleted.';
REVOKE ALL ON FUNCTION sluice.prune_changes(interval) FROM PUBLIC;

-- After DDL: keep the change triggers' primary-key arguments in step with the table, and tell
-- sidecars to reload their schema cache.
CREATE FUNCTION sluice.on_ddl_command_end()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tracked regclass;
BEGIN
    FOR tracked IN
        SELECT DISTINCT c.relid
        FROM pg_event_trigger_ddl_commands() AS d
        JOIN sluice.collections AS c ON c.relid::oid = d.objid
        WHERE d.classid = 'pg_class'::regclass
    LOOP
        PERFORM sluice.refresh_tracking(tracked);
    END LOOP;
    PERFORM pg_notify('sluice_schema', json_build_object('tag', tg_tag)::text);
END
$$;

CREATE FUNCTION sluice.on_sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM sluice.collections
    WHERE relid::oid IN (
        SELECT objid FROM pg_event_trigger_dropped_objects()
        WHERE classid = 'pg_class'::regclass AND objsubid = 0
    );
    DELETE FROM sluice.history_entries
    WHERE relid IN (
        SELECT objid FROM pg_event_trigger_dropped_objects()
        WHERE classid = 'pg_class'::regclass AND objsubid = 0
    );
    PERFORM pg_notify('sluice_schema', json_build_object('tag', tg_tag)::text);
END
$$;

CREATE EVENT TRIGGER sluice_ddl_command_end ON ddl_command_end
    EXECUTE FUNCTION sluice.on_ddl_command_end();
CREATE EVENT TRIGGER sluice_sql_drop ON sql_drop
    EXECUTE FUNCTION sluice.on_sql_drop();

CREATE FUNCTION sluice.history("table" regclass, pk jsonb)
RETURNS TABLE (version int, op text, record jsonb, actor uuid, at timestamptz)
LANGUAGE sql STABLE STRICT
AS $$ SELECT * FROM sluice.history_rows($1::oid, $2) $$;
COMMENT ON FUNCTION sluice.history(regclass, jsonb) IS
    'The versions of one row, oldest first. The key is JSON, e.g. ''{"id": 1}''.';

CREATE FUNCTION sluice.restore("table" regclass, pk jsonb, version int)
RETURNS jsonb
LANGUAGE sql VOLATILE STRICT
AS $$ SELECT sluice.restore_version($1::oid, $2, $3) $$;
COMMENT ON FUNCTION sluice.restore(regclass, jsonb, int) IS
    'Writes a stored version of a row back to the table (recorded as a new version); returns it.';
