import fc from 'fast-check';
import { before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { parseBuildInfo } from '../src/pacman/buildinfo.js';
import { parseDependency, satisfies, versionSatisfies, formatDependency } from '../src/pacman/depend.js';
import { parseDesc, readFilesEntry, readSyncDesc } from '../src/pacman/desc.js';
import { parseKeyValueLines } from '../src/pacman/key-value.js';
import { parseMtree } from '../src/pacman/mtree.js';
import { buildPackage, type BuiltPackage } from '../src/example/package-writer.js';
import { parsePacmanConf } from '../src/pacman/pacman-conf.js';
import { parsePkgInfo } from '../src/pacman/pkginfo.js';
import { buildRepoDatabases, repoPackageFromBuilt } from '../src/example/repo-writer.js';
import { applySigLevelTokens, emptySigLevelSetting, parseSigLevel } from '../src/pacman/siglevel.js';
import { readSyncDb } from '../src/pacman/syncdb.js';
import { splitVersion, vercmp } from '../src/pacman/version.js';
import { encodeHeader } from '../src/tar/writer.js';
import { applyTextEdits, fuzzParameters, hostileText, mutatedLines, parsesOrRefuses, parsesOrRefusesAsync, textEdits } from './support/fuzz.js';

/** A real package's metadata files and its sync database entry, as samples to mutate. */
let sample: BuiltPackage;
let desc: string;

before(async () => {
  sample = await buildPackage({
    pkgname: 'fuzz-sample',
    pkgver: '1.2.3',
    pkgrel: '4',
    epoch: 1,
    pkgdesc: 'A sample package for the fuzz tests',
    url: 'https://example.invalid/fuzz',
    arch: 'x86_64',
    license: ['MIT'],
    groups: ['fuzz'],
    depends: ['glibc>=2.38', 'zlib'],
    provides: ['libfuzz.so=1-64'],
    backup: ['etc/fuzz.conf'],
    packager: 'Fuzz <fuzz@example.invalid>',
    entries: [
      { path: 'etc', type: 'dir' },
      { path: 'etc/fuzz.conf', type: 'file', content: 'a=b\n' },
      { path: 'usr/bin/fuzz', type: 'file', content: 'bin\n', mode: 0o755 },
      { path: 'usr/bin/odd name\\with\ttab', type: 'file', content: 'x' },
      { path: 'usr/lib/libfuzz.so', type: 'symlink', linkTarget: 'libfuzz.so.1' },
    ],
    sourceDateEpoch: 1700000000,
    buildinfo: { buildtoolver: '0' },
  });
  desc = [...(await buildRepoDatabases([repoPackageFromBuilt(sample)])).descs.values()][0]!;
});

/** Hostile input for a text format: random text, random bytes, or the sample mutated by lines or characters. */
const textInput = (sampleText: () => string): fc.Arbitrary<string | Buffer> =>
  fc.oneof(
    hostileText(400),
    fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)),
    fc.constant(null).chain(() => mutatedLines(sampleText())),
    textEdits().map((edits) => applyTextEdits(sampleText(), edits)),
  );

const RUNS = 3000;

const line = (max: number): fc.Arbitrary<string> => hostileText(max).map((t) => t.replace(/\n/g, ''));
/** Names with a line break or an escape sequence inside, that a parser must not copy raw into a message. */
const NASTY = ['A\rB', 'X\u001b[2JY', 'tab\there', '\u0000'];
/** Keys that name Object.prototype's properties, which a lookup table must not answer for. */
const PROTO = ['__proto__', 'toString', 'constructor', 'valueOf', 'hasOwnProperty'];
const DESC_KEYS = ['FILENAME', 'NAME', 'BASE', 'VERSION', 'DESC', 'CSIZE', 'ISIZE', 'BUILDDATE', 'DEPENDS', 'FILES', 'BACKUP', 'DATA', ...NASTY, ...PROTO];

/** desc text block by block: known and hostile keys, repeated keys, any values (a block ends at a blank line). */
const descBlocks = fc
  .array(fc.tuple(fc.oneof(fc.constantFrom(...DESC_KEYS), line(12)), fc.array(fc.oneof(line(20), fc.constantFrom('0', '-1', '1.5', '9007199254740993', '', ...NASTY)), { maxLength: 3 })), { maxLength: 8 })
  .map((blocks) => blocks.map(([key, values]) => `%${key}%\n${values.map((v) => `${v}\n`).join('')}\n`).join(''));

