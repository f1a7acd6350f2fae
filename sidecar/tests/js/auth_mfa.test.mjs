// MFA with TOTP through @supabase/supabase-js, unmodified: enroll (QR code, secret, URI), challenge,
// verify, getAuthenticatorAssuranceLevel, listFactors, unenroll and the admin's factor calls; codes
// come from `otpauth`, an implementation independent of the server's, reading the URI the server
// gave; and a table whose policy requires aal2 (fixtures_mfa.sql).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createClient } from '@supabase/supabase-js';
import * as OTPAuth from 'otpauth';
import { anonKey, serviceKey, url } from './support.mjs';

class NoWebSocket {
  constructor() {
    throw new Error('realtime is not used in these tests');
  }
}
const options = {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  realtime: { transport: NoWebSocket },
};
const newClient = () => createClient(url, anonKey, options);
const admin = createClient(url, serviceKey, options).auth.admin;

async function signedIn(email, password) {
  const supabase = newClient();
  const { error } = await supabase.auth.signInWithPassword({ email, password });
  assert.equal(error, null);
  return supabase;
}

async function vault(supabase) {
  const { data, error } = await supabase.from('mfa_vault').select('secret');
  assert.equal(error, null);
  return data;
}

test('TOTP: enroll, verify to aal2, a policy that requires aal2, sign in again, unenroll', async () => {
  const email = `mfa-${randomUUID()}@example.com`;
  const password = 'mfa-password-1';
  const created = await admin.createUser({ email, password, email_confirm: true });
  assert.equal(created.error, null);
  const userId = created.data.user.id;
  const supabase = await signedIn(email, password);

  let level = await supabase.auth.mfa.getAuthenticatorAssuranceLevel();
  assert.equal(level.error, null);
  assert.deepEqual([level.data.currentLevel, level.data.nextLevel], ['aal1', 'aal1']);

  const enrolled = await supabase.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'phone', issuer: 'Sluice JS' });
  assert.equal(enrolled.error, null);
  assert.equal(enrolled.data.type, 'totp');
  assert.equal(enrolled.data.friendly_name, 'phone');
  const qr = enrolled.data.totp.qr_code;
  assert.ok(qr.startsWith('data:image/svg+xml;utf-8,<?xml') && qr.includes('<svg') && qr.endsWith('</svg>'), qr.slice(0, 80));
  // The URI, read by the independent library, carries the secret the server gave.
  const totp = OTPAuth.URI.parse(enrolled.data.totp.uri);
  assert.ok(totp instanceof OTPAuth.TOTP);
  assert.equal(totp.secret.base32, enrolled.data.totp.secret);
  assert.equal(totp.issuer, 'Sluice JS');
  assert.equal(totp.label, email);
  assert.deepEqual([totp.algorithm, totp.digits, totp.period], ['SHA1', 6, 30]);
  const factorId = enrolled.data.id;

  const unverified = await supabase.auth.mfa.listFactors();
  assert.equal(unverified.data.all.length, 1);
  assert.equal(unverified.data.all[0].status, 'unverified');
  assert.equal(unverified.data.totp.length, 0, 'only verified factors are listed by type');

  const challenge = await supabase.auth.mfa.challenge({ factorId });
  assert.equal(challenge.error, null);
  assert.ok(challenge.data.expires_at > Date.now() / 1000);
  const right = totp.generate();
  const wrong = String((Number(right) + 1) % 1000000).padStart(6, '0');
  const refused = await supabase.auth.mfa.verify({ factorId, challengeId: challenge.data.id, code: wrong });
  assert.equal(refused.error?.code, 'mfa_verification_failed');
  assert.equal(refused.error?.status, 422);

  assert.deepEqual(await vault(supabase), [], 'aal1 reads nothing');
  const verified = await supabase.auth.mfa.verify({ factorId, challengeId: challenge.data.id, code: right });
  assert.equal(verified.error, null);
  level = await supabase.auth.mfa.getAuthenticatorAssuranceLevel();
  assert.deepEqual([level.data.currentLevel, level.data.nextLevel], ['aal2', 'aal2']);
  assert.deepEqual(level.data.currentAuthenticationMethods.map((m) => m.method), ['totp', 'password']);
  assert.deepEqual(await vault(supabase), [{ secret: 'the combination' }], 'aal2 reads the row');

  const factors = await supabase.auth.mfa.listFactors();
  assert.equal(factors.data.totp.length, 1);
  assert.equal(factors.data.totp[0].id, factorId);

  // The code that was just used is used up, even with a new challenge.
  const replay = await supabase.auth.mfa.challengeAndVerify({ factorId, code: right });
  assert.equal(replay.error?.code, 'mfa_verification_failed');

  // Signing in again starts at aal1 with aal2 as the next level; the policy refuses until verified.
  const again = await signedIn(email, password);
  level = await again.auth.mfa.getAuthenticatorAssuranceLevel();
  assert.deepEqual([level.data.currentLevel, level.data.nextLevel], ['aal1', 'aal2']);
  assert.deepEqual(await vault(again), []);
  const tooWeak = await again.auth.mfa.unenroll({ factorId });
  assert.equal(tooWeak.error?.code, 'insufficient_aal');

  // The admin sees and removes the factor.
  const listed = await admin.mfa.listFactors({ userId });
  assert.equal(listed.error, null);
  assert.deepEqual(listed.data.factors.map((f) => [f.id, f.status]), [[factorId, 'verified']]);
  const deleted = await admin.mfa.deleteFactor({ userId, id: factorId });
  assert.equal(deleted.error, null);
  // auth-js wraps this body once more (`_request` without a transform returns {data, error}).
  assert.equal(deleted.data.data.id, factorId);
  const none = await again.auth.mfa.listFactors();
  assert.equal(none.data.all.length, 0);
});
