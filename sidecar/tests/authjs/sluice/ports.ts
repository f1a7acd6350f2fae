// Sluice adapter (not part of auth-js's suite): the suite talks to four GoTrue servers at
// http://localhost:9999 .. :9996 with GoTrue's routes at the root. scripts/authjs-test.sh starts
// one Sluice sidecar per GoTrue instance on the ports it is allowed to use and passes the map in
// SLUICE_AUTHJS_PORTS ("9999=21711,9998=21712,..."); this rewrites each request to the matching
// sidecar's /auth/v1 prefix before it leaves the process. URLs the tests see (and assert on) are
// unchanged: only the network request is redirected.
const map = new Map<string, string>()
for (const pair of (process.env.SLUICE_AUTHJS_PORTS ?? '').split(',')) {
  const [from, to] = pair.split('=')
  if (from && to) map.set(from.trim(), to.trim())
}

const rewrite = (url: string): string => {
  const match = /^http:\/\/localhost:(\d+)(\/.*)?$/.exec(url)
  if (!match || !map.has(match[1])) return url
  return `http://127.0.0.1:${map.get(match[1])}/auth/v1${match[2] ?? '/'}`
}

const originalFetch = globalThis.fetch
globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
  if (typeof input === 'string') return originalFetch(rewrite(input), init)
  if (input instanceof URL) return originalFetch(rewrite(input.toString()), init)
  return originalFetch(new Request(rewrite(input.url), input), init)
}) as typeof fetch
