import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDesc, readFilesEntry, readSyncDesc, writeDesc } from '../src/pacman/desc.js';

const SYNC_DESC = `%FILENAME%
tinypkg-1:1.2.3-1-any.pkg.tar.zst

%NAME%
tinypkg

%BASE%
tinypkg

%VERSION%
1:1.2.3-1

%DESC%
A tiny test package

%GROUPS%
g1
g2

%CSIZE%
1159

%ISIZE%
3

%MD5SUM%
f3166979649618c9114274722ad298ee

%SHA256SUM%
a293b746267d5817a35620e180510ee47a6553f62506f67079078ee7398980c2

%PGPSIG%
aGVsbG8=

%URL%
https://example.invalid

%LICENSE%
MIT

%ARCH%
any

%BUILDDATE%
1700000000

%PACKAGER%
Unknown Packager

%REPLACES%
old

%CONFLICTS%
other

%PROVIDES%
tiny=1.2.3

%DEPENDS%
glibc>=2.0

%OPTDEPENDS%
bash: for scripts

%MAKEDEPENDS%
make

%CHECKDEPENDS%
check

%DATA%
pkgtype=pkg

%SOMETHINGNEW%
x

`;

test('parseDesc keeps key order and values; writeDesc reproduces the bytes', () => {
  const blocks = parseDesc(SYNC_DESC, 'desc');
  assert.equal([...blocks.keys()][0], 'FILENAME');
  assert.deepEqual(blocks.get('GROUPS'), ['g1', 'g2']);
  assert.equal(writeDesc(blocks), SYNC_DESC);
});

test('writeDesc omits empty keys and refuses values it cannot represent', () => {
  assert.equal(writeDesc([['NAME', ['a']], ['GROUPS', []], ['DEPENDS', ['b', 'c']]]), '%NAME%\na\n\n%DEPENDS%\nb\nc\n\n');
  assert.throws(() => writeDesc([['NAME', ['']]]), /%NAME%/);
  assert.throws(() => writeDesc([['NAME', ['a\nb']]]), /%NAME%/);
});

test('parseDesc tolerates a missing final blank line and rejects stray lines and repeats', () => {
  assert.deepEqual([...parseDesc('%NAME%\na', 'x')], [['NAME', ['a']]]);
  assert.deepEqual([...parseDesc('%FILES%\n\n%BACKUP%\n', 'x')], [['FILES', []], ['BACKUP', []]]);
  assert.throws(() => parseDesc('%NAME%\na\n\nstray\n', 'repo.db: a-1/desc'), /repo\.db: a-1\/desc: line 4: expected a %KEY% line/);
  assert.throws(() => parseDesc('%NAME%\na\n\n%NAME%\nb\n', 'd'), /%NAME% appears twice/);
});

test('readSyncDesc types every field and warns about unknown keys', () => {
  const { value, warnings } = readSyncDesc(parseDesc(SYNC_DESC, 'desc'), 'desc');
  assert.deepEqual(value, {
    filename: 'tinypkg-1:1.2.3-1-any.pkg.tar.zst',
    name: 'tinypkg',
    base: 'tinypkg',
    version: '1:1.2.3-1',
    desc: 'A tiny test package',
    groups: ['g1', 'g2'],
    csize: 1159,
    isize: 3,
    md5sum: 'f3166979649618c9114274722ad298ee',
    sha256sum: 'a293b746267d5817a35620e180510ee47a6553f62506f67079078ee7398980c2',
    pgpsig: 'aGVsbG8=',
    url: 'https://example.invalid',
    license: ['MIT'],
    arch: 'any',
    builddate: 1700000000,
    packager: 'Unknown Packager',
    replaces: ['old'],
    conflicts: ['other'],
    provides: ['tiny=1.2.3'],
    depends: ['glibc>=2.0'],
    optdepends: ['bash: for scripts'],
    makedepends: ['make'],
    checkdepends: ['check'],
    xdata: ['pkgtype=pkg'],
  });
  assert.deepEqual(warnings, ['desc: unknown key %SOMETHINGNEW% skipped']);
});

test('readSyncDesc requires FILENAME, NAME, VERSION and checks numbers', () => {
  assert.throws(() => readSyncDesc(parseDesc('%NAME%\na\n\n%VERSION%\n1\n', 'd'), 'd'), /d: required %FILENAME% is missing/);
  assert.throws(
    () => readSyncDesc(parseDesc('%FILENAME%\nf\n\n%NAME%\na\n\n%VERSION%\n1\n\n%CSIZE%\n-1\n', 'd'), 'd'),
    /%CSIZE% "-1" is not a non-negative integer/,
  );
  assert.throws(() => readSyncDesc(parseDesc('%NAME%\na\nb\n', 'd'), 'd'), /%NAME% must have exactly one value/);
});

test('readFilesEntry reads FILES and BACKUP', () => {
  const { value } = readFilesEntry(parseDesc('%FILES%\nusr/\nusr/bin/x\n\n%BACKUP%\netc/x.conf\t0123\n\n', 'files'), 'files');
  assert.deepEqual(value, { files: ['usr/', 'usr/bin/x'], backup: ['etc/x.conf\t0123'] });
});
