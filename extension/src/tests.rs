//! Tests run by `cargo pgrx test` against a real Postgres with Sluice preloaded.
//! `#[pg_test]`s run inside one transaction that is rolled back; the `#[test]`s further down
//! open real client connections, because commit ordering needs separate transactions.

use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use super::*;
    use serde_json::json;

    const USER_A: &str = "0b6c1f3e-2d4f-4c47-9a0e-5d4b0e8f9a11";
    const USER_B: &str = "7f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b";

    fn set_claims(claims: &str) {
        Spi::run_with_args(
            "SELECT set_config('request.jwt.claims', $1, true)",
            &[claims.into()],
        )
        .unwrap();
    }

    #[pg_test]
    fn server_ready() {}

    const RUN_REQUEST_SIGNATURE: &str =
        "sluice.run_request(text, text, text, text, text, bool, text, text, text[])";

    #[pg_test]
    fn run_request_runs_the_statement_as_the_role_with_the_claims() {
        let row = Spi::get_one::<Vec<Option<String>>>(&format!(
            "SELECT sluice.run_request('anon', '{{\"sub\": \"{USER_A}\"}}', 'GET', '/rest/v1/x', \
             '{{\"x-a\": \"1\"}}', true, '', \
             'SELECT current_user::text, auth.uid(), $1::text::int + 1, NULL::text, \
              current_setting(''transaction_read_only''), current_setting(''request.headers'')', \
             ARRAY['41'])"
        ))
        .unwrap()
        .unwrap();
        let expected = [
            Some("anon"),
            Some(USER_A),
            Some("42"),
            None,
            Some("on"),
            Some(r#"{"x-a": "1"}"#),
        ];
        assert_eq!(row, expected.map(|v| v.map(str::to_owned)));
    }

    #[pg_test]
    fn only_authenticator_may_call_run_request() {
        for (role, allowed) in [
            ("authenticator", true),
            ("anon", false),
            ("authenticated", false),
            ("service_role", false),
        ] {
            let may = Spi::get_one_with_args::<bool>(
                "SELECT has_function_privilege($1, $2, 'EXECUTE')",
                &[role.into(), RUN_REQUEST_SIGNATURE.into()],
            )
            .unwrap();
            assert_eq!(may, Some(allowed), "{role}");
        }
    }

    #[pg_test]
    fn run_request_keeps_a_bounded_number_of_plans() {
        let me = Spi::get_one::<String>("SELECT current_user::text")
            .unwrap()
            .unwrap();
        for i in 0..300 {
            let value = Spi::get_one_with_args::<Vec<Option<String>>>(
                "SELECT sluice.run_request($1, '{}', 'GET', '/', '{}', true, '', $2, '{}')",
                &[me.as_str().into(), format!("SELECT {i}::text").into()],
            )
            .unwrap()
            .unwrap();
            assert_eq!(value, vec![Some(i.to_string())]);
        }
        assert_eq!(crate::plan_cache::usage().0, 256);
    }

    /// Bytes of this backend's plan contexts (kept `CachedPlanSource`s with their queries, and
    /// generic `CachedPlan`s), as `pg_backend_memory_contexts` reports them.
    fn plan_context_bytes() -> i64 {
        Spi::get_one::<i64>(
            "SELECT coalesce(sum(total_bytes), 0)::int8 FROM pg_backend_memory_contexts \
             WHERE name IN ('CachedPlanSource', 'CachedPlanQuery', 'CachedPlan')",
        )
        .unwrap()
        .unwrap()
    }

    /// `SELECT count(*)` over three rows with `filters` conditions that all hold, each offset by
    /// `shape` so that different shapes are different SQL texts; run through `run_request` as the
    /// test's own user (a superuser may switch to itself), it answers "3".
    fn many_filters(shape: usize, filters: usize) -> String {
        let filters = (0..filters)
            .map(|k| format!("g <> $1::text::int + {}", shape * 10_000 + k))
            .collect::<Vec<_>>()
            .join(" AND ");
        format!("SELECT count(*)::text FROM generate_series(1, 3) g WHERE {filters}")
    }

    fn run_as_me(sql: &str) -> Vec<Option<String>> {
        Spi::get_one_with_args::<Vec<Option<String>>>(
            "SELECT sluice.run_request(current_user::text, '{}', 'GET', '/', '{}', true, '', $1, ARRAY['-1000000'])",
            &[sql.into()],
        )
        .unwrap()
        .unwrap()
    }

    #[pg_test]
    fn run_request_keeps_plans_within_a_memory_budget() {
        use crate::plan_cache::{BUDGET_BYTES, PLAN_LIMIT_BYTES};
        let before = plan_context_bytes();
        let mut largest_kept = 0;
        // Shapes of a few hundred kB each (a request with many filters), all distinct: kept
        // without a memory bound, 80 of them would hold far more than the budget.
        for shape in 0..80 {
            let sql = many_filters(shape, 400);
            for _ in 0..2 {
                assert_eq!(run_as_me(&sql), vec![Some("3".to_owned())]);
            }
            largest_kept = largest_kept.max(crate::plan_cache::usage().1);
        }
        let grown = plan_context_bytes() - before;
        let (kept, kept_bytes) = crate::plan_cache::usage();
        pgrx::warning!(
            "plan cache: {kept} plans kept holding {kept_bytes} bytes (at most {largest_kept}); plan contexts grew by {grown} bytes"
        );
        assert!(kept > 0 && kept < 80, "{kept} plans kept");
        assert!(largest_kept <= BUDGET_BYTES, "{largest_kept} bytes kept");
        // What the backend really holds: the kept plans, plus at most the last request's plan
        // before it is measured again.
        assert!(
            grown < (BUDGET_BYTES + PLAN_LIMIT_BYTES) as i64,
            "plan memory grew by {grown} bytes"
        );
    }

    #[pg_test]
    fn a_plan_too_big_to_keep_is_used_and_not_kept() {
        assert_eq!(
            run_as_me(&many_filters(0, 6000)),
            vec![Some("3".to_owned())]
        );
        assert_eq!(crate::plan_cache::usage().0, 0, "the big plan was kept");
    }

    #[pg_test]
    fn requests_run_without_jit_unless_enabled() {
        let me = Spi::get_one::<String>("SELECT current_user::text")
            .unwrap()
            .unwrap();
        let jit_in_request = || {
            Spi::get_one_with_args::<Vec<Option<String>>>(
                "SELECT sluice.run_request($1, '{}', 'GET', '/', '{}', true, '', 'SELECT current_setting(''jit'')', '{}')",
                &[me.as_str().into()],
            )
            .unwrap()
            .unwrap()
        };
        Spi::run("SET LOCAL jit = on").unwrap();
        assert_eq!(jit_in_request(), vec![Some("off".to_owned())]);
        Spi::run("SET LOCAL jit = on; SET LOCAL sluice.request_jit = on").unwrap();
        assert_eq!(jit_in_request(), vec![Some("on".to_owned())]);
    }

    #[test]
    fn no_error_of_the_extension_is_an_internal_error() {
        use pgrx::spi::SpiError;
        let spi = || SpiError::NoTupleTable;
        let codes = [
            crate::capture::CaptureError::Prepare(spi()).sqlstate(),
            crate::capture::CaptureError::Record(spi()).sqlstate(),
            crate::capture::CaptureError::TruncateHistory(spi()).sqlstate(),
            crate::capture::CaptureError::Trigger(pgrx::PgTriggerError::NotTrigger).sqlstate(),
            crate::changelog::NumberingError::Prepare(spi()).sqlstate(),
            crate::changelog::NumberingError::Lock(spi()).sqlstate(),
            crate::changelog::NumberingError::Read(spi()).sqlstate(),
            crate::changelog::NumberingError::Number(spi()).sqlstate(),
            crate::changelog::NumberingError::Notify(spi()).sqlstate(),
            crate::registry::RegistryError::ReadDefinition(spi()).sqlstate(),
            crate::registry::RegistryError::WriteCollections(spi()).sqlstate(),
            crate::history::HistoryError::Read(spi()).sqlstate(),
            crate::history::HistoryError::Restore(spi()).sqlstate(),
            crate::request::RequestError::NulInSetting.sqlstate(),
            crate::request::RequestError::Prepare(spi()).sqlstate(),
            crate::request::RequestError::Run(spi()).sqlstate(),
            crate::request::RequestError::NullArgument(0).sqlstate(),
            crate::request::RequestError::NotAuthenticator.sqlstate(),
            crate::request::RequestError::NotOneSelect.sqlstate(),
        ];
        for code in codes {
            assert_ne!(code, PgSqlErrorCode::ERRCODE_INTERNAL_ERROR);
        }
    }

    #[test]
    fn claims_must_be_a_json_object() {
        use crate::claims;
        assert_eq!(claims::parse_claims("  "), None);
        assert_eq!(claims::parse_claims("not json"), None);
        assert_eq!(claims::parse_claims("[1,2]"), None);
        assert_eq!(claims::parse_claims("\"sub\""), None);
        let parsed = claims::parse_claims(r#"{"sub": "x"}"#).unwrap();
        assert_eq!(claims::claim_str(Some(&parsed), "sub"), Some("x"));
        assert_eq!(
            claims::uid_from(Some(&parsed)),
            None,
            "a non-uuid sub is no user id"
        );
    }

    #[pg_test]
    fn helpers_read_the_request_claims() {
        set_claims(&json!({"sub": USER_A, "role": "authenticated", "email": "a@example.com", "aal": "aal1"}).to_string());
        assert_eq!(
            Spi::get_one::<String>("SELECT auth.uid()::text").unwrap(),
            Some(USER_A.into())
        );
        assert_eq!(
            Spi::get_one::<String>("SELECT auth.role()").unwrap(),
            Some("authenticated".into())
        );
        assert_eq!(
            Spi::get_one::<String>("SELECT auth.email()").unwrap(),
            Some("a@example.com".into())
        );
        assert_eq!(
            Spi::get_one::<String>("SELECT auth.jwt()->>'aal'").unwrap(),
            Some("aal1".into())
        );
        // A new value in the same transaction is read, not a cached one.
        set_claims(&json!({"sub": USER_B}).to_string());
        assert_eq!(
            Spi::get_one::<String>("SELECT auth.uid()::text").unwrap(),
            Some(USER_B.into())
        );
        assert_eq!(Spi::get_one::<String>("SELECT auth.role()").unwrap(), None);
    }

    #[pg_test]
    fn unset_empty_or_malformed_claims_read_as_null() {
        let all_null = "SELECT auth.uid() IS NULL AND auth.role() IS NULL AND auth.email() IS NULL AND auth.jwt() IS NULL";
        assert_eq!(Spi::get_one::<bool>(all_null).unwrap(), Some(true), "unset");
        for bad in [
            "",
            "{",
            "null",
            "42",
            "[]",
            r#"{"sub": 5}"#,
            r#"{"sub": "not-a-uuid"}"#,
        ] {
            set_claims(bad);
            assert_eq!(
                Spi::get_one::<bool>("SELECT auth.uid() IS NULL").unwrap(),
                Some(true),
                "{bad:?}"
            );
        }
    }

    #[pg_test]
    fn helpers_are_stable_and_parallel_safe() {
        let flags = Spi::get_one::<String>(
            "SELECT string_agg(DISTINCT provolatile::text || proparallel::text, ',') FROM pg_proc \
             WHERE pronamespace = 'auth'::regnamespace AND proname IN ('uid', 'role', 'email', 'jwt')",
        )
        .unwrap();
        assert_eq!(flags, Some("ss".into()));
    }

    #[pg_test]
    fn roles_exist_with_supabase_attributes() {
        let roles = Spi::get_one::<String>(
            "SELECT string_agg(rolname || ':' || rolcanlogin || ':' || rolbypassrls, ',' ORDER BY rolname) \
             FROM pg_roles WHERE rolname IN ('anon', 'authenticated', 'service_role')",
        )
        .unwrap();
        assert_eq!(
            roles,
            Some("anon:false:false,authenticated:false:false,service_role:false:true".into())
        );
        let member = Spi::get_one::<bool>(
            "SELECT pg_has_role('authenticator', 'anon', 'MEMBER') AND pg_has_role('authenticator', 'authenticated', 'MEMBER') \
             AND pg_has_role('authenticator', 'service_role', 'MEMBER')",
        )
        .unwrap();
        assert_eq!(member, Some(true));
    }

    fn make_owned_table() {
        Spi::run(
            "CREATE TABLE notes (id int PRIMARY KEY, owner uuid, body text);
             ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
             CREATE POLICY own_notes ON notes USING (owner = auth.uid());
             GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO authenticated;",
        )
        .unwrap();
        Spi::run_with_args(
            "INSERT INTO notes VALUES (1, $1, 'a1'), (2, $1, 'a2'), (3, $2, 'b1')",
            &[
                pgrx::Uuid::from_bytes(*uuid::Uuid::parse_str(USER_A).unwrap().as_bytes()).into(),
                pgrx::Uuid::from_bytes(*uuid::Uuid::parse_str(USER_B).unwrap().as_bytes()).into(),
            ],
        )
        .unwrap();
    }

    #[pg_test]
    fn uid_decides_rls_visibility() {
        make_owned_table();
        Spi::run("SET LOCAL ROLE authenticated").unwrap();
        set_claims(&json!({"sub": USER_A, "role": "authenticated"}).to_string());
        assert_eq!(
            Spi::get_one::<String>("SELECT string_agg(body, ',' ORDER BY id) FROM notes").unwrap(),
            Some("a1,a2".into())
        );
        set_claims(&json!({"sub": USER_B, "role": "authenticated"}).to_string());
        assert_eq!(
            Spi::get_one::<String>("SELECT string_agg(body, ',' ORDER BY id) FROM notes").unwrap(),
            Some("b1".into())
        );
        set_claims("");
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM notes").unwrap(),
            Some(0)
        );
    }

    #[pg_test(error = "sluice: table \"nokey\" has no primary key")]
    fn tracking_a_table_without_primary_key_is_refused() {
        Spi::run("CREATE TABLE nokey (a int); SELECT sluice.enable_realtime('nokey')").unwrap();
    }

    #[pg_test]
    fn enabling_is_idempotent_and_registered() {
        Spi::run("CREATE TABLE items (id int PRIMARY KEY)").unwrap();
        Spi::run("SELECT sluice.enable_realtime('items'), sluice.enable_realtime('items'), sluice.enable_history('items')").unwrap();
        let triggers = Spi::get_one::<i64>(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'items'::regclass",
        )
        .unwrap();
        assert_eq!(triggers, Some(4));
        let row = Spi::get_one::<String>("SELECT realtime || ',' || history FROM sluice.collections WHERE relid = 'items'::regclass").unwrap();
        assert_eq!(row, Some("true,true".into()));
        Spi::run("SELECT sluice.disable_realtime('items'), sluice.disable_realtime('items')")
            .unwrap();
        let triggers = Spi::get_one::<i64>(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'items'::regclass",
        )
        .unwrap();
        assert_eq!(triggers, Some(2));
        Spi::run("SELECT sluice.disable_history('items')").unwrap();
        let rows = Spi::get_one::<i64>(
            "SELECT count(*) FROM sluice.collections WHERE relid = 'items'::regclass",
        )
        .unwrap();
        assert_eq!(rows, Some(0));
    }

    #[pg_test]
    fn events_wait_unnumbered_until_commit() {
        Spi::run("CREATE TABLE things (id int PRIMARY KEY, name text); SELECT sluice.enable_realtime('things')").unwrap();
        set_claims(&json!({"sub": USER_A}).to_string());
        Spi::run(
            "INSERT INTO things VALUES (1, 'x'); UPDATE things SET name = 'y'; DELETE FROM things",
        )
        .unwrap();
        let events = Spi::get_one::<pgrx::JsonB>(
            "SELECT jsonb_agg(jsonb_build_object('op', op, 'pk', pk, 'record', record, 'old', old_record, \
                                                 'actor', actor, 'numbered', position IS NOT NULL) ORDER BY seq) \
             FROM sluice.changes WHERE xid = pg_current_xact_id()",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            events.0,
            json!([
                {"op": "INSERT", "pk": {"id": 1}, "record": {"id": 1, "name": "x"}, "old": null, "actor": USER_A, "numbered": false},
                {"op": "UPDATE", "pk": {"id": 1}, "record": {"id": 1, "name": "y"}, "old": {"id": 1, "name": "x"}, "actor": USER_A, "numbered": false},
                {"op": "DELETE", "pk": {"id": 1}, "record": null, "old": {"id": 1, "name": "y"}, "actor": USER_A, "numbered": false},
            ])
        );
    }

    #[pg_test]
    fn history_lists_versions_and_restore_adds_one() {
        Spi::run("CREATE TABLE docs (id int PRIMARY KEY, body text); SELECT sluice.enable_history('docs')").unwrap();
        Spi::run(
            "INSERT INTO docs VALUES (7, 'v1'); UPDATE docs SET body = 'v2'; DELETE FROM docs",
        )
        .unwrap();
        let versions = || {
            Spi::get_one::<String>(
                "SELECT string_agg(version || ':' || op || ':' || coalesce(record->>'body', '-'), ',' ORDER BY version) \
                 FROM sluice.history('docs', '{\"id\": 7}')",
            )
            .unwrap()
        };
        assert_eq!(
            versions(),
            Some("1:INSERT:v1,2:UPDATE:v2,3:DELETE:v2".into())
        );
        // The key is typed by the table: a string "7" names the integer key 7.
        Spi::run("SELECT sluice.restore('docs', '{\"id\": \"7\"}', 1)").unwrap();
        assert_eq!(
            Spi::get_one::<String>("SELECT body FROM docs WHERE id = 7").unwrap(),
            Some("v1".into())
        );
        assert_eq!(
            versions(),
            Some("1:INSERT:v1,2:UPDATE:v2,3:DELETE:v2,4:INSERT:v1".into())
        );
        Spi::run("SELECT sluice.restore('docs', '{\"id\": 7}', 2)").unwrap();
        assert_eq!(
            Spi::get_one::<String>("SELECT body FROM docs WHERE id = 7").unwrap(),
            Some("v2".into())
        );
        assert_eq!(
            Spi::get_one::<String>(
                "SELECT op FROM sluice.history('docs', '{\"id\": 7}') WHERE version = 5"
            )
            .unwrap(),
            Some("UPDATE".into())
        );
    }

    #[pg_test(error = "sluice: docs has no version 9 of the row {\"id\":1}")]
    fn restoring_a_missing_version_is_an_error() {
        Spi::run("CREATE TABLE docs (id int PRIMARY KEY, body text); SELECT sluice.enable_history('docs')").unwrap();
        Spi::run(
            "INSERT INTO docs VALUES (1, 'v1'); SELECT sluice.restore('docs', '{\"id\": 1}', 9)",
        )
        .unwrap();
    }

    #[pg_test]
    fn history_follows_row_level_security() {
        make_owned_table();
        Spi::run("SELECT sluice.enable_history('notes')").unwrap();
        Spi::run("UPDATE notes SET body = body || '!'").unwrap();
        Spi::run("SET LOCAL ROLE authenticated").unwrap();
        set_claims(&json!({"sub": USER_A, "role": "authenticated"}).to_string());
        let count = |id: i32| {
            Spi::get_one::<i64>(&format!(
                "SELECT count(*) FROM sluice.history('notes', '{{\"id\": {id}}}')"
            ))
            .unwrap()
        };
        assert_eq!(count(1), Some(1), "A sees the history of A's row");
        assert_eq!(count(3), Some(0), "A does not see the history of B's row");
        set_claims(&json!({"sub": USER_B, "role": "authenticated"}).to_string());
        assert_eq!(count(3), Some(1));
        assert_eq!(count(1), Some(0));
    }

    #[pg_test(error = "permission denied for table changes")]
    fn users_cannot_forge_change_events() {
        Spi::run("SET LOCAL ROLE authenticated").unwrap();
        Spi::run("INSERT INTO sluice.changes (seq, schema_name, table_name, op) VALUES (1, 'public', 'x', 'INSERT')").unwrap();
    }

    #[pg_test]
    fn primary_key_change_refreshes_the_triggers() {
        Spi::run("CREATE TABLE renamed (id int PRIMARY KEY, v int); SELECT sluice.enable_realtime('renamed')").unwrap();
        Spi::run("ALTER TABLE renamed RENAME COLUMN id TO key").unwrap();
        Spi::run("INSERT INTO renamed VALUES (1, 2)").unwrap();
        let pk = Spi::get_one::<pgrx::JsonB>("SELECT pk FROM sluice.changes WHERE xid = pg_current_xact_id() AND table_name = 'renamed'").unwrap().unwrap();
        assert_eq!(pk.0, json!({"key": 1}));
    }

    #[pg_test(
        error = "sluice: cannot remove the primary key of \"public.keyed\" while Sluice tracks it"
    )]
    fn dropping_the_primary_key_of_a_tracked_table_is_refused() {
        Spi::run("CREATE TABLE keyed (id int PRIMARY KEY); SELECT sluice.enable_history('keyed')")
            .unwrap();
        Spi::run("ALTER TABLE keyed DROP CONSTRAINT keyed_pkey").unwrap();
    }
}

#[cfg(test)]
mod committed;
#[cfg(test)]
mod reads;
#[cfg(test)]
mod request_errors;
