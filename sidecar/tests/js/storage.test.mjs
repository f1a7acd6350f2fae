// Storage through @supabase/supabase-js's storage client, unmodified: buckets, uploads (raw and
// multipart, with and without upsert), downloads, info, exists, list and list-v2, move, copy,
// remove, signed download and upload URLs, public URLs, ranges and ETags; and the policies of
// fixtures_storage.sql deciding what each user may do. Run against the local backend by
// scripts/js-test.sh and against both backends by scripts/storage-test.sh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { createClient } from '@supabase/supabase-js';
import { ANN, BOB, anonKey, serviceKey, url, userToken } from './support.mjs';

class NoWebSocket {
  constructor() {
    throw new Error('realtime is not used in these tests');
  }
}
const options = (token) => ({
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  realtime: { transport: NoWebSocket },
  global: token ? { headers: { Authorization: `Bearer ${token}` } } : {},
});
const service = createClient(url, serviceKey, options()).storage;
const anon = createClient(url, anonKey, options()).storage;
const ann = createClient(url, anonKey, options(userToken(ANN))).storage;
const bob = createClient(url, anonKey, options(userToken(BOB))).storage;

const ok = ({ data, error }) => {
  assert.equal(error, null, error && `${error.message} (${error.statusCode})`);
  return data;
};
/** The error a call failed with: status as Supabase sends it (400) and the real one in statusCode. */
const refused = ({ data, error }, statusCode) => {
  assert.ok(error, `expected an error ${statusCode}, got ${JSON.stringify(data)}`);
  assert.equal(String(error.statusCode), statusCode, `${error.message}`);
  return error;
};
const text = async (blob) => Buffer.from(await blob.arrayBuffer()).toString();

async function freshBucket(id, settings = { public: false }) {
  const { data } = await service.getBucket(id);
  if (data) {
    ok(await service.emptyBucket(id));
    ok(await service.deleteBucket(id));
  }
  ok(await service.createBucket(id, settings));
}

test('buckets: create, get, list, update, refuse a duplicate and a non-empty delete', async () => {
  assert.equal((await fetch(`${url}/storage/v1/status`)).status, 200);
  const version = await fetch(`${url}/storage/v1/version`);
  assert.equal(version.status, 200);
  assert.match(await version.text(), /^\d+\.\d+\.\d+/);
  await freshBucket('docs');
  await freshBucket('notes');
  await freshBucket('ops');
  await freshBucket('pics', { public: true, allowedMimeTypes: ['image/*'], fileSizeLimit: '1KB' });
  await freshBucket('archive');
  const docs = ok(await service.getBucket('docs'));
  assert.equal(docs.id, 'docs');
  assert.equal(docs.public, false);
  const pics = ok(await service.getBucket('pics'));
  assert.deepEqual(pics.allowed_mime_types, ['image/*']);
  assert.equal(pics.file_size_limit, 1024);
  const names = ok(await service.listBuckets()).map((b) => b.name);
  for (const id of ['archive', 'docs', 'notes', 'ops', 'pics']) assert.ok(names.includes(id), id);
  assert.deepEqual(ok(await service.listBuckets({ search: 'do' })).map((b) => b.name), ['docs']);
  refused(await service.createBucket('docs'), '409');
  refused(await service.getBucket('missing-bucket'), '404');
  ok(await service.updateBucket('archive', { public: false, fileSizeLimit: 1024 * 1024 }));
  assert.equal(ok(await service.getBucket('archive')).file_size_limit, 1024 * 1024);
  // Users see buckets (a policy says so) but may not create them (none does).
  assert.ok(ok(await ann.listBuckets()).length >= 5);
  refused(await ann.createBucket('mine'), '403');
  assert.deepEqual(ok(await anon.listBuckets()), []);
  // Not empty: 409.
  ok(await service.from('archive').upload('keep.txt', 'x'));
  refused(await service.deleteBucket('archive'), '409');
});