test('fuzz: desc blocks and typed sync/files entries', () => {
  fc.assert(
    fc.property(fc.oneof(textInput(() => desc), descBlocks), (input) =>
      parsesOrRefuses(() => {
        const blocks = parseDesc(input, 'desc');
        readSyncDesc(blocks, 'desc');
        readFilesEntry(blocks, 'files');
      }),
    ),
    fuzzParameters(RUNS),
  );
});

/** `key = value` lines: the keys of `sample` and hostile ones, repeated, with hostile values. */
const keyValueLines = (sampleText: () => string): fc.Arbitrary<string> =>
  fc.constant(null).chain(() => {
    const keys = sampleText().split('\n').map((l) => l.split(' = ')[0]!).filter((k) => k !== '' && !k.startsWith('#'));
    const entry = fc.tuple(fc.oneof(fc.constantFrom(...keys, ...NASTY, ...PROTO), line(10)), fc.oneof(line(20), fc.constantFrom('0', '-1', '1.5', '9007199254740993', '', '1', '2', ...NASTY)));
    return fc.array(entry, { maxLength: 12 }).map((lines) => lines.map(([k, v]) => `${k} = ${v}\n`).join(''));
  });

test('fuzz: .PKGINFO, .BUILDINFO and key = value lines', () => {
  fc.assert(
    fc.property(fc.oneof(textInput(() => sample.pkginfo), keyValueLines(() => sample.pkginfo)), (input) => parsesOrRefuses(() => parsePkgInfo(input, '.PKGINFO'))),
    fuzzParameters(RUNS),
  );
  fc.assert(
    fc.property(fc.oneof(textInput(() => sample.buildinfo), keyValueLines(() => sample.buildinfo)), (input) => parsesOrRefuses(() => parseBuildInfo(input, '.BUILDINFO'))),
    fuzzParameters(RUNS),
  );
  fc.assert(
    fc.property(textInput(() => sample.pkginfo), (input) => parsesOrRefuses(() => parseKeyValueLines(input, 'key-value'))),
    fuzzParameters(RUNS),
  );
});

test('fuzz: .MTREE, plain and gzip', () => {
  fc.assert(
    fc.property(textInput(() => sample.mtreeText), fc.boolean(), fc.nat(), (input, gzip, cut) => {
      const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
      // gzip'd, sometimes cut short: the decompressor's errors must be refusals too.
      const packed = gzip ? gzipSync(bytes).subarray(0, cut % 3 === 0 ? undefined : cut % (bytes.length + 20)) : input;
      parsesOrRefuses(() => parseMtree(packed, '.MTREE'));
    }),
    fuzzParameters(RUNS),
  );
});

const SIGLEVEL_TOKENS = ['Never', 'Optional', 'Required', 'TrustedOnly', 'TrustAll'].flatMap((t) => [t, `Package${t}`, `Database${t}`]);

test('fuzz: SigLevel values', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.constantFrom(...SIGLEVEL_TOKENS, 'Package', 'Database', ''), hostileText(12)), { maxLength: 8 }), (tokens) => {
      parsesOrRefuses(() => parseSigLevel(tokens.join(' '), 'SigLevel'));
      parsesOrRefuses(() => applySigLevelTokens(emptySigLevelSetting(), tokens, 'pacman.conf line 1'));
    }),
    fuzzParameters(RUNS),
  );
});

const VERSION_PART = fc.oneof(fc.stringMatching(/^[0-9a-z.+~:_-]{0,12}$/), hostileText(12));

test('fuzz: versions, vercmp and dependencies', () => {
  fc.assert(
    fc.property(VERSION_PART, VERSION_PART, hostileText(40), (a, b, text) => {
      parsesOrRefuses(() => {
        splitVersion(a);
        const ab = vercmp(a, b);
        const ba = vercmp(b, a);
        // vercmp is an order: antisymmetric and reflexive, whatever the strings.
        if (ab !== -ba || vercmp(a, a) !== 0) throw new Error(`vercmp(${JSON.stringify(a)}, ${JSON.stringify(b)}) = ${ab}, reversed ${ba}`);
      });
      parsesOrRefuses(() => {
        const dep = parseDependency(text);
        if (formatDependency(dep) !== text) throw new Error(`parseDependency(${JSON.stringify(text)}) does not round-trip`);
        satisfies(dep, a, b);
        versionSatisfies(a, dep.op, dep.version);
      });
    }),
    fuzzParameters(RUNS),
  );
});

