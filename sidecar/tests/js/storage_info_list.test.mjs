// Storage: the info routes (`/object/info/{bucket}/...` through supabase-js's `info()`, and
// `/object/info/authenticated/...` and `/object/info/public/...`, which storage-js does not call,
// by fetch) and list-v2's shape as Supabase Storage answers it (folders vs objects, a plain-string
// prefix, `sortBy`, `hasNext`, the opaque `nextCursor` and `nextCursorKey`). Run against both
// backends by scripts/storage-test.sh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '@supabase/supabase-js';
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
const service = createClient(url, serviceKey, options).storage;

const ok = ({ data, error }) => {
  assert.equal(error, null, error && `${error.message} (${error.statusCode})`);
  return data;
};

async function freshBucket(id, settings) {
  const { data } = await service.getBucket(id);
  if (data) {
    ok(await service.emptyBucket(id));
    ok(await service.deleteBucket(id));
  }
  ok(await service.createBucket(id, settings));
}

const get = async (path, token) => {
  const response = await fetch(`${url}/storage/v1${path}`, {
    headers: token ? { authorization: `Bearer ${token}`, apikey: token } : {},
  });
  return { status: response.status, body: await response.json() };
};

test('info: supabase-js info(), /object/info/authenticated and /object/info/public', async () => {
  await freshBucket('infopub', { public: true });
  await freshBucket('infopriv', { public: false });
  for (const bucket of ['infopub', 'infopriv']) {
    ok(await service.from(bucket).upload('dir/a.txt', Buffer.from('hello info'), {
      contentType: 'text/plain',
      cacheControl: '60',
      metadata: { tag: 'x' },
    }));
  }
  // storage-js's info() calls /object/info/{bucket}/{path} and camel-cases the answer.
  const info = ok(await service.from('infopriv').info('dir/a.txt'));
  assert.equal(info.name, 'dir/a.txt');
  assert.equal(info.bucketId, 'infopriv');
  assert.equal(info.size, 10);
  assert.equal(info.contentType, 'text/plain');
  assert.equal(info.cacheControl, 'max-age=60');
  assert.match(info.etag, /^"[0-9a-f]{32}"$/);
  assert.deepEqual(info.metadata, { tag: 'x' });
  assert.match(info.id, /^[0-9a-f-]{36}$/);
  assert.ok(info.version && info.lastModified && info.createdAt);

  // The authenticated route answers the same object the same way.
  const authenticated = await get('/object/info/authenticated/infopriv/dir/a.txt', serviceKey);
  assert.equal(authenticated.status, 200);
  assert.equal(authenticated.body.id, info.id);
  assert.equal(authenticated.body.content_type, 'text/plain');
  assert.equal(authenticated.body.size, 10);
  // Without a policy, anon sees nothing there: 400 with the real status 404, as Supabase.
  const hidden = await get('/object/info/authenticated/infopriv/dir/a.txt', anonKey);
  assert.equal(hidden.status, 400);
  assert.equal(hidden.body.statusCode, '404');

  // The public route: an object of a public bucket, without any token or policy.
  const open = await get('/object/info/public/infopub/dir/a.txt');
  assert.equal(open.status, 200);
  assert.equal(open.body.name, 'dir/a.txt');
  assert.equal(open.body.bucket_id, 'infopub');
  assert.equal(open.body.size, 10);
  assert.equal(open.body.content_type, 'text/plain');
  assert.equal(open.body.cache_control, 'max-age=60');
  assert.deepEqual(open.body.metadata, { tag: 'x' });
  // ...and nothing of a private bucket, nor a missing object.
  for (const path of ['/object/info/public/infopriv/dir/a.txt', '/object/info/public/infopub/dir/none.txt']) {
    const refused = await get(path);
    assert.equal(refused.status, 400, path);
    assert.equal(refused.body.statusCode, '404', path);
    assert.equal(refused.body.error, 'not_found', path);
  }
});

