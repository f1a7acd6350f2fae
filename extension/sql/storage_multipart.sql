-- S3 multipart uploads in flight: the sidecar records an upload's id here before it sends the first
-- part and deletes the record once the upload is completed (or aborted). A sidecar killed in between
-- leaves the record, and the sweep aborts uploads not touched for longer than its grace period (the
-- sidecar touches the record every 30 seconds while it sends, so a long upload is not taken for a dead one),
-- so an interrupted upload's parts (invisible to an object listing) never stay behind. Reached only by the
-- sidecar's login role: no request role (anon, authenticated, service_role) has any privilege on it.
CREATE TABLE storage.sluice_multipart_uploads (
    upload_id text PRIMARY KEY,
    -- The backend key the parts are uploaded to (a version no row names until the upload commits).
    key text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    touched_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sluice_multipart_uploads_touched ON storage.sluice_multipart_uploads (touched_at, upload_id);
ALTER TABLE storage.sluice_multipart_uploads ENABLE ROW LEVEL SECURITY;
CREATE POLICY sluice_multipart_uploads_sidecar ON storage.sluice_multipart_uploads TO authenticator
    USING (true) WITH CHECK (true);
REVOKE ALL ON storage.sluice_multipart_uploads FROM PUBLIC;
-- authenticator is NOINHERIT (as in Supabase): it reaches the schema through its own grant.
GRANT USAGE ON SCHEMA storage TO authenticator;
GRANT SELECT, INSERT, UPDATE (touched_at), DELETE ON storage.sluice_multipart_uploads TO authenticator;
SELECT pg_catalog.pg_extension_config_dump('storage.sluice_multipart_uploads', '');