test('upload raw and multipart, with and without upsert; download; info; exists', async () => {
  const docs = ann.from('docs');
  const raw = ok(await docs.upload(`${ANN}/hello.txt`, Buffer.from('hello world'), { contentType: 'text/plain' }));
  assert.equal(raw.path, `${ANN}/hello.txt`);
  assert.equal(raw.fullPath, `docs/${ANN}/hello.txt`);
  assert.match(raw.id, /^[0-9a-f-]{36}$/);
  // Again without upsert: the key exists.
  refused(await docs.upload(`${ANN}/hello.txt`, Buffer.from('again')), '409');
  // With upsert: replaced.
  ok(await docs.upload(`${ANN}/hello.txt`, Buffer.from('hello again'), { upsert: true, contentType: 'text/plain' }));
  assert.equal(await text(ok(await docs.download(`${ANN}/hello.txt`))), 'hello again');
  // Multipart: a Blob goes as a form with the file under the empty field name.
  const blob = new Blob(['{"a":1}'], { type: 'application/json' });
  ok(await docs.upload(`${ANN}/data/a.json`, blob, { cacheControl: '60', metadata: { origin: 'test' } }));
  const downloaded = ok(await docs.download(`${ANN}/data/a.json`));
  assert.equal(await text(downloaded), '{"a":1}');
  assert.equal(downloaded.type, 'application/json');
  // update (PUT) replaces; of a missing object, 404.
  ok(await docs.update(`${ANN}/data/a.json`, new Blob(['{"a":2}'], { type: 'application/json' })));
  assert.equal(await text(ok(await docs.download(`${ANN}/data/a.json`))), '{"a":2}');
  refused(await docs.update(`${ANN}/nothing.json`, new Blob(['x'])), '404');

  const info = ok(await docs.info(`${ANN}/hello.txt`));
  assert.equal(info.name, `${ANN}/hello.txt`);
  assert.equal(info.size, 11);
  assert.equal(info.contentType, 'text/plain');
  assert.equal(info.cacheControl, 'max-age=3600');
  assert.match(info.etag, /^"[0-9a-f]{32}"$/);
  assert.equal(ok(await docs.exists(`${ANN}/hello.txt`)), true);
  const missing = await docs.exists(`${ANN}/nope.txt`);
  assert.equal(missing.data, false);
  refused(await docs.download(`${ANN}/nope.txt`), '404');
});

test('list with folders as id null, search, sort; list-v2 with cursor and delimiter', async () => {
  const docs = ann.from('docs');
  for (const name of ['b.txt', 'c.txt', 'sub/x.txt', 'sub/y.txt', 'deep/er/z.txt']) {
    ok(await docs.upload(`${ANN}/list/${name}`, Buffer.from(name), { upsert: true }));
  }
  const entries = ok(await docs.list(`${ANN}/list`));
  assert.deepEqual(entries.map((e) => e.name), ['b.txt', 'c.txt', 'deep', 'sub']);
  const folder = entries.find((e) => e.name === 'sub');
  assert.equal(folder.id, null);
  assert.equal(folder.metadata, null);
  const file = entries.find((e) => e.name === 'b.txt');
  assert.match(file.id, /^[0-9a-f-]{36}$/);
  assert.equal(file.metadata.size, 5);
  assert.deepEqual(ok(await docs.list(`${ANN}/list`, { search: 'c' })).map((e) => e.name), ['c.txt']);
  assert.deepEqual(
    ok(await docs.list(`${ANN}/list`, { limit: 2, offset: 1, sortBy: { column: 'name', order: 'desc' } })).map((e) => e.name),
    ['deep', 'c.txt'],
  );

  const flat = ok(await docs.listV2({ prefix: `${ANN}/list/`, limit: 3 }));
  assert.equal(flat.hasNext, true);
  assert.deepEqual(flat.objects.map((o) => o.name), ['b.txt', 'c.txt', 'deep/er/z.txt'].map((n) => `${ANN}/list/${n}`));
  const rest = ok(await docs.listV2({ prefix: `${ANN}/list/`, limit: 3, cursor: flat.nextCursor }));
  assert.equal(rest.hasNext, false);
  assert.deepEqual(rest.objects.map((o) => o.name), ['sub/x.txt', 'sub/y.txt'].map((n) => `${ANN}/list/${n}`));
  const grouped = ok(await docs.listV2({ prefix: `${ANN}/list/`, with_delimiter: true }));
  assert.deepEqual(grouped.folders.map((f) => f.name), ['deep/', 'sub/'].map((n) => `${ANN}/list/${n}`));
  assert.deepEqual(grouped.objects.map((o) => o.name), ['b.txt', 'c.txt'].map((n) => `${ANN}/list/${n}`));
});

