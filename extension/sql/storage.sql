-- Sluice storage: the metadata of files, guarded by RLS, with Supabase Storage's tables and helpers.
--
-- Access model. The bytes live in a backend (a directory or an S3 bucket) that only the sidecar
-- reaches; what a request may do with a file is decided here, by a statement on storage.objects run
-- under the caller's role and claims with `storage.operation()` set. The request roles hold table
-- privileges (as in Supabase) but RLS is on and no policy is created: anon and authenticated can do
-- nothing until the database's owner writes policies (`CREATE POLICY ... ON storage.objects ...`);
-- service_role bypasses RLS. The few questions a request needs answered regardless of policies
-- (a bucket's size and type rules, whether a bucket is public) go through the SECURITY DEFINER
-- functions at the end, which reveal nothing else.

CREATE SCHEMA IF NOT EXISTS storage;
GRANT USAGE ON SCHEMA storage TO anon, authenticated, service_role;

CREATE TABLE storage.buckets (
    id text PRIMARY KEY,
    name text NOT NULL,
    -- `owner` is Supabase's deprecated uuid column; `owner_id` holds the `sub` claim as text.
    owner uuid,
    owner_id text,
    public boolean NOT NULL DEFAULT false,
    avif_autodetection boolean DEFAULT false,
    file_size_limit bigint CHECK (file_size_limit IS NULL OR file_size_limit >= 0),
    allowed_mime_types text[],
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now()
);
CREATE UNIQUE INDEX bname ON storage.buckets (name);

CREATE TABLE storage.objects (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    bucket_id text REFERENCES storage.buckets (id),
    name text,
    owner uuid,
    owner_id text,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    last_accessed_at timestamptz DEFAULT now(),
    -- eTag, size, mimetype, cacheControl, lastModified, contentLength, httpStatusCode.
    metadata jsonb,
    path_tokens text[] GENERATED ALWAYS AS (string_to_array(name, '/')) STORED,
    -- The version names the bytes in the backend (`<bucket>/<name>/<version>`): a new upload writes
    -- a new version and the row points at it only once its transaction commits.
    version text,
    user_metadata jsonb
);
CREATE UNIQUE INDEX bucketid_objname ON storage.objects (bucket_id, name);
CREATE INDEX name_prefix_search ON storage.objects (name text_pattern_ops);

-- Single-use signed upload URLs: a token's id is recorded when the upload it signs commits.
CREATE TABLE storage.sluice_used_upload_tokens (
    token_id uuid PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

ALTER TABLE storage.buckets ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.objects ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.sluice_used_upload_tokens ENABLE ROW LEVEL SECURITY;

-- Privileges as in Supabase, so that policies alone decide; with RLS on and no policy, nothing.
GRANT SELECT, INSERT, UPDATE, DELETE ON storage.buckets TO anon, authenticated, service_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON storage.objects TO anon, authenticated, service_role;
-- Only signed uploads (run as service_role) record their token.
GRANT SELECT, INSERT, DELETE ON storage.sluice_used_upload_tokens TO service_role;

-- Backups: buckets and file metadata are user data.
SELECT pg_catalog.pg_extension_config_dump('storage.buckets', '');
SELECT pg_catalog.pg_extension_config_dump('storage.objects', '');
SELECT pg_catalog.pg_extension_config_dump('storage.sluice_used_upload_tokens', '');

-- Resumable uploads (TUS): an upload's progress, so that any sidecar can continue it. Its bytes
-- are parts in the backend under `tus~uploads/<id>/`; reached by the sidecar as service_role only,
-- after it has checked that the caller is the upload's creator.
CREATE TABLE storage.sluice_uploads (
    id uuid PRIMARY KEY,
    bucket_id text NOT NULL REFERENCES storage.buckets (id) ON DELETE CASCADE,
    name text NOT NULL,
    role text NOT NULL,
    owner_id text,
    upload_length bigint NOT NULL CHECK (upload_length >= 0),
    upload_offset bigint NOT NULL DEFAULT 0 CHECK (upload_offset BETWEEN 0 AND upload_length),
    parts integer NOT NULL DEFAULT 0,
    upsert boolean NOT NULL DEFAULT false,
    content_type text NOT NULL,
    cache_control text NOT NULL,
    user_metadata jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE storage.sluice_uploads ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE ON storage.sluice_uploads TO service_role;
SELECT pg_catalog.pg_extension_config_dump('storage.sluice_uploads', '');

-- Policy helpers, with Supabase's names and meaning.
-- The folders of a name: 'a/b/c.png' -> {a,b}.
CREATE FUNCTION storage.foldername(name text)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN cardinality(p) > 1 THEN p[1:cardinality(p) - 1] ELSE '{}'::text[] END
    FROM string_to_array(name, '/') AS p
$$;

-- The last segment of a name: 'a/b/c.png' -> 'c.png'.
CREATE FUNCTION storage.filename(name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p[cardinality(p)] FROM string_to_array(name, '/') AS p
$$;

-- What follows the last dot of the file name: 'a/b/c.tar.gz' -> 'gz'. As in Supabase, a name
-- without a dot gives the whole file name.
CREATE FUNCTION storage.extension(name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT reverse(split_part(reverse(p[cardinality(p)]), '.', 1)) FROM string_to_array(name, '/') AS p
$$;

-- The operation the sidecar is performing for this request (e.g. 'storage.object.upload'), set
-- transaction-locally before the metadata statement; NULL outside a storage request.
CREATE FUNCTION storage.operation()
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT nullif(current_setting('storage.operation', true), '')
$$;

GRANT EXECUTE ON FUNCTION storage.foldername(text), storage.filename(text), storage.extension(text),
    storage.operation() TO anon, authenticated, service_role;

-- A bucket's upload rules (size limit, allowed types) and whether it is public, whatever the
-- caller's policies on storage.buckets: an upload must be checked against them even by a caller who
-- may not read the bucket's row. Reveals no more than a refused upload would.
CREATE FUNCTION storage.sluice_bucket_rules(bucket text)
RETURNS TABLE (public boolean, file_size_limit bigint, allowed_mime_types text[])
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT b.public, b.file_size_limit, b.allowed_mime_types FROM storage.buckets b WHERE b.id = bucket
$$;

-- An object of a public bucket, for `/object/public/...`: anyone may read a public bucket's files
-- (as in Supabase, public buckets skip the SELECT policy for downloads); nothing of private ones.
CREATE FUNCTION storage.sluice_public_object(bucket text, object_name text)
RETURNS TABLE (version text, metadata jsonb)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT o.version, o.metadata
    FROM storage.objects o JOIN storage.buckets b ON b.id = o.bucket_id
    WHERE b.public AND o.bucket_id = bucket AND o.name = object_name
$$;

REVOKE ALL ON FUNCTION storage.sluice_bucket_rules(text), storage.sluice_public_object(text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION storage.sluice_bucket_rules(text), storage.sluice_public_object(text, text)
    TO anon, authenticated, service_role;
