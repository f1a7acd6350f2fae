// Media types as PostgREST 12 answers them, through @supabase/postgrest-js unmodified:
// nulls=stripped (stripNulls()), explain() (plan+text and plan+json with their options; the test
// sidecar runs with --db-plan-enabled, the refusal when off is in sidecar/tests/rest_media.rs),
// GeoJSON of a PostGIS table (geojson()), the OpenAPI document for application/openapi+json, and
// 406 for what we cannot produce.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { anonKey, client, url } from './support.mjs';

async function rest(path, headers = {}, init = {}) {
  const response = await fetch(`${url}/rest/v1${path}`, {
    headers: { apikey: anonKey, Authorization: `Bearer ${anonKey}`, ...headers },
    ...init,
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

test('stripNulls() leaves out null-valued keys, for arrays and single objects', async () => {
  const many = await client().from('rpc2_places').select('id, name, note').order('id').stripNulls();
  assert.equal(many.error, null);
  assert.deepEqual(many.data, [{ id: 1, name: 'harbour' }, { id: 2, name: 'hill', note: 'windy' }]);
  const one = await client().from('rpc2_places').select('id, note').eq('id', 1).single().stripNulls();
  assert.equal(one.error, null);
  assert.deepEqual(one.data, { id: 1 });
  const raw = await rest('/rpc2_places?select=id,note&id=eq.1', {
    Accept: 'application/vnd.pgrst.array+json;nulls=stripped',
  });
  assert.equal(raw.status, 200);
  assert.equal(raw.headers.get('content-type'), 'application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8');
  assert.deepEqual(JSON.parse(raw.text), [{ id: 1 }]);
  // Without the parameter, the vendor array type is plain JSON.
  const plain = await rest('/rpc2_places?select=id,note&id=eq.1', { Accept: 'application/vnd.pgrst.array+json' });
  assert.deepEqual(JSON.parse(plain.text), [{ id: 1, note: null }]);
  // Writes and calls strip too.
  const written = await client()
    .from('rpc2_tags')
    .insert({ id: 500, name: 'stripped', note: null })
    .select('id, note')
    .stripNulls();
  assert.equal(written.error, null);
  assert.deepEqual(written.data, [{ id: 500 }]);
  const called = await client().rpc('rpc2_items_upto', { n: 1 }).select('id').stripNulls();
  assert.deepEqual(called.data, [{ id: 1 }]);
});

test('explain() answers the plan as text or JSON, with its options', async () => {
  const text = await client().from('rpc2_items').select('id').eq('id', 1).explain();
  assert.equal(text.error, null);
  assert.equal(typeof text.data, 'string');
  assert.match(text.data, /rpc2_items/);
  assert.match(text.data, /cost=/);
  assert.doesNotMatch(text.data, /actual time=/);

  const analyzed = await client()
    .from('rpc2_items')
    .select('id')
    .explain({ analyze: true, verbose: true, buffers: true, format: 'json' });
  assert.equal(analyzed.error, null);
  assert.ok(Array.isArray(analyzed.data), JSON.stringify(analyzed.data));
  const [plan] = analyzed.data;
  assert.ok(plan.Plan, JSON.stringify(plan));
  assert.ok('Actual Total Time' in plan.Plan);
  assert.ok('Execution Time' in plan);
  assert.ok(Array.isArray(plan.Plan.Output), 'verbose lists the output columns');

  const raw = await rest('/rpc2_items?select=id', {
    Accept: 'application/vnd.pgrst.plan+text; for="text/csv"; options=analyze|settings',
  });
  assert.equal(raw.status, 200);
  assert.equal(
    raw.headers.get('content-type'),
    'application/vnd.pgrst.plan+text; for="text/csv"; options=analyze|settings; charset=utf-8',
  );
  assert.match(raw.text, /actual time=/);
  assert.ok(raw.text.endsWith('\n'));

  // A call and a write are explained too; analyze of a write is rolled back.
  const call = await client().rpc('rpc2_numbers', { n: 3 }).explain({ format: 'json' });
  assert.equal(call.error, null);
  assert.ok(call.data[0].Plan);
  const write = await client()
    .from('rpc2_items')
    .update({ label: 'explained' })
    .eq('id', 1)
    .explain({ analyze: true });
  assert.equal(write.error, null);
  assert.match(write.data, /Update on/);
  const { data: row } = await client().from('rpc2_items').select('label').eq('id', 1).single();
  assert.notEqual(row.label, 'explained');
});

test('geojson() answers a FeatureCollection of a PostGIS table', async () => {
  const { data, error, status } = await client().from('rpc2_places').select('id, name, geom').order('id').geojson();
  assert.equal(error, null);
  assert.equal(status, 200);
  assert.deepEqual(data, {
    type: 'FeatureCollection',
    features: [
      { type: 'Feature', geometry: { type: 'Point', coordinates: [4.5, 51.9] }, properties: { id: 1, name: 'harbour' } },
      { type: 'Feature', geometry: { type: 'Point', coordinates: [-3, 40.25] }, properties: { id: 2, name: 'hill' } },
    ],
  });
  // A function returning rows of the table answers the same way.
  const called = await client().rpc('rpc2_places_named', { prefix: 'hi' }).select('name, geom').geojson();
  assert.equal(called.error, null);
  assert.deepEqual(called.data, {
    type: 'FeatureCollection',
    features: [{ type: 'Feature', geometry: { type: 'Point', coordinates: [-3, 40.25] }, properties: { name: 'hill' } }],
  });
  const raw = await rest('/rpc2_places?select=id,geom&id=eq.99', { Accept: 'application/geo+json' });
  assert.equal(raw.status, 200);
  assert.equal(raw.headers.get('content-type'), 'application/geo+json; charset=utf-8');
  assert.deepEqual(JSON.parse(raw.text), { type: 'FeatureCollection', features: [] });
});

test('the OpenAPI document for application/openapi+json; 406 elsewhere', async () => {
  const doc = await rest('/', { Accept: 'application/openapi+json' });
  assert.equal(doc.status, 200);
  assert.equal(doc.headers.get('content-type'), 'application/openapi+json; charset=utf-8');
  const document = JSON.parse(doc.text);
  assert.ok(document.paths['/rpc2_items'], Object.keys(document.paths).join(' '));
  // RPC paths carry their arguments: a body object for POST, query parameters for GET (a
  // STABLE or IMMUTABLE function; PostgREST 13.0.5+ also leaves GET out for VOLATILE ones).
  const sum = document.paths['/rpc/rpc2_sum'];
  assert.deepEqual(sum.post.requestBody.content['application/json'].schema.required, ['a', 'b']);
  assert.deepEqual(Object.keys(sum.post.requestBody.content['application/json'].schema.properties), ['a', 'b']);
  assert.deepEqual(sum.get.parameters.map((p) => [p.name, p.in, p.required]), [
    ['a', 'query', true],
    ['b', 'query', true],
  ]);
  assert.ok(document.paths['/rpc/rpc2_numbers'].get);
  assert.ok(document.paths['/rpc/rpc2_relabel'].post);
  assert.equal(document.paths['/rpc/rpc2_relabel'].get, undefined);
  const json = await rest('/', { Accept: 'application/json' });
  assert.equal(json.status, 200);
  assert.equal(json.headers.get('content-type'), 'application/openapi+json; charset=utf-8');

  const onTable = await rest('/rpc2_items', { Accept: 'application/openapi+json' });
  assert.equal(onTable.status, 406);
  assert.deepEqual(JSON.parse(onTable.text), {
    code: 'PGRST107',
    message: 'None of these media types are available: application/openapi+json',
    details: null,
    hint: null,
  });
  const xml = await client().from('rpc2_items').select('id').setHeader('Accept', 'application/xml');
  assert.equal(xml.status, 406);
  assert.deepEqual(xml.error, {
    code: 'PGRST107',
    message: 'None of these media types are available: application/xml',
    details: null,
    hint: null,
  });
  const csvRoot = await rest('/', { Accept: 'text/csv' });
  assert.equal(csvRoot.status, 406);
  assert.equal(JSON.parse(csvRoot.text).message, 'None of these media types are available: text/csv');
});

test('a large body to an unknown route (or over the limit) is answered with the JSON error, not "fetch failed"', async () => {
  const body = JSON.stringify({ blob: 'x'.repeat(8 * 1024 * 1024) });
  for (const path of ['/rest/v1/rpc2_items/extra/segments', '/nowhere/at/all']) {
    const response = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { apikey: anonKey, Authorization: `Bearer ${anonKey}`, 'Content-Type': 'application/json' },
      body,
    });
    assert.equal(response.status, 404, path);
    const error = await response.json();
    assert.equal(error.code, 'SLUICE100', JSON.stringify(error));
  }
  // A method the route does not take, with a body, is the JSON 405.
  const wrongMethod = await fetch(`${url}/rest/v1/rpc/rpc2_sum`, {
    method: 'PATCH',
    headers: { apikey: anonKey, 'Content-Type': 'application/json' },
    body: JSON.stringify({ a: 'y'.repeat(4 * 1024 * 1024) }),
  });
  assert.equal(wrongMethod.status, 405);
  assert.ok((await wrongMethod.json()).message);
  // A body over --max-body-bytes (1 MiB here) is the JSON 413, for writes and calls.
  for (const path of ['/rest/v1/rpc2_tags', '/rest/v1/rpc/rpc2_sum']) {
    const tooLarge = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { apikey: anonKey, Authorization: `Bearer ${anonKey}`, 'Content-Type': 'application/json' },
      body,
    });
    assert.equal(tooLarge.status, 413, path);
    assert.equal((await tooLarge.json()).code, 'SLUICE122');
  }
  // Through postgrest-js: a write to a path with a slash in the table name.
  const { error, status } = await client().from('no/such/route').insert({ blob: 'z'.repeat(2 * 1024 * 1024) });
  assert.equal(status, 404);
  assert.equal(error.code, 'SLUICE100');
});