test('move and copy, within and across buckets; remove many', async () => {
  const docs = ann.from('docs');
  ok(await docs.upload(`${ANN}/mv/from.txt`, Buffer.from('moving'), { upsert: true }));
  ok(await docs.move(`${ANN}/mv/from.txt`, `${ANN}/mv/to.txt`));
  refused(await docs.download(`${ANN}/mv/from.txt`), '404');
  assert.equal(await text(ok(await docs.download(`${ANN}/mv/to.txt`))), 'moving');
  const copied = ok(await docs.copy(`${ANN}/mv/to.txt`, `${ANN}/mv/copy.txt`));
  assert.equal(copied.path, `docs/${ANN}/mv/copy.txt`);
  assert.equal(await text(ok(await docs.download(`${ANN}/mv/copy.txt`))), 'moving');
  // Across buckets (service role: Ann has no policy on `archive`).
  ok(await service.from('docs').copy(`${ANN}/mv/to.txt`, 'from-docs.txt', { destinationBucket: 'archive' }));
  assert.equal(await text(ok(await service.from('archive').download('from-docs.txt'))), 'moving');
  ok(await service.from('docs').move(`${ANN}/mv/copy.txt`, 'moved.txt', { destinationBucket: 'archive' }));
  assert.equal(await text(ok(await service.from('archive').download('moved.txt'))), 'moving');
  refused(await docs.download(`${ANN}/mv/copy.txt`), '404');

  const removed = ok(await docs.remove([`${ANN}/mv/to.txt`, `${ANN}/mv/none.txt`]));
  assert.deepEqual(removed.map((o) => o.name), [`${ANN}/mv/to.txt`]);
  assert.equal((await docs.exists(`${ANN}/mv/to.txt`)).data, false);
});

test('signed download URLs (one, many, expiring) and single-use signed upload URLs', async () => {
  const docs = ann.from('docs');
  ok(await docs.upload(`${ANN}/signed.txt`, Buffer.from('signed body'), { upsert: true }));
  const { signedUrl } = ok(await docs.createSignedUrl(`${ANN}/signed.txt`, 60));
  const response = await fetch(signedUrl);
  assert.equal(response.status, 200);
  assert.equal(await response.text(), 'signed body');
  const attachment = ok(await docs.createSignedUrl(`${ANN}/signed.txt`, 60, { download: 'named.txt' }));
  const named = await fetch(attachment.signedUrl);
  assert.match(named.headers.get('content-disposition'), /attachment; filename="named.txt"/);
  // Another object with the same token: refused.
  const token = new URL(signedUrl).searchParams.get('token');
  const other = await fetch(`${url}/storage/v1/object/sign/docs/${ANN}/hello.txt?token=${token}`);
  assert.equal(other.status, 400);
  // Expired.
  const short = ok(await docs.createSignedUrl(`${ANN}/signed.txt`, 1));
  await new Promise((resolve) => setTimeout(resolve, 2100));
  const expired = await fetch(short.signedUrl);
  assert.equal(expired.status, 400);
  assert.equal((await expired.json()).statusCode, '400');
  // Bob cannot sign Ann's file.
  refused(await bob.from('docs').createSignedUrl(`${ANN}/signed.txt`, 60), '404');
  // Many: one per path, an error for what cannot be read.
  const many = ok(await docs.createSignedUrls([`${ANN}/signed.txt`, `${ANN}/absent.txt`], 60));
  assert.equal(many.length, 2);
  assert.equal(await (await fetch(many[0].signedUrl)).text(), 'signed body');
  assert.equal(many[1].signedUrl, null);
  assert.ok(many[1].error);

  const upload = ok(await docs.createSignedUploadUrl(`${ANN}/by-token.txt`));
  ok(await anon.from('docs').uploadToSignedUrl(`${ANN}/by-token.txt`, upload.token, Buffer.from('via token')));
  assert.equal(await text(ok(await docs.download(`${ANN}/by-token.txt`))), 'via token');
  // A second use fails.
  const again = await anon.from('docs').uploadToSignedUrl(`${ANN}/by-token.txt`, upload.token, Buffer.from('again'));
  assert.ok(again.error, 'a signed upload URL works once');
  assert.equal(await text(ok(await docs.download(`${ANN}/by-token.txt`))), 'via token');
  // Even with upsert, once.
  const upsertable = ok(await docs.createSignedUploadUrl(`${ANN}/by-token-2.txt`, { upsert: true }));
  ok(await anon.from('docs').uploadToSignedUrl(`${ANN}/by-token-2.txt`, upsertable.token, Buffer.from('one')));
  const twice = await anon.from('docs').uploadToSignedUrl(`${ANN}/by-token-2.txt`, upsertable.token, Buffer.from('two'));
  assert.ok(twice.error, 'an upsert signed upload URL works once too');
  // Bob cannot get an upload URL into Ann's folder.
  refused(await bob.from('docs').createSignedUploadUrl(`${ANN}/intrusion.txt`), '403');
});

