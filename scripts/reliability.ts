/**
 * Reliability figures (a script that prints numbers, not a test): what repro-oci does with forged inputs, with
 * several processes sharing one cold cache, with decompression bombs and with hostile packages next to real
 * pacman. Run `npm run reliability` after `npx tsc -p tsconfig.json`; it uses the compiled dist/ and the bundled
 * example's generated archive, offline, on loopback only. RELIABILITY_ONLY=hostile,forged,concurrent,bombs picks
 * sections; RELIABILITY_KEEP=1 keeps the work directory.
 *
 *   forged inputs accepted        must be 0: a forged cache entry, mirror or blob never ends in exit 0 with
 *                                 forged bytes in the output or a positive verdict
 *   concurrent builds             8 processes at once on one cold cache, then warm, in $RELIABILITY_ROUNDS
 *                                 rounds (default 3): how many exit 0 with the genuine digest
 *   peak RSS on bombs             install of a zstd package that expands to 8 GiB; diff of two 4 GiB zstd layers
 *   hostile packages              refused by repro-oci, and what real pacman -U does with the same file
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, cp, lstat, mkdir, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compressToBuffer, decompressAuto, getCompressor } from '../src/compress/index.js';
import { generateExampleArchive } from '../src/example/generate.js';
import { canonicalJsonBytes } from '../src/oci/canonical-json.js';
import { sha256 } from '../src/oci/digest.js';
import { MediaType } from '../src/oci/mediatypes.js';
import type { Descriptor, Manifest } from '../src/oci/types.js';
import type { TarSourceEntry } from '../src/tar/entry.js';
import { encodeHeader } from '../src/tar/writer.js';
import { copyImage } from '../src/transports/copy.js';
import { bytesStream, LayoutDestination } from '../src/transports/layout.js';
import { CLI, makeTempDir, REPO_ROOT, removeDir } from '../test/support/cli.js';
import { serveDirectory } from '../test/support/http-server.js';
import { tamperFile } from '../test/support/tamper.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Peak RSS of the CLI process in MB. */
  rssMb: number;
}

/** Prints the child's own peak RSS (KiB, getrusage) to fd 3 when it exits. */
const RSS_HOOK = `data:text/javascript,${encodeURIComponent("import{writeSync}from'node:fs';process.on('exit',()=>{try{writeSync(3,String(process.resourceUsage().maxRSS))}catch{}})")}`;

function cli(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', RSS_HOOK, CLI, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, REPRO_OCI_PROGRESS: '0', REPRO_OCI_RETRY_DELAY_MS: '1', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let rss = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => (rss += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10 * 60 * 1000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, rssMb: Math.round(Number(rss) / 1024) });
    });
  });
}

const firstLine = (s: string): string => s.trim().split('\n').pop()?.slice(0, 160) ?? '';

/** sha256 over every path, type, mode, link target and content of a directory tree, in byte order of paths. */
async function treeDigest(root: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(root, rel))).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      const info = await lstat(join(root, path));
      hash.update(`${path}\0${info.mode}\0`);
      if (info.isSymbolicLink()) hash.update(await readlink(join(root, path)));
      else if (info.isFile()) for await (const chunk of createReadStream(join(root, path))) hash.update(chunk as Buffer);
      else if (info.isDirectory()) await walk(path);
      hash.update('\n');
    }
  };
  await walk('');
  return hash.digest('hex');
}

const digestOf = (run: Run): string | undefined => /sha256:[0-9a-f]{64}/.exec(run.stdout)?.[0];

interface Lock {
  packages: { name: string; filename: string; sha256: string; urls: string[] }[];
}

/** The example's archive, lock and genuine image; packages by name. */
interface Example {
  dir: string;
  spec: string;
  lock: Lock;
  /** Flat-mirror options that reach both of the example's repositories over HTTP. */
  mirrors: string[];
  packageFile: (name: string) => string;
  genuine: string;
  genuineLayout: string;
  genuineTree: string;
  /** A well-formed `hello` package of the locked name and version whose usr/bin/hello says something else. */
  forgedHello: string;
}

