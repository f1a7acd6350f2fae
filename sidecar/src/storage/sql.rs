//! Every statement storage runs. Values are bound parameters; the only text spliced in is a sort
//! column and direction chosen from fixed lists (`SortColumn`, `Order`).

/// Run first in every storage transaction, so policies can read `storage.operation()`.
pub const SET_OPERATION: &str = "SELECT set_config('storage.operation', $1, true)";

/// A bucket's upload rules, whatever the caller's policies on storage.buckets.
pub const BUCKET_RULES: &str =
    "SELECT public, file_size_limit, allowed_mime_types FROM storage.sluice_bucket_rules($1)";

/// The owner columns: `owner_id` is the `sub` claim as text, `owner` the same when it is a uuid.
const OWNER: &str =
    "CASE WHEN $3 ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' \
     THEN $3::uuid END";

/// `$1` bucket, `$2` name, `$3` owner id, `$4` version, `$5` metadata, `$6` user metadata, `$7`
/// the new row's id (chosen by the caller, so that a plain insert needs no RETURNING: under RLS,
/// RETURNING would also require the SELECT policy, and an upload needs only INSERT).
/// An upsert returns the row's id and the version it replaced (upserts need SELECT, as in Supabase).
pub fn insert_object(upsert: bool) -> String {
    let insert = format!(
        "INSERT INTO storage.objects AS o (id, bucket_id, name, owner, owner_id, version, metadata, \
         user_metadata) VALUES ($7::text::uuid, $1, $2, {OWNER}, $3, $4, $5::jsonb, $6::jsonb)"
    );
    if upsert {
        format!(
            "WITH old AS (SELECT version FROM storage.objects WHERE bucket_id = $1 AND name = $2) \
             {insert} ON CONFLICT (bucket_id, name) DO UPDATE SET owner = excluded.owner, \
             owner_id = excluded.owner_id, version = excluded.version, metadata = excluded.metadata, \
             user_metadata = excluded.user_metadata, updated_at = now(), last_accessed_at = now() \
             RETURNING o.id, (SELECT version FROM old) AS old_version"
        )
    } else {
        insert
    }
}

/// `PUT`: replaces an existing object's bytes; same parameters as `insert_object` (`$7` unused but
/// typed, so that every mode binds the same list).
pub fn update_object() -> String {
    format!(
        "UPDATE storage.objects AS o SET owner = {OWNER}, owner_id = $3, version = $4, \
         metadata = $5::jsonb, user_metadata = $6::jsonb, updated_at = now(), last_accessed_at = now() \
         FROM (SELECT id, version FROM storage.objects WHERE bucket_id = $1 AND name = $2 FOR UPDATE) AS old \
         WHERE o.id = old.id AND $7::text::uuid IS NOT NULL RETURNING o.id, old.version AS old_version"
    )
}

/// `$1` bucket, `$2` name: what a download needs.
pub const SELECT_OBJECT: &str = "SELECT id, version, metadata, user_metadata FROM storage.objects \
     WHERE bucket_id = $1 AND name = $2";

/// `$1` bucket, `$2` names: those the caller may read.
pub const READABLE_NAMES: &str =
    "SELECT name FROM storage.objects WHERE bucket_id = $1 AND name = ANY($2)";

/// A public bucket's object, for `/object/public/...`.
pub const SELECT_PUBLIC_OBJECT: &str =
    "SELECT version, metadata FROM storage.sluice_public_object($1, $2)";

/// `/object/info/...`: the object as Supabase's info route shows it.
pub const OBJECT_INFO: &str =
    "SELECT json_build_object('id', id, 'name', name, 'version', version, \
     'bucket_id', bucket_id, 'size', (metadata ->> 'size')::bigint, \
     'content_type', metadata ->> 'mimetype', 'cache_control', metadata ->> 'cacheControl', \
     'etag', metadata ->> 'eTag', 'metadata', user_metadata, \
     'last_modified', metadata ->> 'lastModified', 'created_at', created_at) \
     FROM storage.objects WHERE bucket_id = $1 AND name = $2";

/// The columns of an object as Supabase's remove route returns them.
const OBJECT_JSON: &str =
    "json_build_object('name', name, 'bucket_id', bucket_id, 'owner', owner, \
     'owner_id', owner_id, 'id', id, 'updated_at', updated_at, 'created_at', created_at, \
     'last_accessed_at', last_accessed_at, 'metadata', metadata, 'version', version)";

