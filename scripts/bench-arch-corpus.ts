/**
 * Helpers for scripts/bench-arch.sh (compiled to dist/scripts/bench-arch-corpus.js). A benchmark, not a test.
 *
 *   generate DIR               makes (once) the benchmark corpus under DIR and prints its directory:
 *                              ~120·SCALE Arch packages of ~450·SCALE MB installed, made of real files of this
 *                              machine, packed by real makepkg (zstd, default level) as user `builder`, in two
 *                              repositories made by real repo-add (DIR/…/repo/<repo>/os/x86_64/), with spec.yaml
 *                              (relative servers, sigLevel Never). Keyed by its parameters: a second call with the
 *                              same parameters only prints the directory.
 *   packages LOCK              prints the package files a lock installs (beside the lock), one per line
 *   report KEY=VALUE...        prints the benchmark table from the measured figures
 *
 * Parameters (environment):
 *   BENCH_SCALE        corpus scale factor (default 1; 4 for the 4× corpus; fractions give smoke-test corpora)
 *   BENCH_ARCH_MB      installed size at scale 1, in MB (default 450)
 *   BENCH_ARCH_PKGS    package count at scale 1 (default 120)
 *   BENCH_ARCH_SOURCES where the files come from: `DIR=PERCENT` takes that share of the total from DIR, a bare DIR
 *                      fills what the shares could not (default "/usr/lib/x86_64-linux-gnu=45 /usr/bin=20
 *                      /usr/share=35 /usr/lib /usr/libexec /usr/include")
 *   BENCH_SDE          SOURCE_DATE_EPOCH for makepkg (default 1700000000)
 *   BENCH_JOBS         makepkg builds run at once (default: the number of CPUs)
 *
 * Selection is deterministic (directories walked in byte order, staying on each source's filesystem): regular
 * files that user `builder` can read (other-readable, in other-searchable directories), at most 64 MB each, a
 * hardlinked inode taken once, and symlinks; names with control characters are skipped. Files are grouped in
 * walk order into packages of about equal size, so a package is a run of neighbouring files, as in a real
 * distribution. Package i depends on i-1 (a chain through all of them) and on i/2 (versioned), every tenth
 * provides a virtual `bench-so-K` that the next one depends on, every third is in the group `bench-base`; the
 * spec asks for the group and the last package, so resolution walks the whole chain.
 */
import { createHash } from 'node:crypto';
import { cpus } from 'node:os';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { buildWithMakepkg, makepkgUnavailable, makeRepoWithRepoAdd, repoAddUnavailable } from '../test/support/makepkg.js';

/** Bump when the corpus layout changes, so cached corpora of the old layout are not reused. */
const GENERATOR_VERSION = 1;
const MAX_FILE = 64 * 1024 * 1024;
const REPOS = ['bench-core', 'bench-extra'] as const;

interface Params {
  version: number;
  scale: number;
  megabytes: number;
  packages: number;
  sources: { dir: string; percent?: number }[];
  sde: number;
}

interface Picked {
  /** Relative to /. */
  path: string;
  size: number;
}

