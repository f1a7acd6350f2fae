// The local OpenID provider (npm `oidc-provider`, its development login and consent pages) and a
// scripted browser, shared by auth_oauth.test.mjs and auth_link.test.mjs. Importing this module
// starts the provider on SLUICE_JS_OIDC_PORT (each test file runs in its own process) with two
// clients: `sluice` (the sidecar's `keycloak` provider) and `sluice2` (`oidc2`).
import { after } from 'node:test';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';
import { url } from './support.mjs';

export const port = Number(process.env.SLUICE_JS_OIDC_PORT);
export const issuer = `http://127.0.0.1:${port}`;
export const site = 'http://127.0.0.1:3000';
export const callback = `${url}/auth/v1/callback`;
export const emailOf = (login) => `${login}@oidc.test`;

export const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'sluice',
      client_secret: 'sluice-oidc-secret',
      redirect_uris: [callback, `${site}/id-token`],
      response_types: ['code'],
      grant_types: ['authorization_code'],
    },
    {
      client_id: 'sluice2',
      client_secret: 'sluice2-oidc-secret',
      redirect_uris: [callback],
      response_types: ['code'],
      grant_types: ['authorization_code'],
    },
  ],
  // Any login name is an account whose email the provider has verified.
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return { sub, email: emailOf(sub), email_verified: true, name: `User ${sub}` };
      },
    };
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // The claims in the ID token too, for signInWithIdToken.
  conformIdTokenClaims: false,
  cookies: { keys: ['sluice-js-test-cookie-key'] },
  features: { devInteractions: { enabled: true } },
});
const server = createServer(provider.callback()).listen(port, '127.0.0.1');
after(() => server.close());

/** A browser's cookies, by host; paths are ignored (each flow runs one step at a time). */
export class Jar {
  constructor() {
    this.hosts = new Map();
  }
  header(target) {
    const cookies = this.hosts.get(new URL(target).host) ?? new Map();
    return [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  take(target, response) {
    const host = new URL(target).host;
    const cookies = this.hosts.get(host) ?? new Map();
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const [name, value] = pair.split('=');
      if (attributes.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '') cookies.delete(name.trim());
      else cookies.set(name.trim(), value.trim());
    }
    this.hosts.set(host, cookies);
  }
}

/**
 * Follows `start` as a browser would (manual redirects, the jar's cookies), logging in as `login`
 * and consenting on the provider's pages, until the browser leaves for the site (returned as a
 * URL) or, with `stopAt`, reaches a URL starting with it (returned unfetched).
 */
export async function browse(start, jar, login, stopAt = null) {
  let target = start;
  let init = { method: 'GET' };
  for (let i = 0; i < 25; i += 1) {
    if (target.startsWith(site) || (stopAt && target.startsWith(stopAt))) return new URL(target);
    const response = await fetch(target, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers ?? {}), cookie: jar.header(target) },
    });
    jar.take(target, response);
    if (response.status >= 300 && response.status < 400) {
      target = new URL(response.headers.get('location'), target).href;
      init = { method: 'GET' };
      continue;
    }
    const body = await response.text();
    const prompt = /name="prompt" value="(\w+)"/.exec(body)?.[1];
    if (response.status === 200 && new URL(target).pathname.startsWith('/interaction/') && prompt) {
      const form = prompt === 'login' ? { prompt, login, password: 'any' } : { prompt };
      init = {
        method: 'POST',
        body: new URLSearchParams(form).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      };
      continue;
    }
    throw new Error(`${target} answered ${response.status}: ${body.slice(0, 300)}`);
  }
  throw new Error('too many redirects');
}

export const fragmentOf = (location) => new URLSearchParams(location.hash.slice(1));

