// Shared set-up for the client tests: the sidecar's URL and tokens signed like Supabase's.
import { createHmac } from 'node:crypto';
import { createServer } from 'node:net';
import { PostgrestClient } from '@supabase/postgrest-js';

export const url = process.env.SLUICE_URL;

// A TCP port on 127.0.0.1 that is free now, for a second sidecar (as scripts/lib.sh's free_port):
// a port next to the first sidecar's lies in the ephemeral range, where an outgoing connection
// may hold it.
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
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