test('public URLs, ranges, ETags, cache headers and attachments', async () => {
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
  ok(await service.from('pics').upload('logo.png', png, { contentType: 'image/png', upsert: true, cacheControl: '120' }));
  const { publicUrl } = anon.from('pics').getPublicUrl('logo.png').data;
  assert.equal(publicUrl, `${url}/storage/v1/object/public/pics/logo.png`);
  const response = await fetch(publicUrl);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'image/png');
  assert.equal(response.headers.get('cache-control'), 'max-age=120');
  assert.equal(response.headers.get('content-length'), String(png.length));
  assert.deepEqual(Buffer.from(await response.arrayBuffer()), png);
  const etag = response.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]{32}"$/);
  const cached = await fetch(publicUrl, { headers: { 'If-None-Match': etag } });
  assert.equal(cached.status, 304);
  const partial = await fetch(publicUrl, { headers: { Range: 'bytes=1-3' } });
  assert.equal(partial.status, 206);
  assert.equal(partial.headers.get('content-range'), `bytes 1-3/${png.length}`);
  assert.deepEqual(Buffer.from(await partial.arrayBuffer()), png.subarray(1, 4));
  const beyond = await fetch(publicUrl, { headers: { Range: 'bytes=100-' } });
  assert.equal(beyond.status, 416);
  assert.equal(beyond.headers.get('content-range'), `bytes */${png.length}`);
  const download = anon.from('pics').getPublicUrl('logo.png', { download: true }).data.publicUrl;
  assert.match((await fetch(download)).headers.get('content-disposition'), /attachment; filename="logo.png"/);
  // A private bucket is not public, whatever the URL.
  ok(await ann.from('docs').upload(`${ANN}/private.txt`, Buffer.from('secret'), { upsert: true }));
  const hidden = await fetch(ann.from('docs').getPublicUrl(`${ANN}/private.txt`).data.publicUrl);
  assert.equal(hidden.status, 400);
  assert.equal((await hidden.json()).statusCode, '404');
});

test('bucket rules: file size limit (413) and allowed types with wildcards (415)', async () => {
  const pics = service.from('pics');
  refused(await pics.upload('big.png', Buffer.alloc(2048), { contentType: 'image/png' }), '413');
  refused(await pics.upload('big.png', new Blob([Buffer.alloc(2048)], { type: 'image/png' })), '413');
  refused(await pics.upload('doc.txt', Buffer.from('text'), { contentType: 'text/plain' }), '415');
  ok(await pics.upload('small.webp', Buffer.from('RIFF'), { contentType: 'image/webp', upsert: true }));
  assert.equal((await pics.exists('big.png')).data, false);
});