function params(): Params {
  const env = process.env;
  const num = (name: string, fallback: number): number => {
    const raw = env[name];
    const n = raw === undefined || raw === '' ? fallback : Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not ${raw}`);
    return n;
  };
  const sources = (env.BENCH_ARCH_SOURCES || '/usr/lib/x86_64-linux-gnu=45 /usr/bin=20 /usr/share=35 /usr/lib /usr/libexec /usr/include')
    .split(/\s+/)
    .filter((s) => s !== '')
    .map((s) => {
      const [dir, percent] = s.split('=');
      return percent === undefined ? { dir: resolve(dir!) } : { dir: resolve(dir!), percent: Number(percent) };
    });
  return { version: GENERATOR_VERSION, scale: num('BENCH_SCALE', 1), megabytes: num('BENCH_ARCH_MB', 450), packages: num('BENCH_ARCH_PKGS', 120), sources, sde: num('BENCH_SDE', 1700000000) };
}

/** Walks the sources and picks ~limit bytes of files and symlinks, deterministically. */
async function pick(p: Params): Promise<Picked[]> {
  const limit = p.megabytes * p.scale * 1024 * 1024;
  const seenInodes = new Set<string>();
  const seenDirs = new Set<string>();
  const picked: Picked[] = [];
  let total = 0;
  // eslint-disable-next-line no-control-regex
  const bad = /[\x00-\x1f\x7f]/;

  const walk = async (dir: string, dev: number, budget: { left: number }): Promise<void> => {
    const st = await stat(dir);
    if (seenDirs.has(`${st.dev}:${st.ino}`)) return;
    seenDirs.add(`${st.dev}:${st.ino}`);
    if ((st.mode & 0o005) !== 0o005) return; // builder could not list it
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      if (budget.left <= 0 || total >= limit) return;
      if (bad.test(name)) continue;
      const path = join(dir, name);
      let entry;
      try {
        entry = await lstat(path);
      } catch {
        continue;
      }
      if (entry.isDirectory()) {
        if (entry.dev === dev) await walk(path, dev, budget);
      } else if (entry.isFile()) {
        if ((entry.mode & 0o004) === 0 || entry.size > MAX_FILE || entry.size > budget.left) continue;
        const inode = `${entry.dev}:${entry.ino}`;
        if (seenInodes.has(inode)) continue;
        seenInodes.add(inode);
        picked.push({ path: path.slice(1), size: entry.size });
        total += entry.size;
        budget.left -= entry.size;
      } else if (entry.isSymbolicLink()) {
        const inode = `${entry.dev}:${entry.ino}`;
        if (seenInodes.has(inode)) continue;
        seenInodes.add(inode);
        picked.push({ path: path.slice(1), size: 0 });
      }
    }
  };

  // First the sources with a share, each up to its share; then the others fill what is left.
  for (const source of [...p.sources.filter((s) => s.percent !== undefined), ...p.sources.filter((s) => s.percent === undefined)]) {
    if (total >= limit) break;
    const st = await stat(source.dir).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    const left = source.percent !== undefined ? Math.min(limit - total, (limit * source.percent) / 100) : limit - total;
    await walk(source.dir, st.dev, { left });
  }
  return picked;
}

/** Cuts the picked files, in order, into `count` packages of about equal size. */
function group(files: Picked[], count: number): Picked[][] {
  const total = files.reduce((n, f) => n + f.size, 0);
  const groups: Picked[][] = [];
  let current: Picked[] = [];
  let currentSize = 0;
  let done = 0;
  let target = total / count;
  for (const file of files) {
    current.push(file);
    currentSize += file.size;
    if (currentSize >= target && groups.length < count - 1) {
      groups.push(current);
      done += currentSize;
      current = [];
      currentSize = 0;
      target = (total - done) / (count - groups.length);
    }
  }
  if (current.length) groups.push(current);
  return groups;
}

const pkgName = (i: number): string => `bench-p${String(i).padStart(4, '0')}`;

async function pool<T>(items: T[], jobs: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      await work(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, worker));
}

async function generate(baseDir: string): Promise<void> {
  const why = makepkgUnavailable() ?? repoAddUnavailable();
  if (why !== undefined) throw new Error(`cannot build the corpus: ${why}`);
  const p = params();
  const key = createHash('sha256').update(JSON.stringify(p)).digest('hex').slice(0, 12);
  const dir = resolve(baseDir, `arch-corpus-x${p.scale}-${key}`);
  if (existsSync(join(dir, '.complete'))) {
    process.stdout.write(`${dir}\n`);
    return;
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  // builder must reach the work directories.
  for (let d = dir; d !== dirname(d); d = dirname(d)) {
    const st = await stat(d);
    if ((st.mode & 0o005) !== 0o005) await chmod(d, st.mode | 0o005);
    if (d === resolve(baseDir)) break;
  }
  await writeFile(join(dir, 'params.json'), `${JSON.stringify(p, null, 2)}\n`);

  const files = await pick(p);
  const count = Math.max(2, Math.round(p.packages * p.scale));
  const groups = group(files, count);
  const bytes = files.reduce((n, f) => n + f.size, 0);
  process.stderr.write(`corpus: ${(bytes / 1048576).toFixed(0)} MB in ${files.length} files and symlinks → ${groups.length} packages (makepkg, once, into ${dir})\n`);

  const n = groups.length;
  const repoOf = (i: number): string => (i < n / 2 ? REPOS[0] : REPOS[1]);
  for (const repo of REPOS) await mkdir(join(dir, 'repo', repo, 'os', 'x86_64'), { recursive: true });
  const built: { repo: string; file: string }[] = [];
  const started = Date.now();
  let finished = 0;
  await pool(groups, Number(process.env.BENCH_JOBS) || cpus().length, async (list, i) => {
    const workDir = join(dir, 'build', pkgName(i));
    await mkdir(workDir, { recursive: true });
    await writeFile(join(workDir, 'files.list'), list.map((f) => `${f.path}\0`).join(''));
    const depends: string[] = [];
    if (i >= 1) depends.push(pkgName(i - 1));
    if (i >= 4) depends.push(`${pkgName(Math.floor(i / 2))}>=1.0`);
    if (i % 10 === 1 && i > 1) depends.push(`bench-so-${Math.floor(i / 10)}`);
    const file = await buildWithMakepkg(
      {
        workDir,
        pkgname: pkgName(i),
        pkgver: `1.${i % 7}.0`,
        pkgrel: 1,
        arch: 'x86_64',
        pkgdesc: `repro-oci benchmark package ${i} (${list.length} files from /${dirname(list[0]!.path)})`,
        url: 'https://example.invalid/bench',
        license: ['custom'],
        depends,
        provides: i % 10 === 0 && i > 0 ? [`bench-so-${i / 10}=1`] : [],
        groups: i % 3 === 0 ? ['bench-base'] : [],
        files: [
          '  set -o pipefail',
          '  tar -C / --null --no-recursion --verbatim-files-from -T "$startdir/files.list" -cf - | tar -C "$pkgdir" -xpf -',
        ].join('\n'),
      },
      p.sde,
    );
    if (file === undefined) throw new Error('makepkg is not available');
    const target = join(dir, 'repo', repoOf(i), 'os', 'x86_64', file.slice(file.lastIndexOf('/') + 1));
    await rename(file, target);
    await rm(workDir, { recursive: true, force: true });
    built[i] = { repo: repoOf(i), file: target };
    finished++;
    if (finished % 10 === 0 || finished === n) process.stderr.write(`  makepkg: ${finished}/${n} packages (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  });
  await rm(join(dir, 'build'), { recursive: true, force: true });
  for (const repo of REPOS) {
    const repoDir = join(dir, 'repo', repo, 'os', 'x86_64');
    const pkgs = built.filter((b) => b.repo === repo).map((b) => b.file.slice(b.file.lastIndexOf('/') + 1));
    await makeRepoWithRepoAdd(repoDir, repo, pkgs);
  }
  await writeFile(
    join(dir, 'spec.yaml'),
    [
      '# Benchmark corpus made by scripts/bench-arch-corpus.ts (see params.json). Unsigned, like the bundled example.',
      'architecture: x86_64',
      'repositories:',
      ...REPOS.flatMap((r) => [`  - name: ${r}`, '    servers: [repo/$repo/os/$arch]']),
      `packages: [bench-base, ${pkgName(n - 1)}]`,
      'sigLevel: Never',
      'image:',
      '  config:',
      '    Env: [PATH=/usr/local/sbin:/usr/local/bin:/usr/bin, LANG=C.UTF-8]',
      '',
    ].join('\n'),
  );
  const packed = await Promise.all(built.map(async (b) => (await stat(b.file)).size));
  await writeFile(
    join(dir, 'corpus.json'),
    `${JSON.stringify({ packages: n, files: files.length, installedBytes: bytes, packageBytes: packed.reduce((a, b) => a + b, 0), largestPackageBytes: Math.max(...groups.map((g) => g.reduce((a, f) => a + f.size, 0))) }, null, 2)}\n`,
  );
  await writeFile(join(dir, '.complete'), '');
  process.stderr.write(`corpus ready in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  process.stdout.write(`${dir}\n`);
}

async function packages(lockPath: string): Promise<void> {
  const lock = JSON.parse(await readFile(lockPath, 'utf8')) as { packages: { urls: string[] }[] };
  const base = dirname(resolve(lockPath));
  const paths = lock.packages.map((pkg) => {
    const url = pkg.urls.find((u) => !/^[a-z][a-z0-9+.-]*:/i.test(u));
    if (url === undefined) throw new Error(`no relative URL among ${pkg.urls.join(' ')}`);
    return resolve(base, url);
  });
  process.stdout.write(`${paths.join('\n')}\n`);
}

function report(args: string[]): void {
  const v = new Map(args.map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
  const num = (k: string): number | undefined => {
    const raw = v.get(k);
    const n = raw === undefined || raw === '' ? NaN : Number(raw);
    return Number.isFinite(n) ? n : undefined;
  };
  const scales = ['1', '4'].filter((s) => num(`x${s}_build_s`) !== undefined);
  const fmt = (n: number | undefined, digits: number): string => (n === undefined ? '-' : n.toFixed(digits));
  const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
  const mb = (kb: number | undefined): number | undefined => (kb === undefined ? undefined : kb / 1024);
  const cols = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(50) : i === cells.length - 1 ? `  ${c}` : c.padStart(i % 2 ? 10 : 12))).join('');

  const lines: string[] = [];
  for (const s of scales) {
    lines.push(`${s}× corpus: ${num(`x${s}_pkgs`)} packages, ${fmt(mb(num(`x${s}_isize_kb`)), 0)} MB installed in ${num(`x${s}_files`)} files and symlinks, ${fmt(mb(num(`x${s}_csize_kb`)), 0)} MB as .pkg.tar.zst; ${v.get(`x${s}_dir`)}`);
  }
  lines.push(`machine: ${v.get('cpus')} CPUs; node ${process.version}; peak RSS of a pipeline is that of its largest process (GNU time)`);
  const load = Math.max(num('load_start') ?? 0, num('load_end') ?? 0);
  lines.push(`load average (1 min) at start / end: ${v.get('load_start') ?? '-'} / ${v.get('load_end') ?? '-'}${load > (num('cpus') ?? 1) ? ' — above the CPU count: other work ran, the times are inflated' : ''}`, '');
  lines.push(cols(['', ...scales.flatMap((s) => [`${s}× s`, `${s}× RSS MB`]), 'target']));
  const row = (label: string, key: string, target = ''): void => {
    lines.push(cols([label, ...scales.flatMap((s) => [fmt(num(`x${s}_${key}_s`), 2), fmt(mb(num(`x${s}_${key}_kb`)), 1)]), target]));
  };
  row('repro-oci lock', 'lock');
  row('repro-oci build, cold cache (fills it)', 'cold');
  row('repro-oci build, warm cache  [B]', 'build', 'RSS ≤ 300 MB, flat');
  row('repro-oci install --root', 'install', 'RSS ≤ 300 MB (issue 4)');
  row('pipeline: pacman -U + tar | gzip -n  [P]', 'pipe');
  row('  of which pacman -U', 'pacman');
  row('  of which tar | gzip -n', 'targz');
  row('floor: zstd -d all + tar | gzip -n | sha256  [F]', 'floor');
  const ratioRow = (label: string, a: string, b: string, target: string): void => {
    lines.push(cols([label, ...scales.flatMap((s) => [fmt(ratio(num(`x${s}_${a}_s`), num(`x${s}_${b}_s`)), 2), ratio(num(`x${s}_${a}_kb`), num(`x${s}_${b}_kb`)) === undefined ? '-' : `(${fmt(ratio(num(`x${s}_${a}_kb`), num(`x${s}_${b}_kb`)), 2)})`]), target]));
  };
  ratioRow('ratio B / P (time; RSS in brackets)', 'build', 'pipe', '≤ 0.5×');
  ratioRow('ratio B / F (time; RSS in brackets)', 'build', 'floor', '≤ 1.3×');
  if (scales.length === 2) {
    const flat = ratio(num('x4_build_kb'), num('x1_build_kb'));
    const iflat = ratio(num('x4_install_kb'), num('x1_install_kb'));
    lines.push('', `peak RSS 4× / 1×: build ${fmt(flat, 2)}, install ${fmt(iflat, 2)} (flat means ≈ 1; time 4× / 1×: build ${fmt(ratio(num('x4_build_s'), num('x1_build_s')), 2)})`);
  }
  const verdicts: string[] = [];
  for (const s of scales) {
    const check = (ok: boolean | undefined, what: string): void => void verdicts.push(`${s}× ${what}: ${ok === undefined ? 'n/a' : ok ? 'met' : 'NOT met'}`);
    check(ratio(num(`x${s}_build_s`), num(`x${s}_pipe_s`))! <= 0.5, 'build ≤ 0.5× pipeline');
    check(ratio(num(`x${s}_build_s`), num(`x${s}_floor_s`))! <= 1.3, 'build ≤ 1.3× floor');
    check(mb(num(`x${s}_build_kb`))! <= 300, 'build peak RSS ≤ 300 MB');
    check(mb(num(`x${s}_install_kb`))! <= 300, 'install peak RSS ≤ 300 MB');
  }
  lines.push('', ...verdicts);
  process.stdout.write(`${lines.join('\n')}\n`);
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'generate' && rest.length === 1) {
  await generate(rest[0]!);
} else if (command === 'packages' && rest.length === 1) {
  await packages(rest[0]!);
} else if (command === 'report') {
  report(rest);
} else {
  process.stderr.write('usage: bench-arch-corpus.js generate DIR | packages LOCK | report KEY=VALUE...\n');
  process.exitCode = 2;
}
