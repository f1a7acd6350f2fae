-- Storage policies as Supabase projects write them (tests/js/storage.test.mjs).
-- Buckets are listed and read by any signed-in user; only service_role creates them.
CREATE POLICY "buckets are visible" ON storage.buckets FOR SELECT TO authenticated USING (true);

-- Bucket `docs`: each user owns the folder named after their id (storage.foldername).
CREATE POLICY "docs: read own folder" ON storage.objects FOR SELECT TO authenticated
    USING (bucket_id = 'docs' AND (storage.foldername(name))[1] = auth.uid()::text);
CREATE POLICY "docs: upload to own folder" ON storage.objects FOR INSERT TO authenticated
    WITH CHECK (bucket_id = 'docs' AND (storage.foldername(name))[1] = auth.uid()::text);
CREATE POLICY "docs: update own folder" ON storage.objects FOR UPDATE TO authenticated
    USING (bucket_id = 'docs' AND (storage.foldername(name))[1] = auth.uid()::text)
    WITH CHECK (bucket_id = 'docs' AND (storage.foldername(name))[1] = auth.uid()::text);
CREATE POLICY "docs: delete own folder" ON storage.objects FOR DELETE TO authenticated
    USING (bucket_id = 'docs' AND (storage.foldername(name))[1] = auth.uid()::text);

-- Bucket `notes`: owner-based, anywhere in the bucket.
CREATE POLICY "notes: own files" ON storage.objects FOR ALL TO authenticated
    USING (bucket_id = 'notes' AND owner_id = auth.uid()::text)
    WITH CHECK (bucket_id = 'notes' AND owner_id = auth.uid()::text);

-- Which operation a policy sees: uploads to `ops` are allowed only as storage.object.upload.
CREATE POLICY "ops: operation recorded" ON storage.objects FOR INSERT TO authenticated
    WITH CHECK (bucket_id = 'ops' AND storage.operation() = 'storage.object.upload');
