// Shared set-up for the client tests: the sidecar's URL and tokens signed like Supabase's.
import { createHmac } from 'node:crypto';
import { PostgrestClient } from '@supabase/postgrest-js';

export const url = process.env.SLUICE_URL;
const secret = process.env.SLUICE_JWT_SECRET;

export const ANN = '00000000-0000-4000-8000-00000000000a';
export const BOB = '00000000-0000-4000-8000-00000000000b';

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An HS256 JWT with the given claims, valid for an hour. */
export function sign(claims, key = secret) {
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ iat: now, exp: now + 3600, ...claims })}`;
  const signature = createHmac('sha256', key).update(body).digest('base64url');
  return `${body}.${signature}`;
}

export const anonKey = sign({ role: 'anon' });
export const serviceKey = sign({ role: 'service_role' });
export const userToken = (sub) => sign({ role: 'authenticated', sub, email: `${sub}@example.com` });

/** A postgrest-js client as supabase-js builds it: apikey header plus a bearer token. */
export function client(token = anonKey) {
  return new PostgrestClient(`${url}/rest/v1`, {
    headers: { apikey: anonKey, Authorization: `Bearer ${token}` },
  });
}
