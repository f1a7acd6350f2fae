// Realtime benchmark client (run by bench/realtime.sh): commit-to-socket latency at 1/100/1000
// subscribers with RLS off and on, delivered messages per second at saturation, and the sidecar's RSS
// with 10,000 idle sockets. Raw Phoenix frames (vsn 1.0.0) over `ws`, writes over `pg`.
import WebSocket from 'ws';
import pg from 'pg';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const { SLUICE_WS, DATABASE_URL, SLUICE_JWT_SECRET, SIDECAR_PID } = process.env;
const SUBSCRIBERS = (process.env.SUBSCRIBERS ?? '1 100 1000').split(' ').map(Number);
const EVENTS = Number(process.env.EVENTS ?? 200);
const IDLE = Number(process.env.IDLE ?? 10000);
const SATURATION_ROWS = Number(process.env.SATURATION_ROWS ?? 20000);

const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
function sign(claims) {
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ iat: now, exp: now + 86400, ...claims })}`;
  return `${body}.${createHmac('sha256', SLUICE_JWT_SECRET).update(body).digest('base64url')}`;
}
const uuid = (i) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
const anon = sign({ role: 'anon' });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A socket joined to postgres_changes of `table` as user `i`; `onChange(id, now)` per event. */
function subscriber(table, i, onChange) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${SLUICE_WS}/realtime/v1/websocket?vsn=1.0.0&apikey=${anon}`);
    ws.on('error', reject);
    ws.on('open', () => {
      ws.send(JSON.stringify({
        join_ref: '1', ref: '1', topic: `realtime:${table}-${i}`, event: 'phx_join',
        payload: {
          access_token: sign({ role: 'authenticated', sub: uuid(i) }),
          config: { postgres_changes: table ? [{ event: 'INSERT', schema: 'public', table }] : [] },
        },
      }));
    });
    ws.on('message', (raw) => {
      const now = performance.now();
      const text = raw.toString();
      if (text.includes('"phx_reply"')) {
        if (text.includes('"ok"')) resolve(ws); else reject(new Error(text));
        return;
      }
      // The row id without parsing the whole frame: the client must not be the bottleneck.
      const m = /"record":\{[^}]*?"id":(\d+)/.exec(text);
      if (m) onChange(Number(m[1]), now);
    });
  });
}

async function openMany(n, make) {
  const sockets = [];
  for (let i = 0; i < n; i += 200) {
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(200, n - i) }, (_, k) => make(i + k)))));
  }
  return sockets;
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${SIDECAR_PID}/status`, 'utf8'))[1]) / 1024;

const db = new pg.Client({ connectionString: DATABASE_URL });
await db.connect();
// Another client may have run first on these tables.
let nextId = Number((await db.query(
  'SELECT greatest((SELECT coalesce(max(id), 0) FROM bench_open), (SELECT coalesce(max(id), 0) FROM bench_rls)) + 1 AS id',
)).rows[0].id);

async function latency(n, rls) {
  const table = rls ? 'bench_rls' : 'bench_open';
  const sent = new Map();
  const samples = [];
  const sockets = await openMany(n, (i) => subscriber(table, i, (id, now) => {
    const t0 = sent.get(id);
    if (t0 !== undefined) samples.push(now - t0);
  }));
  await sleep(500);
  const expected = rls ? EVENTS : EVENTS * n;
  for (let k = 0; k < EVENTS; k++) {
    const id = nextId++;
    // With RLS the row belongs to one subscriber, who alone may see it; every subscriber is a
    // distinct user, so every event is checked for n claim sets.
    const owner = uuid(rls ? k % n : 0);
    sent.set(id, performance.now());
    await db.query(`INSERT INTO ${table} (id, owner) VALUES ($1, $2)`, [id, owner]);
    // Latency is measured unsaturated: about 20,000 deliveries per second at most, which one
    // Node client can read, and enough time for the RLS check of the largest group.
    await sleep(Math.max(10, n / 20, rls ? n / 20 : 0));
  }
  const deadline = Date.now() + 30000;
  while (samples.length < expected && Date.now() < deadline) await sleep(20);
  sockets.forEach((ws) => ws.terminate());
  samples.sort((a, b) => a - b);
  return { n, rls, delivered: `${samples.length}/${expected}`, p50: pct(samples, 0.5), p95: pct(samples, 0.95), p99: pct(samples, 0.99) };
}

async function saturation(n) {
  let received = 0;
  let last = 0;
  let cut = 0;
  const sockets = await openMany(n, (i) => subscriber('bench_open', i, (_, now) => { received++; last = now; }));
  sockets.forEach((ws) => ws.on('close', (code) => { if (code === 1008) cut++; }));
  await sleep(500);
  const start = performance.now();
  const first = nextId;
  // Closed loop: at most two batches (2,000 events per socket, under the 4,096-frame queue) in
  // flight, so the pipeline runs flat out without the client being cut off.
  for (let done = 0; done < SATURATION_ROWS; done += 1000) {
    while (received < (done - 1000) * n && cut === 0) await sleep(1);
    await db.query('INSERT INTO bench_open (id, owner) SELECT g, $3 FROM generate_series($1::int, $2::int) g',
      [first + done, first + done + 999, uuid(0)]);
  }
  nextId += SATURATION_ROWS;
  const expected = SATURATION_ROWS * n;
  const deadline = Date.now() + 120000;
  while (received < expected && Date.now() < deadline) await sleep(50);
  sockets.forEach((ws) => ws.terminate());
  return { n, rows: SATURATION_ROWS, delivered: `${received}/${expected}`, cut, msgsPerSec: Math.round(received / ((last - start) / 1000)) };
}

async function idle(n) {
  const before = rss();
  const sockets = await openMany(n, (i) => subscriber('bench_open', i, () => {}));
  await sleep(2000);
  const after = rss();
  sockets.forEach((ws) => ws.terminate());
  return { sockets: n, rssBeforeMB: before.toFixed(1), rssWithSocketsMB: after.toFixed(1) };
}

// Memory first, on a sidecar that has not yet buffered anything.
const m = await idle(IDLE);
console.log(`idle: ${m.sockets} sockets joined to a postgres_changes channel: sidecar RSS ${m.rssBeforeMB} MB before, ${m.rssWithSocketsMB} MB with them`);
const fmt = (v) => (typeof v === 'number' ? v.toFixed(2) : v);
console.log('latency (ms, from just before the INSERT is sent until the event is read by the client):');
console.log('subscribers | RLS | delivered | p50 | p95 | p99');
for (const rls of [false, true]) {
  for (const n of SUBSCRIBERS) {
    const r = await latency(n, rls);
    console.log(`${r.n} | ${r.rls ? 'on' : 'off'} | ${r.delivered} | ${fmt(r.p50)} | ${fmt(r.p95)} | ${fmt(r.p99)}`);
  }
}
const s = await saturation(100);
console.log(`saturation: ${s.rows} rows inserted in batches of 1000 (at most two in flight), ${s.n} subscribers: delivered ${s.delivered} at ${s.msgsPerSec} msgs/s; ${s.cut} subscribers cut off as too slow`);
await db.end();
