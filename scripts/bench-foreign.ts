/**
 * Benchmark (not a test): checking an image repro-oci did not build against its pacman database (`rebuild REF
 * --from-pacman-db`: lock from the image's database, install, compare every path, rebuild the layer) against a
 * `build` of the same package set, both with the packages already in the cache. Goal (issue 13, item 7): the check
 * takes at most 1.2× the build.
 *
 *   npm run bench:foreign               (compiled: node dist/scripts/bench-foreign.js)
 *
 *   BENCH_SCALE  corpus scale (default 1: ~120 packages, ~450 MB installed; fractions for a quick look)
 *   BENCH_DIR    where the corpus is made once and kept (default .bench/ in the repository, which git ignores)
 *   BENCH_RUNS   warm runs of each; the fastest is reported (default 1)
 *   BENCH_SDE    SOURCE_DATE_EPOCH (default 1700000000)
 *   BENCH_KEEP   1 keeps the image, archive, keyring and caches under BENCH_DIR/foreign-run (to profile the check)
 *
 * The corpus is scripts/bench-arch-corpus.ts's (real files packed by real makepkg). The foreign image is made as
 * Arch's own is (test/support/foreign-image.ts): real `pacman -U` into an empty root, GNU tar with the repro
 * flags, zstd, umoci; the packages are signed into an Arch Linux Archive layout served on 127.0.0.1. A first,
 * untimed run of each fills its cache. Needs root (makepkg as `builder`, pacman), makepkg, repo-add, pacman, zstd,
 * GNU tar, umoci, gpg. Uses the compiled dist/ as it is.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { REPO_ROOT, runCli, runOk, type RunResult } from '../test/support/cli.js';
import { publishToArchive, imageOfRoot } from '../test/support/foreign-image.js';
import { Gpg } from '../test/support/gpg.js';
import { serveDirectory } from '../test/support/http-server.js';

const env = process.env;
const bench = resolve(env.BENCH_DIR || join(REPO_ROOT, '.bench'));
const sde = env.BENCH_SDE || '1700000000';
const runs = Number(env.BENCH_RUNS || '1');
if (!Number.isInteger(runs) || runs < 1) throw new Error('BENCH_RUNS must be a positive integer');
const GOAL = 1.2;

function log(message: string): void {
  process.stderr.write(`[bench-foreign] ${message}\n`);
}

/** Runs `repro-oci ARGS` and returns its wall time in seconds; fails on an exit status not in `ok`. */
async function timed(args: string[], cache: string, ok = [0]): Promise<{ seconds: number; result: RunResult }> {
  const start = performance.now();
  const result = await runCli(args, { env: { REPRO_OCI_CACHE: cache } });
  const seconds = (performance.now() - start) / 1000;
  if (!ok.includes(result.code ?? -1)) throw new Error(`repro-oci ${args.join(' ')} exited ${result.code}:\n${result.stderr.slice(-3000)}`);
  return { seconds, result };
}

async function fastest(args: string[], cache: string, before: () => void, ok?: number[]): Promise<{ seconds: number; result: RunResult }> {
  let best: { seconds: number; result: RunResult } | undefined;
  for (let i = 0; i < runs; i++) {
    before();
    const run = await timed(args, cache, ok);
    if (!best || run.seconds < best.seconds) best = run;
  }
  return best!;
}

