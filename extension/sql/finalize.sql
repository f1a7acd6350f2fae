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

-- Realtime delivery: which of several subscribers may see one row. The sidecar groups its
-- subscribers by identical (role, claims) and asks once per event, instead of once per subscriber.
-- For each claim set (a JSON array of JWT claim objects, each with a "role"), it switches to that
-- role with those claims, exactly as a REST request would, and probes the row by its primary key
-- under the table's RLS policies. Returns the (0-based) indexes of the claim sets that see the row.
--
-- Who may call it: only `authenticator`, the sidecar's login role. The function switches roles,
-- which only works for roles the session user is a member of; a REST request (running as anon,
-- authenticated or service_role) cannot execute it, so no client can use it to probe rows under
-- someone else's claims. The SET clause makes Postgres restore `role` and `request.jwt.claims` when
-- the function returns, whatever happened inside.
-- The loop of sluice.visible_to (not for direct use: it runs the statement it is given, so it is
-- as restricted as visible_to): the indexes of the claim sets that see the row. A claim set
-- without a role is skipped (set_config would reset to the session user), as is one whose role lacks
-- SELECT on the table.
CREATE FUNCTION sluice.visible_to_each(relid regclass, claim_sets jsonb, probe text, guarded boolean)
RETURNS int[]
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    claims jsonb;
    idx bigint;
    role_name text;
    seen boolean;
    allowed jsonb := '{}';
    visible int[] := '{}';
BEGIN
    FOR claims, idx IN SELECT e.value, e.ordinality - 1 FROM jsonb_array_elements(claim_sets) WITH ORDINALITY AS e
    LOOP
        role_name := claims ->> 'role';
        CONTINUE WHEN coalesce(role_name, 'none') IN ('none', '');
        IF NOT allowed ? role_name THEN
            allowed := allowed || jsonb_build_object(role_name,
                EXISTS (SELECT 1 FROM pg_roles AS r
                        WHERE r.rolname = role_name
                          AND pg_has_role(session_user, r.oid, 'MEMBER')
                          AND has_table_privilege(r.oid, relid, 'SELECT')));
        END IF;
        CONTINUE WHEN NOT (allowed -> role_name)::boolean;
        IF guarded THEN
            BEGIN
                PERFORM set_config('role', role_name, true);
                PERFORM set_config('request.jwt.claims', claims::text, true);
                EXECUTE probe INTO seen;
            EXCEPTION WHEN OTHERS THEN
                seen := false;
            END;
        ELSE
            PERFORM set_config('role', role_name, true);
            PERFORM set_config('request.jwt.claims', claims::text, true);
            EXECUTE probe INTO seen;
        END IF;
        PERFORM set_config('role', 'none', true);
        IF seen THEN
            visible := visible || idx::int;
        END IF;
    END LOOP;
    RETURN visible;
END
$$;
REVOKE ALL ON FUNCTION sluice.visible_to_each(regclass, jsonb, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sluice.visible_to_each(regclass, jsonb, text, boolean) TO authenticator;

CREATE FUNCTION sluice.visible_to(relid regclass, pk jsonb, claim_sets jsonb)
RETURNS SETOF int
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keys text[];
    probe text;
    visible int[];
BEGIN
    SELECT c.pk_columns INTO keys FROM sluice.collections AS c WHERE c.relid = visible_to.relid;
    IF keys IS NULL THEN
        RAISE EXCEPTION 'sluice: % is not tracked by Sluice', relid
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- The probe is prepared once per session and table, so that checking many claim sets costs
    -- no planning (a plan stays valid across roles with the same policies; Postgres re-plans when
    -- it must). Identifiers come from the catalog, quoted; the key is a bound parameter, read back
    -- as the table's own row type so that the comparison uses the primary-key index.
    -- Named after the key columns too: a changed primary key gets a new statement.
    probe := 'sluice_visible_' || relid::oid || '_' || left(md5(keys::text), 16);
    IF NOT EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name = probe) THEN
        EXECUTE format(
            'PREPARE %I (jsonb) AS SELECT EXISTS (SELECT 1 FROM %s AS t WHERE (%s) = (SELECT %s FROM jsonb_populate_record(NULL::%s, $1) AS k))',
            probe,
            relid,
            (SELECT string_agg(format('t.%I', k), ', ') FROM unnest(keys) AS k),
            (SELECT string_agg(format('k.%I', k), ', ') FROM unnest(keys) AS k),
            relid);
    END IF;
    -- EXECUTE (the utility statement) takes no bound parameters: the key goes in as a quoted literal.
    probe := format('EXECUTE %I (%L::jsonb)', probe, pk);
    -- All claim sets in one go; only if a probe fails (a policy that raises for some claims) are
    -- they checked again one by one, each in its own subtransaction, so one failing claim set
    -- hides the row from itself only.
    BEGIN
        visible := sluice.visible_to_each(relid, claim_sets, probe, false);
    EXCEPTION WHEN OTHERS THEN
        visible := sluice.visible_to_each(relid, claim_sets, probe, true);
    END;
    RETURN QUERY SELECT unnest(visible);
END
$$;
COMMENT ON FUNCTION sluice.visible_to(regclass, jsonb, jsonb) IS
    'Which claim sets (0-based indexes) may SELECT the row with this primary key under RLS. For the realtime sidecar (authenticator) only.';
REVOKE ALL ON FUNCTION sluice.visible_to(regclass, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sluice.visible_to(regclass, jsonb, jsonb) TO authenticator;