test('invalid keys are refused', async () => {
  // (Clients resolve `..` segments in URLs themselves; an encoded `/` keeps them in the key.)
  for (const name of ['a\u0001b.txt', '..%2Fescape.txt', 'x/..%2F..%2Fescape.txt']) {
    const error = refused(await service.from('docs').upload(name, Buffer.from('x')), '400');
    assert.match(error.message, /Invalid key/);
  }
  for (const method of ['GET', 'POST']) {
    const raw = await fetch(`${url}/storage/v1/object/docs/..%2F..%2Fetc%2Fpasswd`, {
      method,
      headers: { Authorization: `Bearer ${serviceKey}` },
      body: method === 'POST' ? 'x' : undefined,
    });
    assert.equal(raw.status, 400);
    assert.equal((await raw.json()).code, 'InvalidKey');
  }
});

test("policies: Bob cannot read, list, overwrite, move or delete Ann's files", async () => {
  const path = `${ANN}/mine.txt`;
  ok(await ann.from('docs').upload(path, Buffer.from('ann only'), { upsert: true }));
  const docs = bob.from('docs');
  refused(await docs.download(path), '404');
  assert.equal((await docs.exists(path)).data, false);
  refused(await docs.info(path), '404');
  assert.deepEqual(ok(await docs.list(ANN)), []);
  assert.deepEqual(ok(await docs.listV2({ prefix: `${ANN}/` })).objects, []);
  refused(await docs.upload(path, Buffer.from('bob was here')), '403');
  refused(await docs.upload(path, Buffer.from('bob was here'), { upsert: true }), '403');
  refused(await docs.update(path, Buffer.from('bob was here')), '404');
  refused(await docs.move(path, `${BOB}/stolen.txt`), '404');
  refused(await docs.copy(path, `${BOB}/stolen.txt`), '404');
  assert.deepEqual(ok(await docs.remove([path])), []);
  // Bob cannot write into Ann's folder either.
  refused(await docs.upload(`${ANN}/planted.txt`, Buffer.from('x')), '403');
  // Ann's file is untouched; Bob has his own.
  assert.equal(await text(ok(await ann.from('docs').download(path))), 'ann only');
  ok(await docs.upload(`${BOB}/his.txt`, Buffer.from('bob')));
  refused(await ann.from('docs').download(`${BOB}/his.txt`), '404');

  // Owner-based policy: the uploader owns the file wherever it is.
  ok(await ann.from('notes').upload('shared/n.txt', Buffer.from('note')));
  refused(await bob.from('notes').download('shared/n.txt'), '404');
  assert.equal(await text(ok(await ann.from('notes').download('shared/n.txt'))), 'note');

  // storage.operation() as the policy sees it: the `ops` policy admits uploads, not other writes.
  ok(await ann.from('ops').upload('op.txt', Buffer.from('x')));
});

test('anon reads a public bucket and nothing else; service role does everything', async () => {
  ok(await service.from('pics').upload('anon.png', Buffer.from('png'), { contentType: 'image/png', upsert: true }));
  const publicUrl = anon.from('pics').getPublicUrl('anon.png').data.publicUrl;
  assert.equal(await (await fetch(publicUrl)).text(), 'png');
  // Not through the authenticated route (no policy for anon), not listing, not writing.
  refused(await anon.from('pics').download('anon.png'), '404');
  assert.deepEqual(ok(await anon.from('pics').list()), []);
  refused(await anon.from('pics').upload('x.png', Buffer.from('x'), { contentType: 'image/png' }), '403');
  refused(await anon.from('docs').download(`${ANN}/hello.txt`), '404');
  assert.deepEqual(ok(await anon.from('docs').remove([`${ANN}/hello.txt`])), []);
  refused(await anon.createBucket('anon-bucket'), '403');

  // The service role reads, lists and deletes anyone's files.
  assert.equal(await text(ok(await service.from('docs').download(`${ANN}/hello.txt`))), 'hello again');
  assert.ok(ok(await service.from('docs').list(ANN)).length > 0);
  ok(await service.from('docs').remove([`${BOB}/his.txt`]));
  ok(await service.emptyBucket('archive'));
  ok(await service.deleteBucket('archive'));
  refused(await service.getBucket('archive'), '404');
});