const loadStart = loadavg()[0]!;
mkdirSync(bench, { recursive: true });
log(`corpus at BENCH_SCALE=${env.BENCH_SCALE || '1'} (made once by makepkg; the first time takes a while)`);
const corpus = (await runOk(process.execPath, [join(REPO_ROOT, 'dist/scripts/bench-arch-corpus.js'), 'generate', bench], { env: { BENCH_SDE: sde } })).stdout.trim();
const spec = join(corpus, 'spec.yaml');
const lock = join(corpus, 'spec.lock.json');
const work = join(bench, 'foreign-run');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const gpg = await Gpg.create();
try {
  rmSync(lock, { force: true });
  await runCli(['lock', spec]).then((r) => {
    if (r.code !== 0) throw new Error(`repro-oci lock exited ${r.code}:\n${r.stderr}`);
  });
  const packages = (await runOk(process.execPath, [join(REPO_ROOT, 'dist/scripts/bench-arch-corpus.js'), 'packages', lock])).stdout.split('\n').filter((l) => l !== '');

  // The build: a cold run fills the cache, the warm ones are timed.
  const buildCache = join(work, 'build-cache');
  const out = join(work, 'built');
  const buildArgs = ['build', spec, '--source-date-epoch', sde, '-o', `oci:${out}`];
  log(`repro-oci build of ${packages.length} packages, cold (fills the cache)`);
  await timed(buildArgs, buildCache);
  log(`repro-oci build, warm (runs: ${runs})`);
  const build = await fastest(buildArgs, buildCache, () => rmSync(out, { recursive: true, force: true }));

  // The foreign image: pacman -U into a root, then GNU tar, zstd, umoci as Arch's pipeline does.
  log('the foreign image: pacman -U, GNU tar (repro flags), zstd, umoci');
  const root = join(work, 'root');
  mkdirSync(join(root, 'var/lib/pacman'), { recursive: true });
  mkdirSync(join(work, 'hooks'));
  writeFileSync(join(work, 'pacman.conf'), '[options]\nArchitecture = x86_64\nSigLevel = Never\nLocalFileSigLevel = Never\n');
  await runOk('pacman', ['-U', '--noscriptlet', '--noconfirm', '--noprogressbar', '--root', root, '--dbpath', join(root, 'var/lib/pacman'), '--config', join(work, 'pacman.conf'), '--hookdir', join(work, 'hooks'), '--logfile', '/dev/null', ...packages], { env: { LC_ALL: 'C' } });
  const image = await imageOfRoot(root, join(work, 'image'));
  rmSync(root, { recursive: true, force: true });

  // The archive: every package signed by a packager key the keyring trusts.
  log('signing the packages into an archive layout');
  const signer = await gpg.genKey('Bench Packager <bench@example.invalid>', { at: Number(sde) - 100 });
  const keyring = join(work, 'keyring');
  await gpg.writeKeyring(keyring, 'bench', [signer], { trusted: [signer] });
  const archive = join(work, 'archive');
  for (const file of packages) await publishToArchive(archive, file, gpg, signer);
  const server = await serveDirectory(archive);
  try {
    const checkCache = join(work, 'check-cache');
    const checkArgs = ['rebuild', image, '--from-pacman-db', '--archive', `${server.url}/`, '--keyring', keyring, '--keyring-name', 'bench'];
    log('repro-oci rebuild --from-pacman-db, cold (fetches the packages into the cache)');
    await timed(checkArgs, checkCache, [0, 1]);
    log(`repro-oci rebuild --from-pacman-db, warm (runs: ${runs})`);
    const check = await fastest(checkArgs, checkCache, () => {}, [0, 1]);

    const ratio = check.seconds / build.seconds;
    const lines = [
      `corpus: ${packages.length} packages; ${corpus}`,
      `machine: ${cpus().length} CPUs; node ${process.version}; load average (1 min) at start / end: ${loadStart.toFixed(2)} / ${loadavg()[0]!.toFixed(2)}`,
      '',
      `repro-oci build, warm cache                      [B] ${build.seconds.toFixed(2)} s`,
      `repro-oci rebuild --from-pacman-db, warm cache   [C] ${check.seconds.toFixed(2)} s   (${check.result.stdout.split('\n')[0]})`,
      `ratio C / B                                          ${ratio.toFixed(2)}×   goal ≤ ${GOAL}×: ${ratio <= GOAL ? 'met' : 'NOT met'}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await server.close();
  }
} finally {
  await gpg.dispose();
  if (env.BENCH_KEEP !== '1') rmSync(work, { recursive: true, force: true });
}
