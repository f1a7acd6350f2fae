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
        INSERT INTO sluice.change_log_state AS s (singleton, pruned_through) VALUES (true, highest)
        ON CONFLICT (singleton) DO UPDATE SET pruned_through = greatest(s.pruned_through, EXCLUDED.pruned_through);
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

-- Realtime delivery: which of several subscribers may see one version of a row (the one an event
-- carries). The sidecar groups its subscribers by identical (role, claims) and asks once per event,
-- instead of once per subscriber, through sluice.policies_admit below.
--
-- The loop of sluice.policies_admit (not for direct use: it runs the statement it is given, so it
-- is as restricted as policies_admit): for each claim set (a JSON array of JWT claim objects, each
-- with a "role"), it switches to that role with those claims, exactly as a REST request would, runs
-- the probe, and returns the (0-based) indexes of the claim sets for which it said true. A claim set
-- without a role is skipped (set_config would reset to the session user), as is one whose role lacks
-- SELECT on the table.
--
-- Who may call these: only `authenticator`, the sidecar's login role. They switch roles, which only
-- works for roles the session user is a member of; a REST request (running as anon, authenticated
-- or service_role) cannot execute them, so no client can use them to probe rows under someone
-- else's claims. The SET clause makes Postgres restore `role` and `request.jwt.claims` when the
-- function returns, whatever happened inside.
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

-- The SELECT policies of a table that apply to a role, combined as Postgres combines them (the
-- permissive ones OR'ed, the restrictive ones AND'ed to that), as an expression over the table's
-- columns; 'true' where RLS does not apply to the role (RLS off, superuser, BYPASSRLS, the owner of
-- a table without FORCE ROW LEVEL SECURITY) and NULL where no permissive policy admits anything
-- (default deny) or the role does not exist. The expressions are the catalog's own (pg_get_expr,
-- as pg_dump reads them), to be evaluated with the table's name naming a row of its type.
CREATE FUNCTION sluice.select_policy_expr(relid regclass, role_name text)
RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    WITH r AS (SELECT oid, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = role_name),
    t AS (SELECT relowner, relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = relid),
    p AS (
        SELECT pol.polpermissive AS permissive, '(' || pg_get_expr(pol.polqual, pol.polrelid) || ')' AS expr
        FROM pg_policy AS pol, r
        WHERE pol.polrelid = relid AND pol.polcmd IN ('r', '*') AND pol.polqual IS NOT NULL
          AND (0::oid = ANY (pol.polroles)
               OR EXISTS (SELECT 1 FROM unnest(pol.polroles) AS pr(oid) WHERE pg_has_role(r.oid, pr.oid, 'USAGE')))
    )
    SELECT CASE
        WHEN NOT t.relrowsecurity OR r.rolsuper OR r.rolbypassrls
             OR (pg_has_role(r.oid, t.relowner, 'USAGE') AND NOT t.relforcerowsecurity) THEN 'true'
        WHEN NOT EXISTS (SELECT 1 FROM p WHERE p.permissive) THEN NULL
        ELSE '(' || (SELECT string_agg(p.expr, ' OR ' ORDER BY p.expr) FROM p WHERE p.permissive) || ')'
             || coalesce((SELECT string_agg(' AND ' || p.expr, '' ORDER BY p.expr) FROM p WHERE NOT p.permissive), '')
    END
    FROM r, t
$$;
REVOKE ALL ON FUNCTION sluice.select_policy_expr(regclass, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sluice.select_policy_expr(regclass, text) TO authenticator;

-- Which claim sets' roles and claims the table's SELECT policies admit for this version of a row:
-- the row an INSERT or UPDATE event carries, a deleted row, or the old version of an updated one.
-- The version is judged, not the table's current row: an event is delivered to whoever could read
-- the row as the event shows it, even if it has been changed or deleted since (and never to someone
-- who can read only what it became). Each role's policies are evaluated on the given row (read back
-- as the table's row type) under that role and claims, in one statement prepared per session, table
-- and policy text; a policy that fails, or cannot be evaluated on a detached row at all (a warning
-- says why), admits nothing, so an odd policy hides rows rather than leaking them.
CREATE FUNCTION sluice.policies_admit(relid regclass, version jsonb, claim_sets jsonb)
RETURNS SETOF int
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    role_name text;
    subset jsonb;
    indexes int[];
    expr text;
    probe text;
    seen int[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM sluice.collections AS c WHERE c.relid = policies_admit.relid) THEN
        RAISE EXCEPTION 'sluice: % is not tracked by Sluice', relid
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- Policies apply per role: the claim sets are checked role by role.
    FOR role_name, subset, indexes IN
        SELECT e.value ->> 'role', jsonb_agg(e.value ORDER BY e.ordinality),
               array_agg((e.ordinality - 1)::int ORDER BY e.ordinality)
        FROM jsonb_array_elements(claim_sets) WITH ORDINALITY AS e
        WHERE coalesce(e.value ->> 'role', 'none') NOT IN ('none', '')
        GROUP BY 1
    LOOP
        expr := sluice.select_policy_expr(relid, role_name);
        CONTINUE WHEN expr IS NULL;
        probe := 'sluice_admits_' || relid::oid || '_' || left(md5(expr), 16);
        IF NOT EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name = probe) THEN
            BEGIN
                EXECUTE format(
                    'PREPARE %I (jsonb) AS SELECT EXISTS (SELECT 1 FROM jsonb_populate_record(NULL::%s, $1) AS %I WHERE %s)',
                    probe, relid, (SELECT c.relname FROM pg_class AS c WHERE c.oid = relid), expr);
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'sluice: the SELECT policies of % for role % cannot be evaluated on a row version: %',
                    relid, role_name, SQLERRM;
                CONTINUE;
            END;
        END IF;
        probe := format('EXECUTE %I (%L::jsonb)', probe, version);
        BEGIN
            seen := sluice.visible_to_each(relid, subset, probe, false);
        EXCEPTION WHEN OTHERS THEN
            seen := sluice.visible_to_each(relid, subset, probe, true);
        END;
        RETURN QUERY SELECT indexes[s + 1] FROM unnest(seen) AS s;
    END LOOP;
END
$$;
COMMENT ON FUNCTION sluice.policies_admit(regclass, jsonb, jsonb) IS
    'Which claim sets (0-based indexes) the table''s SELECT policies admit for this version of a row. For the realtime sidecar (authenticator) only.';
REVOKE ALL ON FUNCTION sluice.policies_admit(regclass, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sluice.policies_admit(regclass, jsonb, jsonb) TO authenticator;
