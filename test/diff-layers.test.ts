import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { diffImages, diffJson, formatDiff, formatDifference, type DiffOptions, type DiffReport } from '../src/compare/image-diff.js';
import { parsePrintedName } from '../src/compare/printed-path.js';
import { canonicalJsonBytes } from '../src/oci/canonical-json.js';
import { sha256, type Digest } from '../src/oci/digest.js';
import { MediaType } from '../src/oci/mediatypes.js';
import type { Descriptor } from '../src/oci/types.js';
import type { TarSourceEntry } from '../src/tar/entry.js';
import { encodeHeader } from '../src/tar/writer.js';
import type { ImageSource } from '../src/transports/types.js';
import { decodeName, displayName } from '../src/util/raw-name.js';

/** path, then content (a file), null (a directory) or { link } (a symlink). */
type Spec = [string, string | null | { link: string }][];

async function tar(spec: Spec): Promise<Buffer> {
  const entries: TarSourceEntry[] = spec.map(([path, content]) =>
    content === null
      ? { path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 }
      : typeof content === 'object'
        ? { path, type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 0, size: 0, linkTarget: content.link }
        : { path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: Buffer.byteLength(content), open: () => Readable.from([Buffer.from(content)]) },
  );
  // Member by member rather than through writeTar, which insists on byte order: these layers may have any order.
  const parts: Buffer[] = [];
  for (const [i, entry] of entries.entries()) {
    const content = spec[i]![1];
    const bytes = typeof content === 'string' ? Buffer.from(content) : Buffer.alloc(0);
    parts.push(encodeHeader(entry), bytes, Buffer.alloc((512 - (bytes.length % 512)) % 512));
  }
  return Buffer.concat([...parts, Buffer.alloc(1024)]);
}

/** An in-memory image with uncompressed layers. */
async function image(layers: Spec[], settings: Record<string, unknown> = {}): Promise<ImageSource> {
  const blobs = new Map<Digest, Buffer>();
  const descriptors: Descriptor[] = [];
  for (const spec of layers) {
    const bytes = await tar(spec);
    blobs.set(sha256(bytes), bytes);
    descriptors.push({ mediaType: MediaType.OciLayer, digest: sha256(bytes), size: bytes.length });
  }
  const config = canonicalJsonBytes({ architecture: 'amd64', os: 'linux', ...settings, rootfs: { type: 'layers', diff_ids: descriptors.map((d) => d.digest) } });
  blobs.set(sha256(config), config);
  const manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: sha256(config), size: config.length }, layers: descriptors };
  const bytes = canonicalJsonBytes(manifest);
  const descriptor: Descriptor = { mediaType: MediaType.OciManifest, digest: sha256(bytes), size: bytes.length };
  return {
    root: async () => ({ descriptor, raw: { bytes, digest: descriptor.digest, value: manifest } }),
    openBlob: async (d) => Readable.from([blobs.get(d.digest)!]),
    close: async () => {},
  };
}

async function diff(a: Spec[], b: Spec[], options: DiffOptions = {}): Promise<DiffReport> {
  return diffImages({ label: 'A', source: await image(a) }, { label: 'B', source: await image(b) }, options);
}

const short = (text: string): string => sha256(text).slice(7, 23);

test('multi-layer images are compared layer by layer and on their merged view, whiteouts applied', async () => {
  const base: Spec = [['a', null], ['a/x', 'one'], ['a/y', 'why']];
  const report = await diff([base, [['a', null], ['a/.wh.y', ''], ['b', null], ['b/z', 'zed']]], [base, [['a', null], ['a/.wh..wh..opq', ''], ['a/x', 'two']]]);
  const entries = report.differences.filter((d) => d.level === 'entry');
  assert.deepEqual(
    entries.map((d) => [d.layer, formatDifference(d)]),
    [
      [1, '+ /a/.wh..wh..opq (file)'],
      [1, '- /a/.wh.y (file)'],
      [1, '+ /a/x (file)'],
      [1, '- /b (dir)'],
      [1, '- /b/z (file)'],
      ['merged', `~ /a/x: sha256 ${short('one')} → ${short('two')}`],
      ['merged', '- /b (dir)'],
      ['merged', '- /b/z (file)'],
    ],
  );
  assert.ok(!entries.some((d) => d.layer === 'merged' && d.path === '/a/y'), 'a/y is whited out on both sides');
  assert.equal(report.same, false);
  assert.equal(report.summary.files, 5, 'each path once, whichever views it differs in');
  assert.match(formatDiff(report), /\n\[entry\] layer 1: 5 differences\n[^]*\n\[entry\] merged: 3 differences\n/);
});