const CONF_SAMPLE = [
  '[options]',
  'RootDir = /',
  'Architecture = auto x86_64',
  'SigLevel = Required DatabaseOptional',
  'LocalFileSigLevel = Optional',
  'HoldPkg = pacman glibc',
  'NoExtract = usr/share/man/* !usr/share/man/man1/*',
  'ParallelDownloads = 5',
  'Color',
  'Include = /etc/pacman.d/extra.conf',
  '',
  '[core]',
  'Usage = Sync Install',
  'SigLevel = PackageRequired',
  'Server = https://mirror.example.invalid/$repo/os/$arch',
  'Include = /etc/pacman.d/mirrorlist',
  '',
].join('\n');

/** pacman.conf line by line: sections and directives, known and hostile, with hostile values (Include names a file). */
const confLines = fc
  .array(
    fc.oneof(
      fc.oneof(fc.constantFrom('options', 'core', 'extra', '', ...NASTY, ...PROTO), line(10)).map((name) => `[${name}]`),
      fc
        .tuple(
          fc.constantFrom('Include', 'Server', 'SigLevel', 'Usage', 'CleanMethod', 'ParallelDownloads', 'Architecture', 'HoldPkg', 'NoExtract', 'RootDir', 'Color', 'Unknown', ...NASTY, ...PROTO),
          fc.oneof(fc.constant(undefined), line(24), fc.constantFrom('/etc/pacman.d/mirrorlist', '/etc/pacman.d/*', 'auto', 'All', 'Required', '0', '99999999999', '-1', ...NASTY.map((n) => `/etc/${n}`))),
        )
        .map(([key, value]) => (value === undefined ? key : `${key} = ${value}`)),
    ),
    { maxLength: 12 },
  )
  .map((lines) => lines.join('\n'));

test('fuzz: pacman.conf with includes', async () => {
  await fc.assert(
    fc.asyncProperty(fc.oneof(textInput(() => CONF_SAMPLE), confLines), textInput(() => 'Server = https://a.invalid/$repo\n[extra]\nServer = file:///srv\n'), async (main, included) => {
      const files = new Map<string, string | Buffer>([
        ['/etc/pacman.conf', main],
        ['/etc/pacman.d/mirrorlist', included],
        ['/etc/pacman.d/extra.conf', '[options]\nInclude = /etc/pacman.conf\n'], // an include loop
      ]);
      const sources = {
        readFile: (path: string) => {
          const content = files.get(path);
          if (content === undefined) throw new Error(`ENOENT: ${path}`);
          return content;
        },
        listDirectory: (path: string) => [...files.keys()].filter((p) => p.startsWith(`${path}/`)).map((p) => p.slice(path.length + 1).split('/')[0]!),
        machine: 'x86_64',
      };
      await parsesOrRefusesAsync(() => parsePacmanConf('/etc/pacman.conf', sources));
    }),
    { ...fuzzParameters(RUNS), timeout: 5000 },
  );
});

/** A plain tar of `members` (name and content), as a sync database's archive holds them. */
function tarOf(members: { name: string; type: 'file' | 'dir' | 'symlink'; content: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const size = m.type === 'file' ? m.content.length : 0;
    parts.push(encodeHeader({ path: m.name, type: m.type, mode: 0o644, uid: 0, gid: 0, mtime: 0, size, ...(m.type === 'symlink' ? { linkTarget: 'x' } : {}) }));
    if (size > 0) parts.push(m.content, Buffer.alloc((512 - (size % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

test('fuzz: sync databases (member layout and desc contents)', async () => {
  const dirName = fc.oneof(fc.constant('fuzz-sample-1:1.2.3-4'), fc.constant('fuzz-sample-1:1.2.3-5'), hostileText(20).filter((s) => s !== '' && !s.includes('\0')));
  const member = fc.record({
    name: fc.tuple(dirName, fc.constantFrom('/desc', '/files', '/other', '', '/desc/x')).map(([d, m]) => d + m),
    type: fc.constantFrom('file', 'file', 'file', 'dir', 'symlink') as fc.Arbitrary<'file' | 'dir' | 'symlink'>,
    content: textInput(() => desc).map((c) => (typeof c === 'string' ? Buffer.from(c, 'utf8') : c)),
  });
  await fc.assert(
    fc.asyncProperty(fc.array(member, { maxLength: 6 }), async (members) => {
      const valid = members.filter((m) => m.name !== '' && !m.name.startsWith('/') && !m.name.endsWith('/'));
      const tar = tarOf(valid);
      await parsesOrRefusesAsync(() => readSyncDb((async function* () {
        yield tar;
      })(), 'fuzz.db'));
    }),
    { ...fuzzParameters(RUNS), timeout: 5000 },
  );
});
