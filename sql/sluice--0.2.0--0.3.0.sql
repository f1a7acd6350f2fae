-- Sluice 0.2.0 -> 0.3.0: realtime judges the row version an event carries against the table's
-- SELECT policies (sluice.policies_admit) instead of probing the table's current row
-- (sluice.visible_to, dropped): a DELETE reaches only the subscribers who could read the row, and an
-- event is never judged by what the row became later. Same definitions as extension/sql/finalize.sql;
-- checked by scripts/check-upgrade.sh.
\echo Use "ALTER EXTENSION sluice UPDATE TO '0.3.0'" to load this file. \quit

DROP FUNCTION sluice.visible_to(regclass, jsonb, jsonb);

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