test('a layer on one side only, and entry order: layer-level differences with values; --semantic and --ignore drop the order', async () => {
  const one: Spec = [['a', 'A'], ['b', 'B']];
  const extra = await diff([one, [['c', 'C']]], [one]);
  const layer = extra.differences.filter((d) => d.level === 'layer');
  assert.equal(layer.length, 1);
  assert.deepEqual({ ...layer[0], before: undefined }, { kind: 'removed', level: 'layer', path: 'layers[1]', layer: 1, before: undefined });
  const before = layer[0]!.before as { digest: string; diffId: string; size: number };
  assert.equal(before.digest, sha256(await tar([['c', 'C']])));
  assert.equal(before.diffId, before.digest, 'uncompressed');
  assert.equal(typeof before.size, 'number');
  assert.match(extra.summary.text, /^1 file differs; 1 layer on one side only$/);

  const reordered = await diff([[['a', 'A'], ['b', 'B']]], [[['b', 'B'], ['a', 'A']]]);
  assert.deepEqual(reordered.differences.filter((d) => d.level !== 'manifest' && d.level !== 'config'), [{ kind: 'changed', level: 'layer', path: 'layers[0]', layer: 0, before: { entryOrder: '/a' }, after: { entryOrder: '/b' } }]);
  assert.equal(reordered.summary.text, 'entry order differs (layer 0)');
  assert.equal(reordered.summary.files, 0);
  assert.ok((await diff([[['a', 'A'], ['b', 'B']]], [[['b', 'B'], ['a', 'A']]], { semantic: true })).differences.every((d) => d.level !== 'layer'));
  assert.ok((await diff([[['a', 'A'], ['b', 'B']]], [[['b', 'B'], ['a', 'A']]], { ignore: ['layers[0]'] })).differences.every((d) => d.level !== 'layer'));
});

/** Names as a layer holds them: \xe9 alone is not UTF-8; "é" is. Both must stay two different paths. */
const RAW = decodeName(Buffer.from('srv/caf\xe9', 'latin1'));
const UTF8 = 'srv/café';

test('names that are not UTF-8: JSON keeps them apart, printable and exact; the printed form round-trips through --ignore', async () => {
  const a: Spec = [['srv', null], [RAW, 'one'], [UTF8, 'one'], ['srv/link', { link: decodeName(Buffer.from('caf\xe9', 'latin1')) }], ['srv/x[1]', 'one'], ['srv/x1', 'one']];
  const b: Spec = [['srv', null], [RAW, 'two'], [UTF8, 'two'], ['srv/link', { link: 'cafe' }], ['srv/x[1]', 'two'], ['srv/x1', 'two']];
  const report = await diff([a], [b]);
  const text = JSON.stringify(diffJson(report));
  assert.ok(!/\\ud[89a-f]/i.test(text) && !text.includes('\ufffd'), 'no lone surrogates or replacement characters in the JSON');
  const doc = JSON.parse(text) as ReturnType<typeof diffJson>;
  const entries = doc.differences.filter((d) => d.level === 'entry');
  assert.deepEqual(entries.map((d) => d.path), ['/srv/café', '"/srv/caf\\xe9"', '/srv/link', '/srv/x1', '/srv/x[1]']);
  assert.deepEqual(entries.find((d) => d.path === '/srv/link')!.before, { linkTarget: '"caf\\xe9"' });
  assert.deepEqual(entries.find((d) => d.path === '/srv/link')!.after, { linkTarget: 'cafe' });
  // The printed form decodes to the raw name, and to nothing else.
  assert.equal(parsePrintedName('"/srv/caf\\xe9"'), `/${RAW}`);
  assert.equal(parsePrintedName('/srv/café'), `/${UTF8}`);
  assert.match(formatDiff(report), /\n {2}~ "\/srv\/caf\\xe9": sha256 /);

  // Each printed path given to --ignore removes exactly its difference: the raw and the UTF-8 name are not confused,
  // and a path that reads as a glob (x[1]) is taken as printed, not as a pattern matching x1.
  for (const path of entries.map((d) => d.path)) {
    const ignored = await diff([a], [b], { ignore: [path] });
    assert.deepEqual(JSON.parse(JSON.stringify(diffJson(ignored).differences)), doc.differences.filter((d) => d.path !== path), path);
  }
  // Globs apply to raw names too, quoted or not.
  const globbed = await diff([a], [b], { ignore: ['"/srv/*\\xe9"'] });
  assert.deepEqual(globbed.differences.filter((d) => d.level === 'entry').map((d) => d.path), ['/srv/café', '/srv/link', '/srv/x1', '/srv/x[1]']);
  const all = await diff([a], [b], { ignore: ['srv/*', '!srv/x1'] });
  assert.deepEqual(all.differences.filter((d) => d.level === 'entry').map((d) => d.path), ['/srv/x1']);
});