test('list-v2: folders and objects, a plain prefix, sortBy, and an opaque cursor', async () => {
  await freshBucket('listv2', { public: false });
  const bucket = service.from('listv2');
  const names = ['a.txt', 'b.txt', 'sub/x.txt', 'sub/y.txt', 'subway.txt', 'deep/er/z.txt', 'Z.txt'];
  for (const name of names) {
    ok(await bucket.upload(`p/${name}`, Buffer.from(name)));
    // Distinct creation times, in upload order.
    await new Promise((resolve) => setTimeout(resolve, 5));
  }

  // Flat: every object under the prefix, names in byte order (upper case first), full names.
  const flat = ok(await bucket.listV2({ prefix: 'p/' }));
  assert.equal(flat.hasNext, false);
  assert.equal(flat.nextCursor, undefined);
  assert.deepEqual(flat.folders, []);
  assert.deepEqual(
    flat.objects.map((o) => o.name),
    ['Z.txt', 'a.txt', 'b.txt', 'deep/er/z.txt', 'sub/x.txt', 'sub/y.txt', 'subway.txt'].map((n) => `p/${n}`),
  );
  const object = flat.objects[0];
  assert.match(object.id, /^[0-9a-f-]{36}$/);
  assert.equal(object.metadata.size, 5);
  assert.ok(object.created_at && object.updated_at && object.last_accessed_at);

  // With the delimiter: folders end with '/', carry id null, and come with their full prefix.
  const grouped = ok(await bucket.listV2({ prefix: 'p/', with_delimiter: true }));
  assert.deepEqual(grouped.folders.map((f) => f.name), ['p/deep/', 'p/sub/']);
  for (const folder of grouped.folders) {
    assert.equal(folder.id, null);
    assert.equal(folder.key, folder.name);
  }
  assert.deepEqual(grouped.objects.map((o) => o.name), ['p/Z.txt', 'p/a.txt', 'p/b.txt', 'p/subway.txt']);

  // A prefix is a plain string, not a folder: 'p/sub' matches 'p/sub/...' and 'p/subway.txt'.
  const partial = ok(await bucket.listV2({ prefix: 'p/sub', with_delimiter: true }));
  assert.deepEqual(partial.folders.map((f) => f.name), ['p/sub/']);
  assert.deepEqual(partial.objects.map((o) => o.name), ['p/subway.txt']);

  // Pages: hasNext, an opaque cursor in Supabase's form (base64 of "l:<last name>"), and the
  // last name in nextCursorKey; the pages together are the whole listing.
  const seen = [];
  let cursor;
  let pages = 0;
  do {
    const page = ok(await bucket.listV2({ prefix: 'p/', with_delimiter: true, limit: 2, cursor }));
    pages += 1;
    const entries = [...page.folders, ...page.objects].map((e) => e.name).sort();
    seen.push(...entries);
    if (page.hasNext) {
      assert.equal(Buffer.from(page.nextCursor, 'base64').toString(), `l:${page.nextCursorKey}`);
      assert.ok(entries.includes(page.nextCursorKey));
    } else {
      assert.equal(page.nextCursor, undefined);
    }
    cursor = page.hasNext ? page.nextCursor : undefined;
  } while (cursor);
  assert.equal(pages, 3);
  assert.deepEqual(seen.sort(), [...grouped.folders, ...grouped.objects].map((e) => e.name).sort());

  // sortBy: name descending; created_at (oldest first), paged, its cursor keeping the order.
  const desc = ok(await bucket.listV2({ prefix: 'p/', sortBy: { column: 'name', order: 'desc' } }));
  assert.deepEqual(desc.objects.map((o) => o.name), flat.objects.map((o) => o.name).reverse());
  const byCreation = [];
  cursor = undefined;
  do {
    const page = ok(await bucket.listV2({ prefix: 'p/', limit: 3, cursor, sortBy: { column: 'created_at', order: 'asc' } }));
    byCreation.push(...page.objects.map((o) => o.name));
    cursor = page.hasNext ? page.nextCursor : undefined;
  } while (cursor);
  assert.deepEqual(byCreation, names.map((n) => `p/${n}`));

  // Bad input: a clear error.
  for (const body of [{ limit: 0 }, { cursor: 'not a cursor!' }, { sortBy: { column: 'size' } }]) {
    const response = await fetch(`${url}/storage/v1/object/list-v2/listv2`, {
      method: 'POST',
      headers: { authorization: `Bearer ${serviceKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(response.status, 400, JSON.stringify(body));
    const error = await response.json();
    assert.equal(error.statusCode, '400', JSON.stringify(body));
    assert.ok(error.message, JSON.stringify(body));
  }
});