/// `$1` bucket, `$2` names: removes those the caller may delete.
pub fn delete_objects() -> String {
    format!(
        "DELETE FROM storage.objects WHERE bucket_id = $1 AND name = ANY($2) \
         RETURNING bucket_id, name, version, {OBJECT_JSON} AS object"
    )
}

/// `$1` bucket: every object of a bucket the caller may delete.
pub const EMPTY_BUCKET: &str =
    "DELETE FROM storage.objects WHERE bucket_id = $1 RETURNING bucket_id, name, version";

/// Move: `$1`,`$2` source, `$3`,`$4` destination, `$5` new version, `$6` the source version read
/// before the bytes were copied (a concurrent change makes the move match nothing).
pub const MOVE_OBJECT: &str =
    "UPDATE storage.objects SET bucket_id = $3, name = $4, version = $5, \
     updated_at = now() WHERE bucket_id = $1 AND name = $2 AND version = $6 RETURNING id";

/// Copy: a new object with the given bytes' metadata; the parameters of `insert_object(false)`.
pub fn copy_object() -> String {
    insert_object(false)
}

/// Columns a listing may sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    Name,
    UpdatedAt,
    CreatedAt,
    LastAccessedAt,
}

impl SortColumn {
    pub fn parse(column: &str) -> Option<SortColumn> {
        Some(match column {
            "name" => SortColumn::Name,
            "updated_at" => SortColumn::UpdatedAt,
            "created_at" => SortColumn::CreatedAt,
            "last_accessed_at" => SortColumn::LastAccessedAt,
            _ => return None,
        })
    }