async function setUpExample(work: string, serverUrl: (dir: string) => Promise<string>): Promise<Example> {
  const dir = join(work, 'example');
  await generateExampleArchive(join(REPO_ROOT, 'examples', 'hello-arch', 'packages.yaml'), dir);
  await copyFile(join(REPO_ROOT, 'examples', 'hello-arch', 'spec.yaml'), join(dir, 'spec.yaml'));
  const spec = join(dir, 'spec.yaml');
  must(await cli(['lock', spec]), 'lock');
  const lock = JSON.parse(await readFile(join(dir, 'spec.lock.json'), 'utf8')) as Lock;
  const repos = ['hello-core', 'hello-extra'].map((r) => join(dir, 'repo', r, 'os', 'x86_64'));
  const mirrors = await Promise.all(repos.map(serverUrl));
  const packageFile = (name: string): string => {
    const pkg = lock.packages.find((p) => p.name === name)!;
    const found = repos.map((r) => join(r, pkg.filename));
    return found.find((f) => spawnSync('test', ['-f', f]).status === 0)!;
  };
  const genuineLayout = join(work, 'genuine');
  const built = must(await cli(['build', spec, '-o', `oci:${genuineLayout}:hello`, '--cache', join(work, 'cache-genuine')]), 'genuine build');
  const tree = join(work, 'genuine-tree');
  must(await cli(['install', join(dir, 'spec.lock.json'), '--root', tree, '--cache', join(work, 'cache-genuine')]), 'genuine install');
  const forgedArchive = join(work, 'forged-archive');
  const yaml = (await readFile(join(REPO_ROOT, 'examples', 'hello-arch', 'packages.yaml'), 'utf8')).replace('exec cat /usr/lib/libgreeting.txt', 'exec cat /etc/shadow');
  await writeFile(join(work, 'forged-packages.yaml'), yaml);
  await generateExampleArchive(join(work, 'forged-packages.yaml'), forgedArchive);
  const hello = lock.packages.find((p) => p.name === 'hello')!;
  const forgedHello = join(forgedArchive, 'repo', 'hello-extra', 'os', 'x86_64', hello.filename);
  return { dir, spec, lock, mirrors, packageFile, genuine: digestOf(built)!, genuineLayout, genuineTree: await treeDigest(tree), forgedHello };
}

function must(run: Run, what: string): Run {
  if (run.code !== 0) throw new Error(`${what} failed (exit ${run.code}): ${run.stderr.trim()}`);
  return run;
}

/** The raw tar of a package, cut just before its last regular file (a package whose tar "ends early"). */
async function truncatedPackage(file: string, padding: boolean): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of decompressAuto(createReadStream(file), file)) chunks.push(c);
  const tar = Buffer.concat(chunks);
  let offset = 0;
  let lastFile = -1;
  while (offset + 512 <= tar.length && !tar.subarray(offset, offset + 512).every((b) => b === 0)) {
    const size = parseInt(tar.subarray(offset + 124, offset + 136).toString('latin1').replace(/\0.*$/, '').trim() || '0', 8);
    const type = String.fromCharCode(tar[offset + 156]!);
    const name = tar.subarray(offset, offset + 100).toString('latin1').replace(/\0.*$/, '');
    if ((type === '0' || type === '\0') && !name.startsWith('.')) lastFile = offset;
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  const cut = tar.subarray(0, lastFile);
  return compressToBuffer([padding ? Buffer.concat([cut, Buffer.alloc(1024)]) : cut], getCompressor('zstd'));
}

interface Forgery {
  name: string;
  accepted: boolean;
  outcome: string;
}

