-- Fixtures for the MFA client test (auth_mfa.test.mjs): a row that only an aal2 session reads.
CREATE TABLE mfa_vault (id int PRIMARY KEY, secret text NOT NULL);
ALTER TABLE mfa_vault ENABLE ROW LEVEL SECURITY;
CREATE POLICY aal2_only ON mfa_vault FOR SELECT TO authenticated
    USING (auth.jwt()->>'aal' = 'aal2');
GRANT SELECT ON mfa_vault TO authenticated;
INSERT INTO mfa_vault VALUES (1, 'the combination');