    fn sql(self) -> &'static str {
        match self {
            SortColumn::Name => "name",
            SortColumn::UpdatedAt => "updated_at",
            SortColumn::CreatedAt => "created_at",
            SortColumn::LastAccessedAt => "last_accessed_at",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

impl Order {
    pub fn parse(order: &str) -> Option<Order> {
        match order.to_ascii_lowercase().as_str() {
            "asc" => Some(Order::Asc),
            "desc" => Some(Order::Desc),
            _ => None,
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        }
    }
}

/// `/object/list`: the entries one level below `$2` (a prefix ending with `/`, or empty): files,
/// and folders as entries with null id and times. `$3` search (a prefix of the entry's name,
/// case-insensitive), `$4` limit, `$5` offset.
pub fn list_objects(column: SortColumn, order: Order) -> String {
    format!(
        "WITH e AS (SELECT split_part(substr(name, char_length($2) + 1), '/', 1) AS entry, \
         strpos(substr(name, char_length($2) + 1), '/') > 0 AS folder, \
         id, updated_at, created_at, last_accessed_at, metadata \
         FROM storage.objects WHERE bucket_id = $1 AND starts_with(name, $2)), \
         entries AS (SELECT DISTINCT entry AS name, NULL::uuid AS id, NULL::timestamptz AS updated_at, \
         NULL::timestamptz AS created_at, NULL::timestamptz AS last_accessed_at, NULL::jsonb AS metadata \
         FROM e WHERE folder \
         UNION ALL SELECT entry, id, updated_at, created_at, last_accessed_at, metadata FROM e WHERE NOT folder), \
         page AS (SELECT * FROM entries WHERE starts_with(lower(name), lower($3)) \
         ORDER BY {col} {dir} NULLS FIRST, name LIMIT $4::int8 OFFSET $5::int8) \
         SELECT coalesce(json_agg(page ORDER BY {col} {dir} NULLS FIRST, name), '[]') FROM page",
        col = column.sql(),
        dir = order.sql(),
    )
}

/// `/object/list-v2`: entries whose name starts with `$2` (a plain prefix, as in Supabase: `a/b`
/// matches `a/bc.png`), with `$5` grouped at the next `/` into folders (`<prefix><segment>/`);
/// sorted by `column` (name, or updated_at/created_at with the name breaking ties; a folder sorts
/// by its newest object) in byte order (`COLLATE "C"`, as Supabase sorts), after the keyset cursor
/// (`$3` the last name, `''` for none; `$6` its sort time, bound only when sorting by a time), at
/// most `$4` + 1 (the extra one tells
/// whether there is a next page). Each row: key, whether a folder, the object's JSON, the sort time.
pub fn list_objects_v2(column: SortColumn, order: Order) -> String {
    let (after, dir) = match order {
        Order::Asc => (">", "ASC"),
        Order::Desc => ("<", "DESC"),
    };
    let (keyset, sort) = match column {
        SortColumn::UpdatedAt | SortColumn::CreatedAt => (
            format!(
                "($3 = '' OR sort_at {after} $6::timestamptz \
                 OR (sort_at = $6::timestamptz AND key COLLATE \"C\" {after} $3))"
            ),
            format!("sort_at {dir}, key COLLATE \"C\" {dir}"),
        ),
        _ => (
            format!("($3 = '' OR key COLLATE \"C\" {after} $3)"),
            format!("key COLLATE \"C\" {dir}"),
        ),
    };
    let sort_column = match column {
        SortColumn::CreatedAt => "created_at",
        _ => "updated_at",
    };
    format!(
        "WITH e AS (SELECT CASE WHEN $5::bool AND strpos(substr(name, char_length($2) + 1), '/') > 0 \
         THEN $2 || split_part(substr(name, char_length($2) + 1), '/', 1) || '/' ELSE name END AS key, \
         id, name, updated_at, created_at, last_accessed_at, metadata \
         FROM storage.objects WHERE bucket_id = $1 AND starts_with(name, $2)), \
         g AS (SELECT key, bool_or(key <> name) AS folder, max({sort_column}) AS sort_at, \
         CASE WHEN bool_or(key <> name) THEN NULL ELSE json_build_object('id', min(id::text), \
         'name', key, 'key', key, 'updated_at', max(updated_at), 'created_at', max(created_at), \
         'last_accessed_at', max(last_accessed_at), 'metadata', (array_agg(metadata))[1]) END AS object \
         FROM e GROUP BY key) \
         SELECT key, folder, object, sort_at FROM g WHERE {keyset} ORDER BY {sort} LIMIT $4::int8 + 1"
    )
}

/// `/object/info/public/...`: the object of a public bucket, whatever the policies (run as
/// service_role; the bucket must be public), as `OBJECT_INFO` shows it.
pub const PUBLIC_OBJECT_INFO: &str =
    "SELECT json_build_object('id', o.id, 'name', o.name, 'version', o.version, \
     'bucket_id', o.bucket_id, 'size', (o.metadata ->> 'size')::bigint, \
     'content_type', o.metadata ->> 'mimetype', 'cache_control', o.metadata ->> 'cacheControl', \
     'etag', o.metadata ->> 'eTag', 'metadata', o.user_metadata, \
     'last_modified', o.metadata ->> 'lastModified', 'created_at', o.created_at) \
     FROM storage.objects o JOIN storage.buckets b ON b.id = o.bucket_id \
     WHERE b.public AND o.bucket_id = $1 AND o.name = $2";

/// The bucket as Supabase's bucket routes show it.
const BUCKET_JSON: &str =
    "json_build_object('id', id, 'name', name, 'owner', coalesce(owner_id, ''), \
     'public', public, 'type', 'STANDARD', 'file_size_limit', file_size_limit, \
     'allowed_mime_types', allowed_mime_types, 'created_at', created_at, 'updated_at', updated_at)";

/// `$1` limit, `$2` offset, `$3` search (a prefix of the name, case-insensitive).
pub fn list_buckets(column: SortColumn, order: Order) -> String {
    let column = match column {
        SortColumn::LastAccessedAt => "name",
        column => column.sql(),
    };
    format!(
        "SELECT coalesce(json_agg({BUCKET_JSON} ORDER BY {column} {dir}), '[]') FROM \
         (SELECT * FROM storage.buckets WHERE starts_with(lower(name), lower($3)) \
         ORDER BY {column} {dir} LIMIT $1::int8 OFFSET $2::int8) AS b",
        dir = order.sql()
    )
}

pub fn get_bucket() -> String {
    format!("SELECT {BUCKET_JSON} FROM storage.buckets WHERE id = $1")
}

/// `$1` id, `$2` name, `$3` owner id, `$4` public, `$5` size limit, `$6` allowed types.
pub fn create_bucket() -> String {
    format!(
        "INSERT INTO storage.buckets (id, name, owner, owner_id, public, file_size_limit, \
         allowed_mime_types) VALUES ($1, $2, {OWNER}, $3, $4, $5, $6) RETURNING name"
    )
}

/// `$1` id; `$2` public, `$3` size limit, `$4` allowed types, each applied when given (`$5`,
/// `$6`, `$7` say which were).
pub const UPDATE_BUCKET: &str = "UPDATE storage.buckets SET \
     public = CASE WHEN $5 THEN $2 ELSE public END, \
     file_size_limit = CASE WHEN $6 THEN $3 ELSE file_size_limit END, \
     allowed_mime_types = CASE WHEN $7 THEN $4 ELSE allowed_mime_types END, \
     updated_at = now() WHERE id = $1 RETURNING id";

pub const BUCKET_VISIBLE: &str = "SELECT id FROM storage.buckets WHERE id = $1";

pub const DELETE_BUCKET: &str = "DELETE FROM storage.buckets WHERE id = $1 RETURNING id";

/// Single-use signed uploads: `$1` token id, `$2` expiry (epoch seconds).
pub const USE_UPLOAD_TOKEN: &str =
    "INSERT INTO storage.sluice_used_upload_tokens (token_id, expires_at) \
     VALUES ($1::text::uuid, to_timestamp($2::float8))";

/// One page of the sweep: which of the listed keys (`$1`, with their parts: `$2` bucket, `$3` name,
/// `$4` version) a row names: an object's version, or a part of the resumable upload `$5/<id>/...`
/// in progress. Each key is one index lookup, so a pass reads as many rows as it lists keys.
pub const LIVE_KEYS: &str = "SELECT k.key \
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS k(key, bucket, name, version) \
     WHERE EXISTS (SELECT 1 FROM storage.objects o \
                   WHERE o.bucket_id = k.bucket AND o.name = k.name AND o.version = k.version) \
        OR (k.bucket = $5 \
            AND split_part(k.name, '/', 1) ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' \
            AND EXISTS (SELECT 1 FROM storage.sluice_uploads u \
                        WHERE u.id = split_part(k.name, '/', 1)::uuid))";

/// S3 multipart uploads untouched for `$1` seconds, after the keyset cursor (`$2` touched_at, `$3`
/// upload id), at most `$4`: run as the sidecar's login role, the only one that reaches the table.
pub const STALE_MULTIPARTS: &str = "SELECT upload_id, key, touched_at \
     FROM storage.sluice_multipart_uploads \
     WHERE touched_at < now() - make_interval(secs => $1) AND (touched_at, upload_id) > ($2, $3) \
     ORDER BY touched_at, upload_id LIMIT $4";

/// Resumable uploads (`resumable`), all as service_role after the sidecar's own checks.
pub const CREATE_RESUMABLE: &str =
    "INSERT INTO storage.sluice_uploads (id, bucket_id, name, role, \
     owner_id, upload_length, upsert, content_type, cache_control, user_metadata) \
     VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

pub const SELECT_RESUMABLE: &str = "SELECT bucket_id, name, role, owner_id, upload_length, \
     upload_offset, parts, upsert, content_type, cache_control, user_metadata \
     FROM storage.sluice_uploads WHERE id = $1::text::uuid";

/// `$1` id, `$2` the offset the PATCH started from, `$3` the new offset: moves only if no other
/// PATCH moved it meanwhile.
pub const ADVANCE_RESUMABLE: &str = "UPDATE storage.sluice_uploads SET upload_offset = $3, \
     parts = parts + 1 WHERE id = $1::text::uuid AND upload_offset = $2 RETURNING id";

pub const DELETE_RESUMABLE: &str = "DELETE FROM storage.sluice_uploads WHERE id = $1::text::uuid";

/// Resumable uploads expire a day after they began (as Supabase's do); the sweep then removes
/// their parts. Used upload tokens are forgotten once they have expired (they are refused as
/// expired from then on).
pub const EXPIRE_RESUMABLES: &str = "WITH tokens AS (DELETE FROM storage.sluice_used_upload_tokens \
     WHERE expires_at < now()) \
     DELETE FROM storage.sluice_uploads WHERE created_at < now() - interval '24 hours' RETURNING id";