test('printed names parse back to the same bytes, whatever they hold; malformed quoted forms are refused', () => {
  const names = [
    'plain/name',
    '"starts/with/quote',
    'back\\slash',
    'tab\there',
    'new\nline',
    'nul\u0000x',
    'del\u007f',
    'c1\u0085',
    'sep\u2028',
    'emoji😀',
    decodeName(Buffer.from([0x61, 0xff, 0xfe, 0x62])),
    decodeName(Buffer.from([0xed, 0xa0, 0x80])), // an encoded surrogate: three raw bytes
    decodeName(Buffer.from([0xc3])),
    decodeName(Buffer.from('x"\\\xe9', 'latin1')),
  ];
  for (const name of names) assert.equal(parsePrintedName(displayName(name)), name, JSON.stringify(name));
  for (const bad of ['"', '"abc', '"a"b"', '"\\q"', '"\\x4"', '"\\u12"', '"\\"']) assert.equal(parsePrintedName(bad), undefined, bad);
});

test('config keys and values an attacker chose: terminal-safe in text, exact values in JSON, the printed path ignorable', async () => {
  const key = 'evil"]\u009b31m\u001b[2J';
  const layers: Spec[] = [[['f', 'x']]];
  const a = { config: { Labels: { [key]: 'one', plain: 'same' } } };
  const b = { config: { Labels: { [key]: 'two\u2028\u0085', plain: 'same', added: { nested: [1, null] } } } };
  const report = diffImages({ label: 'A', source: await image(layers, a) }, { label: 'B', source: await image(layers, b) });
  const config = (await report).differences.filter((d) => d.level === 'config');
  assert.deepEqual(
    config.map(({ kind, path, before, after }) => ({ kind, path, before, after })),
    [
      { kind: 'added', path: 'config.Labels.added', before: undefined, after: { nested: [1, null] } },
      { kind: 'changed', path: 'config.Labels["evil\\"]\\u009b31m\\u001b[2J"]', before: 'one', after: 'two\u2028\u0085' },
    ],
  );
  const text = formatDiff(await report);
  assert.ok(![...text].some((c) => (c < ' ' && c !== '\n') || (c >= '\u007f' && c <= '\u009f') || c === '\u2028' || c === '\u2029'), 'no control characters or separators reach the terminal');
  assert.match(text, /\n {2}~ config\.Labels\["evil\\"\]\\u009b31m\\u001b\[2J"\]: "one" → "two\\u2028\\u0085"\n/);
  assert.match(text, /\n {2}\+ config\.Labels\.added: \{"nested":\[1,null\]\}\n/);
  const ignored = await diffImages({ label: 'A', source: await image(layers, a) }, { label: 'B', source: await image(layers, b) }, { ignore: [config[1]!.path] });
  assert.deepEqual(ignored.differences.filter((d) => d.level === 'config').map((d) => d.path), ['config.Labels.added']);
});