test('tus-js-client: a resumable upload in chunks, interrupted, resumed on another sidecar', async () => {
  const tus = await import('tus-js-client');
  const size = 1024 * 1024 + 123;
  const file = Buffer.alloc(size);
  for (let i = 0; i < size; i++) file[i] = (i * 7) % 251;
  const name = `${ANN}/tus/big.bin`;
  const token = userToken(ANN);
  const options = (endpoint, extra) => ({
    endpoint,
    chunkSize: 128 * 1024,
    retryDelays: [],
    headers: { Authorization: `Bearer ${token}`, 'x-upsert': 'true' },
    metadata: { bucketName: 'docs', objectName: name, contentType: 'application/octet-stream', cacheControl: '60' },
    ...extra,
  });
  // First attempt: stopped after a few chunks.
  let first;
  await new Promise((resolve, reject) => {
    first = new tus.Upload(file, options(`${url}/storage/v1/upload/resumable`, {
      onChunkComplete: (_chunk, sent) => {
        if (sent >= 3 * 128 * 1024) {
          first.abort().then(resolve, reject);
        }
      },
      onError: reject,
      onSuccess: () => reject(new Error('the first attempt should not finish')),
    }));
    first.start();
  });
  assert.ok(first.url, 'the upload has a URL');
  // Nothing is visible yet.
  assert.equal((await ann.from('docs').exists(name)).data, false);

  // Another sidecar (same database and backend) knows where it stopped.
  const other = process.env.SLUICE_URL_2 ?? url;
  const uploadUrl = first.url.replace(url, other);
  const head = await fetch(uploadUrl, {
    method: 'HEAD',
    headers: { Authorization: `Bearer ${token}`, 'Tus-Resumable': '1.0.0' },
  });
  assert.equal(head.status, 200);
  const offset = Number(head.headers.get('upload-offset'));
  assert.ok(offset >= 3 * 128 * 1024 && offset < size, `resumes from ${offset}`);
  // Bob may not continue Ann's upload.
  const intruder = await fetch(uploadUrl, {
    method: 'HEAD',
    headers: { Authorization: `Bearer ${userToken(BOB)}`, 'Tus-Resumable': '1.0.0' },
  });
  assert.equal(intruder.status, 403);

  let firstResumedAt;
  await new Promise((resolve, reject) => {
    const resumed = new tus.Upload(file, options(`${other}/storage/v1/upload/resumable`, {
      uploadUrl,
      onProgress: (sent) => {
        if (firstResumedAt === undefined) firstResumedAt = sent;
      },
      onError: reject,
      onSuccess: resolve,
    }));
    resumed.start();
  });
  assert.ok(firstResumedAt > offset - 1, 'the resumed upload did not start over');
  const downloaded = ok(await ann.from('docs').download(name));
  assert.deepEqual(Buffer.from(await downloaded.arrayBuffer()), file);
  const info = ok(await ann.from('docs').info(name));
  assert.equal(info.size, size);
  assert.equal(info.cacheControl, 'max-age=60');
  // The finished upload is gone.
  const gone = await fetch(uploadUrl, { method: 'HEAD', headers: { Authorization: `Bearer ${token}`, 'Tus-Resumable': '1.0.0' } });
  assert.equal(gone.status, 404);

  // Bob cannot start one into Ann's folder (the INSERT policy is checked at creation).
  const refusedUpload = await fetch(`${url}/storage/v1/upload/resumable`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${userToken(BOB)}`,
      'Tus-Resumable': '1.0.0',
      'Upload-Length': '10',
      'Upload-Metadata': `bucketName ${Buffer.from('docs').toString('base64')},objectName ${Buffer.from(`${ANN}/x.bin`).toString('base64')}`,
    },
  });
  assert.equal(refusedUpload.status, 403);
});

/** A width x height RGB PNG (a gradient), encoded here so the test needs no image library. */
function png(width, height) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes) => {
    let c = 0xffffffff;
    for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([length, body, sum]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x++) row.set([x % 256, y % 256, 128], 1 + x * 3);
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Width and height of a PNG, a lossy WebP (VP8, what transformations produce) or a lossless one (VP8L). */
function dimensions(bytes) {
  if (bytes.subarray(1, 4).toString() === 'PNG') return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
  if (bytes.subarray(8, 16).toString() === 'WEBPVP8 ') {
    // The key frame's start code, then 14-bit width and height.
    assert.deepEqual([...bytes.subarray(23, 26)], [0x9d, 0x01, 0x2a]);
    return [bytes.readUInt16LE(26) & 0x3fff, bytes.readUInt16LE(28) & 0x3fff];
  }
  assert.equal(bytes.subarray(8, 16).toString(), 'WEBPVP8L');
  const bits = bytes.readUInt32LE(21);
  return [(bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1];
}

test('image transformations: sizes, resize modes, webp; authenticated, public and signed', async () => {
  await freshBucket('images', { public: true, allowedMimeTypes: ['image/*'] });
  ok(await service.from('images').upload('photo.png', png(300, 150), { contentType: 'image/png' }));
  const pics = service.from('images');
  const cover = ok(await pics.download('photo.png', { transform: { width: 60, height: 60 } }));
  assert.equal(cover.type, 'image/png');
  assert.deepEqual(dimensions(Buffer.from(await cover.arrayBuffer())), [60, 60]);
  const contain = ok(await pics.download('photo.png', { transform: { width: 60, height: 60, resize: 'contain' } }));
  assert.deepEqual(dimensions(Buffer.from(await contain.arrayBuffer())), [60, 30]);
  const fill = ok(await pics.download('photo.png', { transform: { width: 40, height: 70, resize: 'fill' } }));
  assert.deepEqual(dimensions(Buffer.from(await fill.arrayBuffer())), [40, 70]);
  const webp = ok(await pics.download('photo.png', { transform: { width: 100, format: 'webp' } }));
  assert.equal(webp.type, 'image/webp');
  assert.deepEqual(dimensions(Buffer.from(await webp.arrayBuffer())), [100, 50]);
  // Again: the cached rendering.
  const again = ok(await pics.download('photo.png', { transform: { width: 100, format: 'webp' } }));
  assert.deepEqual(dimensions(Buffer.from(await again.arrayBuffer())), [100, 50]);
  // quality: WebP is lossy, smaller at a lower quality.
  const atQuality = async (quality) => Buffer.from(await ok(
    await pics.download('photo.png', { transform: { width: 100, format: 'webp', quality } }),
  ).arrayBuffer());
  const [low, high] = [await atQuality(20), await atQuality(95)];
  assert.deepEqual(dimensions(low), [100, 50]);
  assert.deepEqual(dimensions(high), [100, 50]);
  assert.ok(low.length < high.length, `quality 20: ${low.length} bytes, 95: ${high.length}`);

  const publicUrl = anon.from('images').getPublicUrl('photo.png', { transform: { width: 30, height: 20 } }).data.publicUrl;
  assert.match(publicUrl, /\/render\/image\/public\/images\/photo.png\?/);
  const response = await fetch(publicUrl);
  assert.equal(response.status, 200);
  assert.deepEqual(dimensions(Buffer.from(await response.arrayBuffer())), [30, 20]);

  const { signedUrl } = ok(await pics.createSignedUrl('photo.png', 60, { transform: { width: 25, height: 25 } }));
  assert.match(signedUrl, /\/render\/image\/sign\/images\/photo.png\?token=/);
  const signed = await fetch(signedUrl);
  assert.equal(signed.status, 200);
  assert.deepEqual(dimensions(Buffer.from(await signed.arrayBuffer())), [25, 25]);

  // Bad options and non-images are refused.
  refused(await pics.download('photo.png', { transform: { width: 5000 } }), '400');
  ok(await service.from('docs').upload('not-an-image.txt', Buffer.from('text'), { upsert: true }));
  refused(await service.from('docs').download('not-an-image.txt', { transform: { width: 10 } }), '400');
});
