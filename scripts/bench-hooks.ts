/**
 * Benchmark (not a test): what install scriptlets and ALPM hooks add to `repro-oci build` of the base-size corpus
 * (issue 15: at most 30 %). Compiled to dist/scripts/bench-hooks.js; `npm run bench:hooks`.
 *
 * The corpus is scripts/bench-arch-corpus.ts's (~120 packages, ~450 MB installed, made once by real makepkg under
 * $BENCH_DIR, default .bench/), plus a repository of its own with what Arch's `base` runs around its files:
 * busybox for /bin/sh, 15 packages with install scriptlets (post_install, some pre_install, each writing a file as
 * Arch's do) and 25 hook files (20 Path hooks over usr/lib and usr/share, half with NeedsTargets, 5 Package hooks),
 * each hook one process that reads its targets and writes a file, like systemd's, ca-certificates' or texinfo's.
 * The same packages are built with `image.setup.scriptlets`/`hooks` off and on (warm cache, SOURCE_DATE_EPOCH
 * fixed, oci: output); each is run BENCH_RUNS times (default 3), alternating, and the fastest of each is reported.
 *
 *   BENCH_DIR     cache and scratch directory (default .bench/ in the repository)
 *   BENCH_RUNS    runs of each build (default 3)
 *   BENCH_KEEP    keep the run directory (its specs and cache) for builds by hand
 *   BENCH_NODE_ARGS  node options for each repro-oci run, e.g. `--cpu-prof --cpu-prof-dir=DIR` to see where time goes
 *   BENCH_SCALE, BENCH_ARCH_MB, BENCH_ARCH_PKGS, BENCH_ARCH_SOURCES: the corpus (scripts/bench-arch-corpus.ts)
 *
 * Needs root the first time (makepkg runs as user `builder` to make the corpus), bubblewrap and /bin/busybox.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPackage, type PackageEntry } from '../src/example/package-writer.js';
import { repoPackageFromBuilt, writeRepo } from '../src/example/repo-writer.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(REPO_ROOT, 'bin', 'repro-oci.js');
const SDE = 1_700_000_000;
const SCRIPTLETS = 15;
const PATH_HOOKS = 20;
const PACKAGE_HOOKS = 5;

function hook(name: string, trigger: string[], needsTargets: boolean): string {
  const exec = needsTargets ? `/usr/local/bin/sh -c "sort > /var/lib/bench-hooks/${name}"` : `/usr/local/bin/sh -c "echo ran > /var/lib/bench-hooks/${name}"`;
  return ['[Trigger]', 'Operation = Install', 'Operation = Upgrade', ...trigger, '', '[Action]', `Description = bench hook ${name}`, 'When = PostTransaction', `Exec = ${exec}`, ...(needsTargets ? ['NeedsTargets'] : []), ''].join('\n');
}

/** The scriptlet and hook packages, as a repository `bench-hooks` under `dir`; returns the package names. */
async function hookRepository(dir: string): Promise<string[]> {
  const out = join(dir, 'repo', 'bench-hooks', 'os', 'x86_64');
  await rm(join(dir, 'repo'), { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const written: ReturnType<typeof repoPackageFromBuilt>[] = [];
  const names: string[] = [];
  const add = async (pkgname: string, entries: PackageEntry[], install?: string): Promise<void> => {
    const built = await buildPackage({ pkgname, pkgver: '1.0', pkgrel: 1, arch: 'x86_64', sourceDateEpoch: SDE, entries, ...(install ? { install } : {}) });
    await writeFile(join(out, built.filename), built.bytes);
    written.push(repoPackageFromBuilt(built));
    names.push(pkgname);
  };
  const applets = ['sh', 'sort', 'echo', 'cat', 'mkdir'];
  // In usr/local/bin, first in the sandbox's PATH: the corpus holds this machine's usr/bin (its own sh, sort, …).
  await add('bench-sh', [
    { path: 'bin', type: 'dir' },
    { path: 'bin/sh', type: 'symlink', linkTarget: '../usr/local/bin/busybox' },
    { path: 'usr/local/bin/busybox', type: 'file', content: readFileSync('/bin/busybox'), mode: 0o755 },
    ...applets.map((a) => ({ path: `usr/local/bin/${a}`, type: 'symlink' as const, linkTarget: 'busybox' })),
    { path: 'var/lib/bench-hooks', type: 'dir' },
  ]);
  const hooks: PackageEntry[] = [];
  for (let i = 0; i < PATH_HOOKS; i++) {
    const name = `${String(10 + i).padStart(2, '0')}-path-${i}.hook`;
    hooks.push({ path: `usr/share/libalpm/hooks/${name}`, type: 'file', content: hook(name, ['Type = Path', `Target = ${i % 2 ? 'usr/share' : 'usr/lib'}/*`, ...(i % 4 === 3 ? ['Target = !usr/share/doc/*'] : [])], i % 2 === 0) });
  }
  for (let i = 0; i < PACKAGE_HOOKS; i++) {
    const name = `${60 + i}-package-${i}.hook`;
    hooks.push({ path: `usr/share/libalpm/hooks/${name}`, type: 'file', content: hook(name, ['Type = Package', 'Target = bench-*'], i % 2 === 0) });
  }
  await add('bench-hook-files', hooks);
  for (let i = 0; i < SCRIPTLETS; i++) {
    const install = [
      ...(i % 3 === 0 ? ['pre_install() {', `  echo "pre $1" > /tmp/bench-pre-${i}`, '}'] : []),
      'post_install() {',
      `  mkdir -p /var/lib/bench-scriptlet-${i}`,
      `  echo "installed $1 at $SOURCE_DATE_EPOCH" > /var/lib/bench-scriptlet-${i}/state`,
      '}',
      '',
    ].join('\n');
    await add(`bench-scripted-${String(i).padStart(2, '0')}`, [{ path: `usr/share/bench-scripted/${i}.txt`, type: 'file', content: `${i}\n` }], install);
  }
  await writeRepo(out, 'bench-hooks', written, { symlinks: false });
  return names;
}

function spec(corpus: string, hooksDir: string, packages: string[], on: boolean): string {
  const corpusSpec = readFileSync(join(corpus, 'spec.yaml'), 'utf8');
  const targets = /^packages: \[(.*)\]$/m.exec(corpusSpec)![1]!;
  return [
    'architecture: x86_64',
    'repositories:',
    ...['bench-core', 'bench-extra'].flatMap((r) => [`  - name: ${r}`, `    servers: [${join(corpus, 'repo', '$repo', 'os', '$arch')}]`]),
    '  - name: bench-hooks',
    `    servers: [${join(hooksDir, 'repo', '$repo', 'os', '$arch')}]`,
    `packages: [${targets}, ${packages.join(', ')}]`,
    'sigLevel: Never',
    'image:',
    `  setup: { scriptlets: ${on}, hooks: ${on} }`,
    '',
  ].join('\n');
}

function run(args: string[], env: Record<string, string>): { seconds: number; stderr: string } {
  const start = process.hrtime.bigint();
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const r = spawnSync(process.execPath, [...nodeArgs, CLI, ...args], { env: { ...process.env, REPRO_OCI_PROGRESS: '0', ...env }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`repro-oci ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return { seconds, stderr: r.stderr };
}

async function main(): Promise<void> {
  const bench = resolve(process.env.BENCH_DIR ?? join(REPO_ROOT, '.bench'));
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('BENCH_RUNS must be a positive integer');
  if (!existsSync('/bin/busybox') || spawnSync('bwrap', ['--version']).status !== 0) throw new Error('bench-hooks needs /bin/busybox and bwrap');
  await mkdir(bench, { recursive: true });
  const corpus = execFileSync(process.execPath, [join(REPO_ROOT, 'dist', 'scripts', 'bench-arch-corpus.js'), 'generate', bench], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const work = join(bench, 'hooks-run');
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const packages = await hookRepository(work);
  const cache = join(work, 'cache');
  const load = [loadavg()[0]!.toFixed(2)];
  const figures: Record<'off' | 'on', number[]> = { off: [], on: [] };
  let report = '';
  for (const mode of ['off', 'on'] as const) {
    await writeFile(join(work, `${mode}.yaml`), spec(corpus, work, packages, mode === 'on'));
    run(['lock', join(work, `${mode}.yaml`)], { REPRO_OCI_CACHE: cache });
  }
  process.stderr.write('filling the cache (one build with scriptlets and hooks off)\n');
  run(['build', join(work, 'off.yaml'), '--source-date-epoch', String(SDE), '-o', `oci:${join(work, 'out')}`], { REPRO_OCI_CACHE: cache });
  for (let i = 0; i < runs; i++) {
    for (const mode of ['off', 'on'] as const) {
      await rm(join(work, 'out'), { recursive: true, force: true });
      const r = run(['build', join(work, `${mode}.yaml`), '--source-date-epoch', String(SDE), '-o', `oci:${join(work, 'out')}`], { REPRO_OCI_CACHE: cache });
      figures[mode].push(r.seconds);
      if (mode === 'on') report = /scriptlets and hooks: .*/.exec(r.stderr)?.[0] ?? report;
      process.stderr.write(`run ${i + 1}/${runs}: scriptlets and hooks ${mode}: ${r.seconds.toFixed(2)} s\n`);
    }
  }
  load.push(loadavg()[0]!.toFixed(2));
  if (process.env.BENCH_KEEP) process.stderr.write(`kept ${work} (specs off.yaml and on.yaml, cache/)\n`);
  else await rm(work, { recursive: true, force: true });
  const off = Math.min(...figures.off);
  const on = Math.min(...figures.on);
  const added = ((on - off) / off) * 100;
  const corpusInfo = JSON.parse(readFileSync(join(corpus, 'corpus.json'), 'utf8')) as { packages: number; installedBytes: number; files: number };
  process.stdout.write([
    `corpus: ${corpusInfo.packages} packages, ${(corpusInfo.installedBytes / 1048576).toFixed(0)} MB installed in ${corpusInfo.files} files (${corpus}),`,
    `  plus ${packages.length} packages: busybox, ${SCRIPTLETS} with install scriptlets, ${PATH_HOOKS + PACKAGE_HOOKS} hook files (${report || 'scriptlets and hooks: ?'})`,
    `machine: ${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()} CPUs; node ${process.version}; load average (1 min) at start / end: ${load.join(' / ')}`,
    `runs: ${runs} of each, fastest reported (all: off ${figures.off.map((s) => s.toFixed(2)).join(' ')}; on ${figures.on.map((s) => s.toFixed(2)).join(' ')})`,
    '',
    `build, scriptlets and hooks off   ${off.toFixed(2)} s`,
    `build, scriptlets and hooks on    ${on.toFixed(2)} s`,
    `added                             ${added.toFixed(1)} %   (goal ≤ 30 %: ${added <= 30 ? 'met' : 'NOT met'})`,
    '',
  ].join('\n'));
}

await main();
