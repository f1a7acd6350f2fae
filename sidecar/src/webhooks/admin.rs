//! The SQL behind `/admin/v1/webhooks` (routes in `http::webhooks`): each operation is a call of
//! the `sluice.*_webhook` functions, run as service_role in the request's transaction, with the
//! request's JSON body as one bound `jsonb` parameter. A webhook that does not exist is answered 404
//! (`sluice.raise_error` with PT404).

/// Fails with PT404 unless the webhook named `$1` exists.
pub(crate) const EXISTS: &str = "\
    SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM sluice.webhooks WHERE name = $1::text) \
                THEN sluice.raise_error('PT404', format('there is no webhook named %s', quote_literal($1::text))) END";

/// The definitions (with each cursor's position), as a JSON array; `$1` a name or NULL for all.
pub(crate) const LIST: &str = "\
    SELECT coalesce(jsonb_agg(jsonb_build_object( \
        'name', w.name, 'target', w.target, \
        'tables', (SELECT jsonb_agg(t::text) FROM unnest(w.tables) AS t), \
        'events', w.events, 'headers', w.headers, 'filter', w.filter, \
        'timeout', w.timeout::text, 'max_attempts', w.max_attempts, \
        'retry_delay', w.retry_delay::text, 'on_dead', w.on_dead, \
        'active', w.active, 'disabled_reason', w.disabled_reason, 'position', c.position, \
        'created_at', w.created_at, 'updated_at', w.updated_at) ORDER BY w.name), '[]')::text \
    FROM sluice.webhooks w JOIN sluice.webhook_cursors c ON c.webhook_id = w.id \
    WHERE $1::text IS NULL OR w.name = $1::text";

/// `tables` of a body: an array of names, or one name.
const TABLES: &str = "ARRAY(SELECT t::regclass FROM jsonb_array_elements_text( \
    CASE jsonb_typeof($1::jsonb -> 'tables') WHEN 'array' THEN $1::jsonb -> 'tables' \
    ELSE jsonb_build_array($1::jsonb -> 'tables') END) AS t)";
const EVENTS: &str = "ARRAY(SELECT jsonb_array_elements_text($1::jsonb -> 'events'))";

/// Creates a webhook from the body `$1`; returns `{name, secret}`.
pub(crate) fn create() -> String {
    format!(
        "SELECT jsonb_build_object('name', $1::jsonb ->> 'name', 'secret', sluice.create_webhook( \
            name => $1::jsonb ->> 'name', \
            target => $1::jsonb ->> 'target', \
            tables => CASE WHEN $1::jsonb ? 'tables' THEN {TABLES} END, \
            events => CASE WHEN $1::jsonb ? 'events' THEN {EVENTS} ELSE '{{INSERT,UPDATE,DELETE}}' END, \
            secret => $1::jsonb ->> 'secret', \
            headers => coalesce($1::jsonb -> 'headers', '{{}}'), \
            filter => $1::jsonb ->> 'filter', \
            timeout => coalesce(($1::jsonb ->> 'timeout')::interval, '10 s'), \
            max_attempts => coalesce(($1::jsonb ->> 'max_attempts')::int, 10), \
            retry_delay => coalesce(($1::jsonb ->> 'retry_delay')::interval, '1 s'), \
            on_dead => coalesce($1::jsonb ->> 'on_dead', 'continue')))::text"
    )
}

/// Changes the webhook `$2` as the body `$1` says; `"active": true/false` enables or disables it.
pub(crate) fn alter() -> String {
    format!(
        "SELECT sluice.alter_webhook( \
            name => $2::text, \
            target => $1::jsonb ->> 'target', \
            tables => CASE WHEN $1::jsonb ? 'tables' THEN {TABLES} END, \
            events => CASE WHEN $1::jsonb ? 'events' THEN {EVENTS} END, \
            headers => $1::jsonb -> 'headers', \
            filter => $1::jsonb ->> 'filter', \
            timeout => ($1::jsonb ->> 'timeout')::interval, \
            max_attempts => ($1::jsonb ->> 'max_attempts')::int, \
            retry_delay => ($1::jsonb ->> 'retry_delay')::interval, \
            on_dead => $1::jsonb ->> 'on_dead')::text, \
         CASE ($1::jsonb -> 'active') WHEN 'true' THEN sluice.enable_webhook($2::text)::text \
                                      WHEN 'false' THEN sluice.disable_webhook($2::text)::text END"
    )
}

pub(crate) const DROP: &str = "SELECT sluice.drop_webhook($1::text)::text";

/// `{"from_position": n}` (optional) in `$1`; returns `{from_position}` (null: nothing to retry).
pub(crate) const RETRY: &str = "\
    SELECT jsonb_build_object('from_position', \
        sluice.retry_webhook($2::text, ($1::jsonb ->> 'from_position')::bigint))::text";

/// `{"secret": ..., "keep_old": interval}` (both optional) in `$1`; returns `{secret}`.
pub(crate) const ROTATE: &str = "\
    SELECT jsonb_build_object('secret', sluice.rotate_webhook_secret($2::text, $1::jsonb ->> 'secret', \
        coalesce(($1::jsonb ->> 'keep_old')::interval, '24 hours')))::text";

/// The latest attempts of webhook `$1`, newest first, at most `$2`.
pub(crate) const DELIVERIES: &str = "\
    SELECT coalesce(jsonb_agg(to_jsonb(d) - 'id' ORDER BY d.id DESC), '[]')::text \
    FROM (SELECT * FROM sluice.webhook_deliveries WHERE webhook = $1::text ORDER BY id DESC LIMIT $2::int) d";
