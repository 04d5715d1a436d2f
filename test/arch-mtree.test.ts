import assert from 'node:assert/strict';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { parseMtree, unescapeMtree } from '../src/pacman/mtree.js';

const MTREE = `#mtree
/set type=file uid=0 gid=0 mode=644
./.BUILDINFO time=1700000000.0 size=570 md5digest=9e58038093caa3fb87f04c33554d8701 sha256digest=7f30f8d5a6e5cacb7ca1749ee9535d555c9a52776bdca72b468e8d9ba890fcb5
./usr time=1700000000.0 mode=755 type=dir
./usr/share/x/f time=1700000000.5 size=3 sha256digest=98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4
./usr/share/x/l time=1700000000.0 mode=777 type=link link=f
/set mode=755
./usr/bin/with\\040space time=1 size=0
/unset mode
./usr/bin/back\\\\slash time=1 \\
    size=9
`;

test('parseMtree applies /set and /unset and reads the keywords', () => {
  const entries = parseMtree(zlib.gzipSync(MTREE));
  assert.deepEqual(
    entries.map((e) => e.path),
    ['.BUILDINFO', 'usr', 'usr/share/x/f', 'usr/share/x/l', 'usr/bin/with space', 'usr/bin/back\\slash'],
  );
  const [buildinfo, usr, file, link, spaced, slashed] = entries;
  assert.deepEqual({ ...buildinfo, keywords: undefined }, {
    path: '.BUILDINFO',
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    time: { sec: 1700000000, nsec: 0 },
    size: 570,
    md5: '9e58038093caa3fb87f04c33554d8701',
    sha256: '7f30f8d5a6e5cacb7ca1749ee9535d555c9a52776bdca72b468e8d9ba890fcb5',
    keywords: undefined,
  });
  assert.equal(usr!.type, 'dir');
  assert.equal(usr!.mode, 0o755);
  assert.deepEqual(file!.time, { sec: 1700000000, nsec: 5 });
  assert.equal(link!.type, 'link');
  assert.equal(link!.link, 'f');
  assert.equal(link!.mode, 0o777);
  assert.equal(spaced!.mode, 0o755);
  assert.equal(slashed!.mode, undefined);
  assert.equal(slashed!.size, 9);
  assert.equal(slashed!.uid, 0);
});

test('parseMtree accepts plain text and the classic relative format', () => {
  const classic = '/set type=file\nusr type=dir\nbin type=dir\nsh size=1\n..\nlib type=dir\nx size=2\n..\n..\ntop size=3\n';
  assert.deepEqual(
    parseMtree(classic).map((e) => e.path),
    ['usr', 'usr/bin', 'usr/bin/sh', 'usr/lib', 'usr/lib/x', 'top'],
  );
});

test('unescapeMtree decodes octal and backslash escapes', () => {
  assert.equal(unescapeMtree('a\\040b'), 'a b');
  assert.equal(unescapeMtree('a\\\\b'), 'a\\b');
  assert.equal(unescapeMtree('\\303\\251'), 'é');
  assert.equal(unescapeMtree('keep\\q'), 'keep\\q');
});

test('parseMtree names the file and line for bad input', () => {
  assert.throws(() => parseMtree('./a mode=9x\n', 'pkg .MTREE'), /pkg \.MTREE: line 1 \("a"\): mode="9x" is not a valid number/);
  assert.throws(() => parseMtree('./a type=weird\n'), /unknown type "weird"/);
  assert.throws(() => parseMtree('./a time=1.x\n'), /time="1.x"/);
  assert.throws(() => parseMtree(Buffer.from([0x1f, 0x8b, 1, 2, 3])), /\.MTREE: corrupt gzip data/);
});
