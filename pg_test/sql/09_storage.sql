-- Storage: Supabase's tables and helpers; RLS on with no policy, so the request roles see nothing
-- until a policy grants it; storage.operation() reads the request's transaction-local setting; the
-- objects can go through the change log.
SELECT c.relname, c.relrowsecurity AS rls,
       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
FROM pg_class c WHERE c.relnamespace = 'storage'::regnamespace AND c.relkind = 'r' ORDER BY 1;

SELECT storage.foldername('a/b/c.png') AS folders, storage.foldername('c.png') AS top_level,
       storage.filename('a/b/c.png') AS filename, storage.extension('a/b/c.tar.gz') AS ext,
       storage.extension('a/README') AS no_dot;

SELECT storage.operation() AS outside_a_request;
BEGIN;
SELECT set_config('storage.operation', 'storage.object.upload', true) IS NOT NULL AS set;
SELECT storage.operation() AS inside;
COMMIT;
SELECT storage.operation() AS after_commit;

INSERT INTO storage.buckets (id, name, public) VALUES ('avatars', 'avatars', false), ('pub', 'pub', true);
INSERT INTO storage.objects (bucket_id, name, owner_id, version, metadata)
VALUES ('avatars', '00000000-0000-4000-8000-000000000001/a.png', '00000000-0000-4000-8000-000000000001', 'v1', '{"size": 3}'),
       ('avatars', '00000000-0000-4000-8000-000000000002/b.png', '00000000-0000-4000-8000-000000000002', 'v1', '{"size": 4}'),
       ('pub', 'logo.png', NULL, 'v1', '{"size": 5}');
SELECT name, path_tokens FROM storage.objects ORDER BY name;

-- Unique (bucket_id, name).
INSERT INTO storage.objects (bucket_id, name) VALUES ('avatars', '00000000-0000-4000-8000-000000000001/a.png');

-- No policy: anon and authenticated see and change nothing; service_role bypasses RLS.
BEGIN;
SET LOCAL ROLE anon;
SELECT count(*) AS anon_sees FROM storage.objects;
INSERT INTO storage.objects (bucket_id, name) VALUES ('avatars', 'x');
ROLLBACK;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT count(*) AS authenticated_sees FROM storage.objects;
SELECT count(*) AS authenticated_buckets FROM storage.buckets;
ROLLBACK;
BEGIN;
SET LOCAL ROLE service_role;
SELECT count(*) AS service_role_sees FROM storage.objects;
ROLLBACK;

-- A Supabase-style policy: each user reads the files under a folder named after their id.
CREATE POLICY own_folder ON storage.objects FOR SELECT TO authenticated
    USING (bucket_id = 'avatars' AND (storage.foldername(name))[1] = auth.uid()::text);
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "00000000-0000-4000-8000-000000000001", "role": "authenticated"}', true) IS NOT NULL AS claims;
SELECT name FROM storage.objects ORDER BY name;
ROLLBACK;
DROP POLICY own_folder ON storage.objects;

-- The sidecar's lookups: a bucket's rules for anyone; a public bucket's objects, never a private one's.
BEGIN;
SET LOCAL ROLE anon;
SELECT * FROM storage.sluice_bucket_rules('avatars');
SELECT version, metadata FROM storage.sluice_public_object('pub', 'logo.png');
SELECT count(*) AS private_via_public FROM storage.sluice_public_object('avatars', '00000000-0000-4000-8000-000000000001/a.png');
ROLLBACK;

-- Tracked by the change log like any table.
SELECT sluice.enable_realtime('storage.objects');
UPDATE storage.objects SET metadata = '{"size": 6}' WHERE name = 'logo.png';
SELECT op, record ->> 'name' AS name FROM sluice.changes
WHERE schema_name = 'storage' AND table_name = 'objects';
SELECT sluice.disable_realtime('storage.objects');

-- Kept by pg_dump.
SELECT c::regclass AS dumped FROM pg_extension, unnest(extconfig) AS c
WHERE extname = 'sluice' AND c::regclass::text LIKE 'storage.%' ORDER BY 1::text;

DELETE FROM storage.objects;
DELETE FROM storage.buckets;

-- S3 multipart uploads in flight: only the sidecar's login role reaches their records, no request role.
SELECT r AS role,
       has_table_privilege(r, 'storage.sluice_multipart_uploads', 'SELECT') AS can_select,
       has_table_privilege(r, 'storage.sluice_multipart_uploads', 'INSERT') AS can_insert,
       has_table_privilege(r, 'storage.sluice_multipart_uploads', 'DELETE') AS can_delete
FROM unnest(ARRAY['anon', 'authenticated', 'service_role', 'authenticator']) AS r ORDER BY 1;