async function forgeries(work: string, ex: Example): Promise<Forgery[]> {
  const out: Forgery[] = [];
  const hello = ex.lock.packages.find((p) => p.name === 'hello')!;
  const lockFile = join(ex.dir, 'spec.lock.json');

  // A cache whose entry for `hello` holds other bytes; warm for every other package.
  const forgedCache = async (name: string, bytes: Buffer): Promise<string> => {
    const cache = join(work, `cache-${name}`);
    await cp(join(work, 'cache-genuine'), cache, { recursive: true });
    await writeFile(join(cache, 'blobs', 'sha256', hello.sha256), bytes);
    return cache;
  };
  const forgedEntries: [string, Buffer][] = [
    ['another valid package of the same name and version', await readFile(ex.forgedHello)],
    ['tar ending early, no padding', await truncatedPackage(ex.packageFile('hello'), false)],
    ['tar ending early, end blocks', await truncatedPackage(ex.packageFile('hello'), true)],
  ];
  for (const [i, [label, bytes]] of forgedEntries.entries()) {
    const cache = await forgedCache(`forged-${i}`, bytes);
    const build = await cli(['build', ex.spec, '-o', `oci:${join(work, `forged-build-${i}`)}:x`, '--cache', cache]);
    const built = digestOf(build);
    out.push({ name: `cache entry: ${label} → build`, accepted: build.code === 0 && built !== ex.genuine, outcome: build.code === 0 ? (built === ex.genuine ? 'genuine digest (entry evicted and fetched again)' : `exit 0 with ${built}`) : `exit ${build.code}: ${firstLine(build.stderr)}` });
    const cache2 = await forgedCache(`forged-install-${i}`, bytes);
    const root = join(work, `forged-root-${i}`);
    const install = await cli(['install', lockFile, '--root', root, '--cache', cache2]);
    const same = install.code === 0 && (await treeDigest(root)) === ex.genuineTree;
    out.push({ name: `cache entry: ${label} → install --root`, accepted: install.code === 0 && !same, outcome: install.code === 0 ? (same ? 'genuine tree (entry evicted and fetched again)' : 'exit 0 with a different tree') : `exit ${install.code}: ${firstLine(install.stderr)}` });
  }

  // A mirror that serves another package under the locked file name.
  const evilMirror = join(work, 'evil-mirror');
  await mkdir(evilMirror, { recursive: true });
  await copyFile(ex.forgedHello, join(evilMirror, hello.filename));
  const server = await serveDirectory(evilMirror);
  try {
    const build = await cli(['build', ex.spec, '-o', `oci:${join(work, 'mirror-build')}:x`, '--cache', join(work, 'cache-mirror'), '--mirror', server.url]);
    const built = digestOf(build);
    out.push({ name: 'mirror serving another package under the locked name → build', accepted: build.code === 0 && built !== ex.genuine, outcome: build.code === 0 ? (built === ex.genuine ? 'genuine digest (mirror refused, lock URL used)' : `exit 0 with ${built}`) : `exit ${build.code}: ${firstLine(build.stderr)}` });
  } finally {
    await server.close();
  }

  // Images: one byte of a file changed (a new, self-consistent image), and the genuine manifest over corrupt blobs.
  const rebuildArgs = (ref: string, cache: string): string[] => ['rebuild', ref, '--cache', cache, ...ex.mirrors.flatMap((m) => ['--mirror', m])];
  const tampered = join(work, 'tampered');
  await tamperFile(ex.genuineLayout, 'hello', 'usr/bin/hello', (b) => Buffer.concat([b, Buffer.from('#')]), tampered);
  const r1 = await cli(rebuildArgs(`oci:${tampered}:hello`, join(work, 'cache-rebuild-1')));
  out.push({ name: 'image with one file changed → rebuild', accepted: r1.code === 0, outcome: `exit ${r1.code}: ${firstLine(r1.code === 1 ? r1.stdout.split('\n')[0]! : r1.stderr || r1.stdout)}` });

  const corrupt = join(work, 'corrupt-layer');
  await cp(ex.genuineLayout, corrupt, { recursive: true });
  const index = JSON.parse(await readFile(join(corrupt, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const manifest = JSON.parse(await readFile(join(corrupt, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as Manifest;
  const layerPath = join(corrupt, 'blobs', 'sha256', manifest.layers[0]!.digest.slice(7));
  const layer = await readFile(layerPath);
  layer[layer.length - 5]! ^= 0xff; // the gzip trailer: every entry (and the recipe) still reads back
  await writeFile(layerPath, layer);
  const r2 = await cli(rebuildArgs(`oci:${corrupt}:hello`, join(work, 'cache-rebuild-2')));
  out.push({ name: 'genuine manifest, layer blob with a corrupt tail → rebuild', accepted: r2.code === 0, outcome: `exit ${r2.code}: ${firstLine(r2.stderr || r2.stdout)}` });
  const d = await cli(['diff', `oci:${ex.genuineLayout}:hello`, `oci:${corrupt}:hello`]);
  out.push({ name: 'genuine manifest, layer blob with a corrupt tail → diff against the genuine image', accepted: d.code === 0, outcome: `exit ${d.code}: ${firstLine(d.stderr || d.stdout)}` });
  await rm(layerPath);
  const d2 = await cli(['diff', `oci:${ex.genuineLayout}:hello`, `oci:${corrupt}:hello`]);
  out.push({ name: 'genuine manifest, layer blob missing → diff against the genuine image', accepted: d2.code === 0, outcome: `exit ${d2.code}: ${firstLine(d2.stderr || d2.stdout)}` });
  return out;
}

/**
 * Rounds of `processes` builds at once: each round on a fresh cold cache, then once more on the warm one. Returns
 * how many builds of each kind exited 0 with the genuine digest.
 */
async function concurrentBuilds(work: string, ex: Example, processes: number, rounds: number): Promise<{ cold: number; warm: number; total: number }> {
  let cold = 0;
  let warm = 0;
  for (let r = 0; r < rounds; r++) {
    const cache = join(work, `cache-shared-${r}`);
    for (const label of [`cold-${r}`, `warm-${r}`]) {
      const runs = await Promise.all(
        Array.from({ length: processes }, (_, i) => cli(['build', ex.spec, '-o', `oci:${join(work, `${label}-${i}`)}:x`, '--cache', cache, ...ex.mirrors.flatMap((m) => ['--mirror', m])])),
      );
      runs.filter((run) => run.code !== 0).forEach((run) => console.log(`  ${label} build failed (exit ${run.code}): ${firstLine(run.stderr)}`));
      const genuine = runs.filter((run) => run.code === 0 && digestOf(run) === ex.genuine).length;
      if (label.startsWith('cold')) cold += genuine;
      else warm += genuine;
    }
  }
  return { cold, warm, total: processes * rounds };
}

/** A tar stream: the given members, then one file of `size` zero bytes, then the end blocks — through `zstd -1`. */
function zstdBomb(members: { path: string; content: Buffer }[], bombPath: string, size: number, out: string): Promise<{ uncompressedSha256: string }> {
  return new Promise((resolve, reject) => {
    const header = (path: string, bytes: number): Buffer => encodeHeader({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1700000000, size: bytes } as TarSourceEntry);
    const parts: Buffer[] = [];
    for (const m of members) parts.push(header(m.path, m.content.length), m.content, Buffer.alloc((512 - (m.content.length % 512)) % 512));
    parts.push(header(bombPath, size));
    const head = Buffer.concat(parts);
    const tail = Buffer.alloc((512 - (size % 512)) % 512 + 1024);
    const hash = createHash('sha256');
    const zstd = spawn('zstd', ['-1', '-q', '-c', '-o', out], { stdio: ['pipe', 'ignore', 'inherit'] });
    zstd.on('error', reject);
    zstd.on('close', (code) => (code === 0 ? resolve({ uncompressedSha256: hash.digest('hex') }) : reject(new Error(`zstd exited ${code}`))));
    const zero = Buffer.alloc(1 << 20);
    let left = size;
    const write = (chunk: Buffer): boolean => {
      hash.update(chunk);
      return zstd.stdin.write(chunk);
    };
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, zero.length);
        left -= n;
        if (!write(n === zero.length ? zero : zero.subarray(0, n))) {
          zstd.stdin.once('drain', pump);
          return;
        }
      }
      write(tail);
      zstd.stdin.end();
    };
    write(head);
    pump();
  });
}

async function bombs(work: string): Promise<{ installRssMb: number; install: string; diffRssMb: number; diff: string }> {
  // A package whose one file expands to 8 GiB, in a lock of its own.
  const dir = join(work, 'bomb');
  await mkdir(dir, { recursive: true });
  const pkginfo = Buffer.from('pkgname = bomb\npkgver = 1-1\narch = any\nsize = 1000\n');
  const file = join(dir, 'bomb-1-1-any.pkg.tar.zst');
  await zstdBomb([{ path: '.PKGINFO', content: pkginfo }], 'usr/share/bomb', 8 * 1024 ** 3, file);
  const bytes = await readFile(file);
  const lock = {
    lockVersion: 1,
    specDigest: sha256('bomb'),
    architecture: 'x86_64',
    repositories: [],
    targets: ['bomb'],
    sigLevel: 'Never',
    packages: [{ name: 'bomb', version: '1-1', arch: 'any', repository: 'local', filename: 'bomb-1-1-any.pkg.tar.zst', urls: [`file://${file}`], sha256: sha256(bytes).slice(7), csize: bytes.length, isize: 1000, builddate: 1700000000, reason: 'explicit' }],
  };
  await writeFile(join(dir, 'lock.json'), JSON.stringify(lock));
  const install = await cli(['install', join(dir, 'lock.json'), '--root', join(dir, 'root'), '--cache', join(dir, 'cache')]);

  // Two single-layer images whose layers expand to 4 GiB of zeros each, under different names (so both are read).
  const layouts: string[] = [];
  for (const label of ['a', 'b']) {
    const layerFile = join(dir, `layer-${label}.tar.zst`);
    const { uncompressedSha256 } = await zstdBomb([], `zeros-${label}`, 4 * 1024 ** 3, layerFile);
    const layerBytes = await readFile(layerFile);
    const config = canonicalJsonBytes({ architecture: 'amd64', os: 'linux', config: { Labels: { side: label } }, rootfs: { type: 'layers', diff_ids: [`sha256:${uncompressedSha256}`] } });
    const layer: Descriptor = { mediaType: MediaType.OciLayerZstd, digest: sha256(layerBytes), size: layerBytes.length };
    const manifest = canonicalJsonBytes({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: sha256(config), size: config.length }, layers: [layer] });
    const blobs = new Map([[layer.digest, layerBytes], [sha256(config), config], [sha256(manifest), manifest]]);
    const root: Descriptor = { mediaType: MediaType.OciManifest, digest: sha256(manifest), size: manifest.length };
    const staged = {
      root: async () => ({ descriptor: root, raw: { bytes: manifest, digest: root.digest, value: JSON.parse(manifest.toString()) as unknown } }),
      openBlob: async (d: Descriptor) => bytesStream(blobs.get(d.digest)!),
      close: async () => {},
    };
    const layout = join(dir, `image-${label}`);
    await copyImage(staged, await LayoutDestination.create(layout, 'x'));
    layouts.push(`oci:${layout}:x`);
  }
  const diff = await cli(['diff', ...layouts, '--report-dir', join(dir, 'report')]);
  return { installRssMb: install.rssMb, install: `exit ${install.code}: ${firstLine(install.stderr)}`, diffRssMb: diff.rssMb, diff: `exit ${diff.code}: ${firstLine(diff.stderr || diff.stdout)}` };
}

// ---------------------------------------------------------------------------------------------------------------
// Hostile packages, next to real pacman

interface Member {
  name: string | Buffer;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink' | 'char';
  content?: string;
  link?: string;
  mode?: number;
}

/** A ustar header written field by field, so that any name (absolute, "..", not UTF-8) can be expressed. */
function rawHeader(m: Member, size: number): Buffer {
  const h = Buffer.alloc(512);
  const put = (at: number, width: number, value: string | Buffer): void => void (typeof value === 'string' ? Buffer.from(value, 'latin1') : value).copy(h, at, 0, width);
  const octal = (at: number, width: number, value: number): void => put(at, width, `${value.toString(8).padStart(width - 1, '0')}\0`);
  // Directories end in "/" as bsdtar writes them (libalpm looks directories up in its file list that way).
  const name = typeof m.name === 'string' ? Buffer.from(m.name) : m.name;
  put(0, 100, m.type === 'dir' && !name.toString('latin1').endsWith('/') ? Buffer.concat([name, Buffer.from('/')]) : name);
  octal(100, 8, m.mode ?? (m.type === 'dir' ? 0o755 : 0o644));
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, 1700000000);
  put(156, 1, { file: '0', hardlink: '1', symlink: '2', char: '3', dir: '5' }[m.type ?? 'file']);
  if (m.link) put(157, 100, m.link);
  put(257, 8, 'ustar\x0000');
  octal(329, 8, 1);
  octal(337, 8, 3);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  put(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

function hostilePackage(name: string, members: Member[]): Promise<Buffer> {
  const pkginfo = `pkgname = ${name}\npkgver = 1-1\npkgdesc = hostile\nurl = https://example.invalid\nbuilddate = 1700000000\npackager = nobody\nsize = 4096\narch = any\n`;
  const parts: Buffer[] = [];
  for (const m of [{ name: '.PKGINFO', content: pkginfo }, ...members]) {
    const content = Buffer.from(m.content ?? '');
    parts.push(rawHeader(m, content.length), content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return compressToBuffer([Buffer.concat(parts)], getCompressor('zstd'));
}

const DIRS: Member[] = [{ name: 'etc', type: 'dir' }, { name: 'usr', type: 'dir' }, { name: 'usr/bin', type: 'dir' }, { name: 'usr/lib', type: 'dir' }];

/** Each case: what a hostile (or merely unusual) package holds. */
const HOSTILE: [string, Member[]][] = [
  ['"../" component', [...DIRS, { name: 'usr/../../escaped', content: 'x' }]],
  ['absolute path', [{ name: '/tmp/repro-oci-reliability-absolute', content: 'x' }]],
  ['write through its own symlink', [{ name: 'usr', type: 'dir' }, { name: 'usr/lib', type: 'symlink', link: '../..' }, { name: 'usr/lib/escaped', content: 'x' }]],
  ['hardlink out of the tree', [...DIRS, { name: 'usr/bin/pw', type: 'hardlink', link: '../../etc/passwd' }]],
  ['character device node', [...DIRS, { name: 'usr/bin/null', type: 'char' }]],
  ['the same file twice', [...DIRS, { name: 'usr/bin/a', content: 'one' }, { name: 'usr/bin/a', content: 'two' }]],
  ['a file where a directory follows', [{ name: 'usr', content: 'x' }, { name: 'usr/bin', type: 'dir' }]],
  ['setuid root binary', [...DIRS, { name: 'usr/bin/su', content: 'x', mode: 0o4755 }]],
  ['dangling absolute symlink', [...DIRS, { name: 'usr/lib/libc.so', type: 'symlink', link: '/nonexistent/libc.so' }]],
  ['names that are not UTF-8', [...DIRS, { name: Buffer.from('usr/lib/caf\xe9', 'latin1'), content: 'x' }, { name: Buffer.from('usr/lib/\xff', 'latin1'), content: 'y' }, { name: Buffer.from('usr/lib/\xfe', 'latin1'), content: 'z' }]],
];

/** Every path below `root` as raw bytes (hex), except pacman's own database. */
async function rawPaths(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: Buffer): Promise<void> => {
    const dir = Buffer.concat([Buffer.from(`${root}/`), rel]);
    for (const name of await readdir(dir, { encoding: 'buffer' })) {
      const path = rel.length ? Buffer.concat([rel, Buffer.from('/'), name]) : name;
      if (path.toString('latin1').startsWith('var/lib/pacman')) continue;
      out.push(path.toString('hex'));
      if ((await lstat(Buffer.concat([Buffer.from(`${root}/`), path]))).isDirectory()) await walk(path);
    }
  };
  await walk(Buffer.alloc(0));
  return out.sort();
}

interface HostileResult {
  name: string;
  ours: string;
  pacman: string;
  verdict: 'refused' | 'accepted as pacman' | 'accepted, pacman differs' | 'refused, pacman accepts';
}

/**
 * Installs each hostile package with `repro-oci install` and with real `pacman -U` (inside bubblewrap, the host
 * read-only, so that what pacman lets through cannot touch this machine), into roots of their own.
 */
async function hostilePackages(work: string): Promise<HostileResult[] | string> {
  if (spawnSync('pacman', ['--version']).status !== 0 || spawnSync('bwrap', ['--version']).status !== 0) return 'pacman or bwrap is not installed';
  const results: HostileResult[] = [];
  for (const [i, [label, members]] of HOSTILE.entries()) {
    const name = `hostile${i}`;
    const dir = join(work, 'hostile', name, 'a', 'b');
    await mkdir(dir, { recursive: true });
    const file = join(dir, `${name}-1-1-any.pkg.tar.zst`);
    const bytes = await hostilePackage(name, members);
    await writeFile(file, bytes);
    const lock = {
      lockVersion: 1, specDigest: sha256(name), architecture: 'x86_64', repositories: [], targets: [name], sigLevel: 'Never',
      packages: [{ name, version: '1-1', arch: 'any', repository: 'local', filename: `${name}-1-1-any.pkg.tar.zst`, urls: [`file://${file}`], sha256: sha256(bytes).slice(7), csize: bytes.length, isize: 4096, builddate: 1700000000, reason: 'explicit' }],
    };
    await writeFile(join(dir, 'lock.json'), JSON.stringify(lock));
    const oursRoot = join(dir, 'ours');
    const ours = await cli(['install', join(dir, 'lock.json'), '--root', oursRoot, '--cache', join(dir, 'cache')]);

    const pacmanRoot = join(dir, 'pacman');
    await mkdir(join(pacmanRoot, 'var', 'lib', 'pacman'), { recursive: true });
    await mkdir(join(dir, 'hooks'));
    await mkdir(join(dir, 'pcache'));
    await writeFile(join(dir, 'pacman.conf'), '[options]\nArchitecture = x86_64\nSigLevel = Never\nLocalFileSigLevel = Never\n');
    // /tmp inside the sandbox is a directory we can look into afterwards, so absolute paths show up there.
    const top = join(work, 'hostile', name);
    const sandboxTmp = join(work, 'hostile', `${name}-tmp`);
    await mkdir(sandboxTmp);
    const pacman = spawnSync('bwrap', ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--bind', sandboxTmp, '/tmp', '--bind', top, top, '--unshare-all', '--',
      'pacman', '-U', '--noconfirm', '--root', pacmanRoot, '--dbpath', join(pacmanRoot, 'var', 'lib', 'pacman'), '--config', join(dir, 'pacman.conf'), '--cachedir', join(dir, 'pcache'), '--logfile', '/dev/null', '--noscriptlet', '--hookdir', join(dir, 'hooks'), file], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
    const pacmanOk = pacman.status === 0;
    const oursOk = ours.code === 0;
    const same = oursOk && pacmanOk && (await rawPaths(oursRoot)).join() === (await rawPaths(pacmanRoot)).join();
    const ownNames = new Set(['ours', 'pacman', 'cache', 'hooks', 'pcache', 'pacman.conf', 'lock.json', `${name}-1-1-any.pkg.tar.zst`]);
    const escaped = [
      ...(await readdir(dir)).filter((n) => !ownNames.has(n)).map((n) => join(dir, n)),
      ...(await readdir(sandboxTmp)).filter((n) => !top.startsWith(join('/tmp', n))).map((n) => join('/tmp', n)),
    ];
    const warning = `${pacman.stderr}${pacman.stdout}`.split('\n').find((l) => /^(error|warning)/.test(l));
    const pacmanSaid = escaped.length ? `exit ${pacman.status}, wrote outside its root: ${escaped.join(', ')}` : `exit ${pacman.status}${warning ? `, ${warning.replace(/ \/\S+/g, ' …').slice(0, 100)}` : ''}`;
    results.push({
      name: label,
      ours: oursOk ? 'installed' : firstLine(ours.stderr).replace(/^repro-oci: /, ''),
      pacman: pacmanSaid,
      verdict: !oursOk ? (pacmanOk ? 'refused, pacman accepts' : 'refused') : same ? 'accepted as pacman' : 'accepted, pacman differs',
    });
  }
  return results;
}

async function main(): Promise<void> {
  const only = new Set((process.env.RELIABILITY_ONLY ?? 'forged,concurrent,bombs,hostile').split(','));
  const work = await makeTempDir('reliability');
  const servers: { close(): Promise<void> }[] = [];
  const figures: string[] = [];
  let failed = false;
  try {
    if (only.has('hostile')) {
      console.log('hostile packages (repro-oci install; real pacman -U in bubblewrap with the host read-only)');
      const hostile = await hostilePackages(work);
      if (typeof hostile === 'string') console.log(`  skipped: ${hostile}`);
      else {
        for (const h of hostile) console.log(`  ${h.verdict.padEnd(24)} ${h.name}\n      repro-oci: ${h.ours}\n      pacman:    ${h.pacman}`);
        const count = (v: HostileResult['verdict']): number => hostile.filter((h) => h.verdict === v).length;
        figures.push(`hostile packages (${hostile.length}): ${count('refused')} refused as pacman refuses them, ${count('refused, pacman accepts')} refused where pacman installs them, ${count('accepted as pacman')} accepted as pacman installs them, ${count('accepted, pacman differs')} accepted differently from pacman`);
      }
    }
    if (only.has('forged') || only.has('concurrent')) {
      const ex = await setUpExample(work, async (dir) => {
        const server = await serveDirectory(dir);
        servers.push(server);
        return server.url;
      });
      console.log(`\nexample image: ${ex.genuine}`);
      if (only.has('forged')) {
        const forged = await forgeries(work, ex);
        console.log('\nforged inputs');
        for (const f of forged) console.log(`  ${f.accepted ? 'ACCEPTED' : 'refused '}  ${f.name}: ${f.outcome}`);
        const accepted = forged.filter((f) => f.accepted).length;
        figures.push(`forged inputs accepted: ${accepted} of ${forged.length}`);
        failed ||= accepted > 0;
      }
      if (only.has('concurrent')) {
        const rounds = Number(process.env.RELIABILITY_ROUNDS ?? 3);
        console.log(`\nconcurrent builds (${rounds} round(s) of 8 processes on one fresh shared cache, then on it warm; packages over HTTP)`);
        const conc = await concurrentBuilds(work, ex, 8, rounds);
        figures.push(`concurrent cold builds: ${conc.cold}/${conc.total} exit 0 with the genuine digest`, `concurrent warm builds: ${conc.warm}/${conc.total} exit 0 with the genuine digest`);
        failed ||= conc.cold < conc.total || conc.warm < conc.total;
      }
    }
    if (only.has('bombs')) {
      console.log('\ndecompression bombs');
      const bomb = await bombs(work);
      console.log(`  install of a 8 GiB zstd bomb package: ${bomb.install}; peak RSS ${bomb.installRssMb} MB`);
      console.log(`  diff of two 4 GiB zstd bomb layers:  ${bomb.diff}; peak RSS ${bomb.diffRssMb} MB`);
      figures.push(`peak RSS on bombs: install ${bomb.installRssMb} MB, diff ${bomb.diffRssMb} MB`);
    }
    console.log(`\nfigures\n${figures.map((f) => `  ${f}`).join('\n')}`);
    if (failed) process.exitCode = 1;
  } finally {
    await Promise.all(servers.map((s) => s.close()));
    if (process.env.RELIABILITY_KEEP === '1') console.log(`kept ${work}`);
    else await removeDir(work);
  }
}

await main();
