// PostgREST 12 behaviours that were still missing, through @supabase/postgrest-js unmodified:
// a refused token or query string answered as JSON even while a large body is being sent; plan
// media types passed over for the next acceptable one when plans are off (a second sidecar,
// started here with plans and aggregates off); PGRST123 from that sidecar; Prefer:
// missing=default through a view applying the base table's defaults; aggregates grouped by an
// embedding's value. Fixtures: fixtures_gaps.sql.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PostgrestClient } from '@supabase/postgrest-js';
import { anonKey, client, freePort, sign, url } from './support.mjs';

const MiB = 1024 * 1024;
const forged = sign({ role: 'anon' }, 'not-the-secret-not-the-secret-not-the-secret');

/** Rows of `gap_blobs` adding up to about `bytes` of JSON. */
function blobRows(bytes, from = 1000) {
  const size = 64 * 1024;
  return Array.from({ length: Math.ceil(bytes / size) }, (_, i) => ({ id: from + i, body: 'x'.repeat(size) }));
}

async function raw(base, method, path, { token = anonKey, headers = {}, body } = {}) {
  const response = await fetch(`${base}/rest/v1${path}`, {
    method,
    headers: { apikey: anonKey, Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...headers },
    body,
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text };
}

test('a refused token with a large body reaches postgrest-js as the 401, not "fetch failed"', async () => {
  for (const bytes of [1 * MiB, 4 * MiB, 8 * MiB]) {
    const bad = await client(forged).from('gap_blobs').insert(blobRows(bytes));
    assert.equal(bad.status, 401, `${bytes}: ${JSON.stringify(bad.error)}`);
    assert.equal(bad.error.code, 'PGRST301');
    assert.equal(bad.error.message, 'No suitable key or wrong key type');
  }
  const expired = sign({ role: 'anon', exp: Math.floor(Date.now() / 1000) - 60 });
  const late = await client(expired).from('gap_blobs').upsert(blobRows(4 * MiB));
  assert.equal(late.status, 401, JSON.stringify(late.error));
  assert.equal(late.error.code, 'PGRST303');
  assert.equal(late.error.message, 'JWT expired');
  const update = await client(forged).from('gap_blobs').update({ body: 'y'.repeat(6 * MiB) }).eq('id', 1);
  assert.equal(update.status, 401, JSON.stringify(update.error));
  const call = await client(forged).rpc('gap_echo', { payload: 'z'.repeat(5 * MiB) });
  assert.equal(call.status, 401, JSON.stringify(call.error));
  assert.equal(call.error.code, 'PGRST301');

  // Nothing was written, and the same client goes on working.
  const written = await client().from('gap_blobs').insert({ id: 1, body: 'small' }).select();
  assert.equal(written.error, null);
  assert.deepEqual(written.data, [{ id: 1, body: 'small' }]);
  const { count } = await client().from('gap_blobs').select('*', { count: 'exact', head: true });
  assert.equal(count, 1);
});

test('a refused query string with a large body reaches the client as its 400', async () => {
  const select = await client().from('gap_blobs').insert(blobRows(8 * MiB)).select('id,(');
  assert.equal(select.status, 400, JSON.stringify(select.error));
  assert.equal(select.error.code, 'PGRST100');

  const inserted = await client().from('gap_blobs').insert(blobRows(8 * MiB)).filter('id', 'sideways', '1');
  assert.equal(inserted.status, 400, JSON.stringify(inserted.error));
  assert.equal(inserted.error.code, 'PGRST100');

  const filter = await client()
    .from('gap_blobs')
    .update({ body: 'y'.repeat(8 * MiB) })
    .filter('id', 'sideways', '1');
  assert.equal(filter.status, 400, JSON.stringify(filter.error));
  assert.equal(filter.error.code, 'PGRST100');

  const order = await raw(url, 'DELETE', '/gap_blobs?id=eq.1&order=id.sideways', {
    body: JSON.stringify(blobRows(2 * MiB)),
  });
  assert.equal(order.status, 400, order.text);
  assert.equal(JSON.parse(order.text).code, 'PGRST100');

  const put = await raw(url, 'PUT', '/gap_blobs?id=eq.1&limit=1', {
    body: JSON.stringify({ id: 1, body: 'w'.repeat(8 * MiB) }),
  });
  assert.equal(put.status, 400, put.text);
  assert.equal(JSON.parse(put.text).code, 'PGRST114');

  const rpc = await raw(url, 'POST', '/rpc/gap_echo?select=(', {
    body: JSON.stringify({ payload: 'z'.repeat(6 * MiB) }),
  });
  assert.equal(rpc.status, 400, rpc.text);
  assert.equal(JSON.parse(rpc.text).code, 'PGRST100');

  // Past the checks, a body over --max-body-bytes (1 MiB) is still 413, and small ones work.
  const large = await client().from('gap_blobs').insert(blobRows(4 * MiB));
  assert.equal(large.status, 413, JSON.stringify(large.error));
  const small = await client().rpc('gap_echo', { payload: 'abc' });
  assert.equal(small.data, 3);
});

// A second sidecar on the same database: plans off (no SLUICE_DB_PLAN_ENABLED) and aggregates
// off (its login role has no pgrst.db_aggregates_enabled).
let plain;
let plainUrl;
let storageRoot;

before(async () => {
  const port = await freePort();
  plainUrl = `http://127.0.0.1:${port}`;
  const database = new URL(process.env.SLUICE_JS_DATABASE_URL);
  database.username = 'sluice_js_plain';
  database.password = 'sluice_js_plain';
  const repo = fileURLToPath(new URL('../../../', import.meta.url));
  const binary = join(process.env.CARGO_TARGET_DIR ?? join(repo, 'target'), 'debug', 'sluice');
  storageRoot = mkdtempSync(join(tmpdir(), 'sluice-js-gaps-'));
  plain = spawn(binary, ['serve'], {
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: database.toString(),
      SLUICE_JWT_SECRET: process.env.SLUICE_JWT_SECRET,
      SLUICE_LISTEN: `127.0.0.1:${port}`,
      SLUICE_STORAGE_ROOT: storageRoot,
      RUST_LOG: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${plainUrl}/health`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the second sidecar did not start on ${plainUrl}`);
});

after(async () => {
  if (plain && plain.exitCode === null) {
    const exited = new Promise((resolve) => plain.once('exit', resolve));
    plain.kill('SIGTERM');
    await exited;
  }
  if (storageRoot) rmSync(storageRoot, { recursive: true, force: true });
});

const shape = ({ code, message, details, hint }) => ({ code, message, details, hint });

const plainClient = () =>
  new PostgrestClient(`${plainUrl}/rest/v1`, { headers: { apikey: anonKey, Authorization: `Bearer ${anonKey}` } });

test('plans off: a plan media type is passed over for the next one Accept names', async () => {
  const json = await raw(plainUrl, 'GET', '/gap_clients?select=id&order=id', {
    headers: { Accept: 'application/vnd.pgrst.plan+json, application/json' },
  });
  assert.equal(json.status, 200, json.text);
  assert.equal(json.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.deepEqual(JSON.parse(json.text), [{ id: 1 }, { id: 2 }, { id: 3 }]);

  // By weight: the plan first, CSV next.
  const csv = await raw(plainUrl, 'GET', '/gap_clients?select=id,name&order=id', {
    headers: { Accept: 'text/csv;q=0.5, application/vnd.pgrst.plan+text;q=1' },
  });
  assert.equal(csv.status, 200, csv.text);
  assert.match(csv.headers.get('content-type'), /^text\/csv/);
  assert.equal(csv.text, 'id,name\n1,acme\n2,acme\n3,zeta');

  const any = await raw(plainUrl, 'GET', '/gap_clients?select=id&id=eq.3', {
    headers: { Accept: 'application/vnd.pgrst.plan+json; options=analyze, */*;q=0.1' },
  });
  assert.equal(any.status, 200, any.text);
  assert.deepEqual(JSON.parse(any.text), [{ id: 3 }]);

  // Writes and calls negotiate the same way.
  const written = await raw(plainUrl, 'POST', '/gap_items', {
    headers: { Accept: 'application/vnd.pgrst.plan+json, application/json', Prefer: 'return=representation' },
    body: JSON.stringify({ id: 900, name: 'negotiated' }),
  });
  assert.equal(written.status, 201, written.text);
  assert.equal(JSON.parse(written.text)[0].name, 'negotiated');
  const called = await raw(plainUrl, 'POST', '/rpc/gap_echo', {
    headers: { Accept: 'application/vnd.pgrst.plan+text, application/json' },
    body: JSON.stringify({ payload: 'four' }),
  });
  assert.equal(called.status, 200, called.text);
  assert.equal(JSON.parse(called.text), 4);

  // Only when nothing is left: 406, naming every range as PostgREST does.
  const none = await raw(plainUrl, 'GET', '/gap_clients', {
    headers: { Accept: 'application/vnd.pgrst.plan+json, application/xml' },
  });
  assert.equal(none.status, 406, none.text);
  assert.deepEqual(JSON.parse(none.text), {
    code: 'PGRST107',
    message: 'None of these media types are available: application/vnd.pgrst.plan+json; for="application/json", application/xml',
    details: null,
    hint: null,
  });
  const explained = await plainClient().from('gap_clients').select('id').explain({ analyze: true });
  assert.equal(explained.status, 406);
  assert.equal(explained.error.code, 'PGRST107');
  assert.equal(
    explained.error.message,
    'None of these media types are available: application/vnd.pgrst.plan+text; for="application/json"; options=analyze',
  );

  // The main sidecar allows plans: the same Accept gets the plan.
  const plan = await raw(url, 'GET', '/gap_clients?select=id', {
    headers: { Accept: 'application/vnd.pgrst.plan+json, application/json' },
  });
  assert.equal(plan.status, 200, plan.text);
  assert.match(plan.headers.get('content-type'), /^application\/vnd\.pgrst\.plan\+json/);
  assert.ok(JSON.parse(plan.text)[0].Plan);
});

test('aggregates off: PGRST123 as PostgREST 12 words it, through postgrest-js', async () => {
  const expected = {
    code: 'PGRST123',
    message: 'Use of aggregate functions is not allowed',
    details: null,
    hint: null,
  };
  for (const select of ['budget.sum()', 'count()', 'client_id, total:budget.max()::text']) {
    const refused = await plainClient().from('gap_projects').select(select);
    assert.equal(refused.status, 400, select);
    assert.equal(refused.data, null);
    assert.deepEqual(shape(refused.error), expected, select);
  }
  const embedded = await plainClient().from('gap_clients').select('name, gap_projects(count)');
  assert.equal(embedded.status, 400);
  assert.deepEqual(shape(embedded.error), expected);
  const called = await plainClient().rpc('sel_all_messages').select('channel_id, amount.sum()');
  assert.equal(called.status, 400);
  assert.deepEqual(shape(called.error), expected);
  // Without aggregates the same sidecar answers.
  const fine = await plainClient().from('gap_projects').select('budget').eq('id', 1);
  assert.deepEqual(fine.data, [{ budget: 10 }]);
  // The main sidecar's login role turns them on.
  const on = await client().from('gap_projects').select('budget.sum()');
  assert.deepEqual(on.data, [{ sum: 43 }]);
});

test('Prefer: missing=default through a view writes the base table defaults', async () => {
  const rows = [
    { id: 100, name: 'full', status: 'done', priority: 1, note: 'n' },
    { name: 'bare' },
  ];
  const inserted = await client()
    .from('gap_item_view')
    .insert(rows, { defaultToNull: false })
    .select('id, name, status, priority, note')
    .order('name');
  assert.equal(inserted.error, null, JSON.stringify(inserted.error));
  assert.equal(inserted.status, 201);
  const [bare, full] = inserted.data;
  assert.deepEqual(full, { id: 100, name: 'full', status: 'done', priority: 1, note: 'n' });
  // The identity's next value, the column default, the domain's default; NULL where none.
  assert.equal(typeof bare.id, 'number');
  assert.notEqual(bare.id, 100);
  assert.deepEqual({ ...bare, id: 0 }, { id: 0, name: 'bare', status: 'new', priority: 3, note: null });

  // Without it a missing key is NULL (and status is NOT NULL).
  const nulls = await client().from('gap_item_view').insert([{ id: 101, name: 'a', status: 's' }, { id: 102, name: 'b' }]);
  assert.equal(nulls.status, 400, JSON.stringify(nulls.error));
  assert.equal(nulls.error.code, '23502');

  // A view with a default of its own keeps it.
  const own = await client()
    .from('gap_item_own')
    .insert([{ id: 103, name: 'c', status: 'given' }, { id: 104, name: 'd' }], { defaultToNull: false })
    .select('id, status')
    .order('id');
  assert.equal(own.error, null, JSON.stringify(own.error));
  assert.deepEqual(own.data, [
    { id: 103, status: 'given' },
    { id: 104, status: 'own' },
  ]);
  const stored = await client().from('gap_items').select('id, status, priority').in('id', [103, 104]).order('id');
  assert.deepEqual(stored.data, [
    { id: 103, status: 'given', priority: 3 },
    { id: 104, status: 'own', priority: 3 },
  ]);

  // Renamed columns are traced to the column they show (key, sort), and a view of a view through
  // both: the middle view's own default (state) first, else the table's.
  for (const [view, key] of [
    ['gap_item_renamed', 200],
    ['gap_item_nested', 300],
  ]) {
    const renamed = await client()
      .from(view)
      .insert([{ key, label: `${view} full`, state: 'set', sort: 'odd', rank: 1 }, { label: `${view} bare` }], {
        defaultToNull: false,
      })
      .select('key, label, state, sort, rank')
      .order('label');
    assert.equal(renamed.error, null, `${view}: ${JSON.stringify(renamed.error)}`);
    const [bareRow, fullRow] = renamed.data;
    assert.deepEqual(fullRow, { key, label: `${view} full`, state: 'set', sort: 'odd', rank: 1 });
    assert.equal(typeof bareRow.key, 'number');
    assert.deepEqual({ ...bareRow, key: 0 }, { key: 0, label: `${view} bare`, state: 'mid', sort: 'plain', rank: 3 });
  }
});

test('aggregates grouped by an embedding group by its value, as PostgREST does', async () => {
  const byName = (a, b) => String(a.gap_clients?.name).localeCompare(String(b.gap_clients?.name));
  // Clients 1 and 2 are both "acme": one group, not two.
  const counted = await client().from('gap_projects').select('count(), gap_clients(name)');
  assert.equal(counted.error, null, JSON.stringify(counted.error));
  assert.deepEqual(counted.data.sort(byName), [
    { count: 3, gap_clients: { name: 'acme' } },
    { count: 1, gap_clients: null },
    { count: 1, gap_clients: { name: 'zeta' } },
  ]);

  const summed = await client().from('gap_projects').select('gap_clients(name), budget.sum()');
  assert.equal(summed.error, null, JSON.stringify(summed.error));
  assert.deepEqual(summed.data.sort(byName), [
    { gap_clients: { name: 'acme' }, sum: 35 },
    { gap_clients: null, sum: 1 },
    { gap_clients: { name: 'zeta' }, sum: 7 },
  ]);

  // Ordered by the embedding's column: grouped by that value too, still one "acme" group.
  const ordered = await client()
    .from('gap_projects')
    .select('count(), gap_clients(name)')
    .order('gap_clients(name)', { ascending: false, nullsFirst: false });
  assert.equal(ordered.error, null, JSON.stringify(ordered.error));
  assert.deepEqual(ordered.data, [
    { count: 1, gap_clients: { name: 'zeta' } },
    { count: 3, gap_clients: { name: 'acme' } },
    { count: 1, gap_clients: null },
  ]);

  // Ordered by an embedding's column that is not selected: grouping by it too would split the
  // "acme" group (clients 1 and 2), so the request is refused, as Postgres refuses PostgREST's.
  const unselected = await client()
    .from('gap_projects')
    .select('count(), gap_clients(name)')
    .order('gap_clients(id)');
  assert.equal(unselected.data, null, JSON.stringify(unselected.data));
  assert.equal(unselected.status, 400);
  assert.equal(unselected.error?.code, '42803', JSON.stringify(unselected.error));
  // Grouped by the key the embedding is read by as well, the same order is well defined.
  const byKey = await client()
    .from('gap_projects')
    .select('client_id, count(), gap_clients(name)')
    .not('client_id', 'is', null)
    .order('gap_clients(id)', { ascending: false });
  assert.equal(byKey.error, null, JSON.stringify(byKey.error));
  assert.deepEqual(byKey.data, [
    { client_id: 3, count: 1, gap_clients: { name: 'zeta' } },
    { client_id: 2, count: 1, gap_clients: { name: 'acme' } },
    { client_id: 1, count: 2, gap_clients: { name: 'acme' } },
  ]);

  // A to-one spread groups by its columns' values.
  const spread = await client().from('gap_projects').select('...gap_clients(name), count()').not('client_id', 'is', null);
  assert.equal(spread.error, null, JSON.stringify(spread.error));
  assert.deepEqual(
    spread.data.sort((a, b) => a.name.localeCompare(b.name)),
    [
      { name: 'acme', count: 3 },
      { name: 'zeta', count: 1 },
    ],
  );

  // A to-many embedding groups by its whole array: every client's is empty here, one group.
  const toMany = await client().from('gap_clients').select('count(), gap_projects(budget)').gt('gap_projects.budget', 100);
  assert.equal(toMany.error, null, JSON.stringify(toMany.error));
  assert.deepEqual(toMany.data, [{ count: 3, gap_projects: [] }]);
});
