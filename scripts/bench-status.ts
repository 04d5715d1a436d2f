/**
 * Benchmark of `repro-oci status` at scale (a script that prints figures, not a test): a 1,000-package lock
 * against three fake rebuilderd instances whose lists hold 30,000 rows each, cold (empty cache and state) and warm
 * (the same cache again: 304s where the servers send Last-Modified). Goals (issue 11): cold ≤ 3 s plus the
 * servers' time, warm ≤ 1 s, peak RSS ≤ 200 MB. Every GOOD is backed by an attestation signed with the key the
 * fake publishes (signed when the fake starts, as rebuilderd signs when it builds): cold fetches and verifies about
 * 2,300 of them, warm reads them from the cache (one entry per rebuilder) and checks their seals.
 *
 * How the servers' time is kept apart: each fake runs in its own process, as separate servers would; "servers
 * CPU" is each one's CPU time during the run (process.cpuUsage in the fake, read before and after over IPC), and
 * "client CPU" the status process's own, all its threads (process.resourceUsage at its exit, with its peak RSS).
 * The cold goal is checked both ways: the client's CPU alone ≤ 3 s, and its wall time ≤ 3 s + the servers' CPU.
 * On a machine shared with other work, the CPU times are the figures to compare: wall time there also counts
 * waiting for a core. Scenarios: v1 with Last-Modified (the fake's default), v1 as rebuilderd 0.27 serves it (no
 * Last-Modified: warm reads everything again), v0 only (Last-Modified, one answer per list), and for comparison
 * one query per name (the library's queryRebuilder in this process with `wholeListAbove: Infinity`: no RSS figure).
 *
 * Run `npx tsc -p tsconfig.json && npm run bench:status`. BENCH_STATUS_ONLY=v1,v1-plain,v0,per-name picks
 * scenarios; BENCH_STATUS_ROWS and BENCH_STATUS_PACKAGES change the sizes; BENCH_STATUS_RUNS=N runs each
 * scenario N times (a fresh cache and state each) and prints the median run; BENCH_STATUS_PROFILE=DIR writes a
 * CPU profile of each status run there (node --cpu-prof).
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { HttpCache } from '../src/status/http-cache.js';
import { DEFAULT_QUERY, queryRebuilder } from '../src/status/rebuilderd.js';
import { CLI, makeTempDir, removeDir, run } from '../test/support/cli.js';
import { startRebuilder, type FakeRebuilderOptions, type FakeRow } from '../test/support/rebuilderd.js';
import { syntheticFile, syntheticRows, writeStatusLock } from '../test/support/status-fixtures.js';
import { generateKeyPairSync } from 'node:crypto';
import { publicKeyPem, signRebuildLink } from '../src/status/attestation.js';

interface Counts {
  requests: number;
  conditional: number;
  notModified: number;
  cpuMs: number;
}

const cpuMsSince = (start?: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
};

type ServerSetup = Omit<FakeRebuilderOptions, 'rows'> & { rows: number; packages: number; badEvery: number };

/** The lock's packages: `packages` rows spread evenly over a list of `rows`. */
function lockRows(rows: number, packages: number): FakeRow[] {
  const every = Math.max(1, Math.floor(rows / packages));
  return syntheticRows(rows).filter((_, i) => i % every === 0).slice(0, packages);
}

/** Server side (a child process): one fake rebuilder; answers 'counts' messages with its counters and CPU time. */
async function serve(setup: ServerSetup): Promise<void> {
  const rows: FakeRow[] = syntheticRows(setup.rows).map((r, i) => (i % setup.badEvery === 0 ? { ...r, status: 'BAD' } : r));
  // Each rebuilder signs an attestation for every GOOD, as rebuilderd does: status fetches and verifies them.
  // They are signed before the run, as rebuilderd signs them when it builds, not when it serves them.
  const { privateKey } = generateKeyPairSync('ed25519');
  const signed = new Map(lockRows(setup.rows, setup.packages).map((row) => [row.name, signRebuildLink(syntheticFile(row).fileName, syntheticFile(row).sha256, [privateKey])]));
  const attestation = (row: FakeRow): Buffer => signed.get(row.name) ?? signRebuildLink(syntheticFile(row).fileName, syntheticFile(row).sha256, [privateKey]);
  const fake = await startRebuilder({ ...setup, rows, publicKeys: [publicKeyPem(privateKey)], attestation });
  const started = process.cpuUsage();
  process.on('message', (message: string) => {
    if (message === 'counts') process.send!({ requests: fake.requests.length, conditional: fake.conditional.length, notModified: fake.notModified, cpuMs: cpuMsSince(started) });
  });
  process.on('disconnect', () => void fake.close().then(() => process.exit(0)));
  process.send!(fake.url);
}

interface Server {
  url: string;
  child: ChildProcess;
  counts(): Promise<Counts>;
}

async function startServer(setup: ServerSetup): Promise<Server> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', JSON.stringify(setup)], { stdio: 'inherit' });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', resolve);
    child.once('error', reject);
  });
  const counts = (): Promise<Counts> =>
    new Promise((resolve) => {
      child.once('message', resolve);
      child.send('counts');
    });
  return { url, child, counts };
}

/** Writes the child's resource usage (peak RSS in KiB, CPU time in µs) into $BENCH_USAGE_FILE when it exits. */
const USAGE_HOOK = `data:text/javascript,${encodeURIComponent("import{writeFileSync}from'node:fs';process.on('exit',()=>writeFileSync(process.env.BENCH_USAGE_FILE,JSON.stringify(process.resourceUsage())))")}`;

interface Figures {
  wallMs: number;
  /** The client's CPU time (user + system): what a loaded machine stretches least. */
  cpuMs: number;
  rssMb: number;
  serversCpuMs: number[];
  counts: Omit<Counts, 'cpuMs'>;
  verdicts: string;
}

async function measure(servers: Server[], args: string[], work: string, state: string): Promise<Figures> {
  const before = await Promise.all(servers.map((s) => s.counts()));
  const usageFile = join(work, 'usage.json');
  const started = performance.now();
  const profile = process.env.BENCH_STATUS_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_STATUS_PROFILE] : [];
  const r = await run(process.execPath, [...profile, '--import', USAGE_HOOK, CLI, ...args], { env: { BENCH_USAGE_FILE: usageFile, REPRO_OCI_PROGRESS: '0', XDG_CONFIG_HOME: '/nonexistent', REPRO_OCI_STATE: state }, timeoutMs: 600_000 });
  const wallMs = performance.now() - started;
  if (r.code !== 0 && r.code !== 1) throw new Error(`status exited ${r.code}: ${r.stderr}`);
  const after = await Promise.all(servers.map((s) => s.counts()));
  const report = JSON.parse(r.stdout) as { summary: { text: string }; rebuilders: { error: string | null }[] };
  const errors = report.rebuilders.map((x) => x.error).filter((e) => e !== null);
  if (errors.length > 0) throw new Error(`a rebuilder gave no answer: ${errors.join('; ')}`);
  const usage = JSON.parse(readFileSync(usageFile, 'utf8')) as NodeJS.ResourceUsage;
  return { wallMs, cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000, rssMb: usage.maxRSS / 1024, ...difference(before, after), verdicts: report.summary.text };
}

/** The CLI's own start-up (node, the modules), for scale: every run below pays it once. */
async function measureStartup(work: string): Promise<{ wallMs: number; cpuMs: number }> {
  const usageFile = join(work, 'usage.json');
  const started = performance.now();
  await run(process.execPath, ['--import', USAGE_HOOK, CLI, '--version'], { env: { BENCH_USAGE_FILE: usageFile } });
  const usage = JSON.parse(readFileSync(usageFile, 'utf8')) as NodeJS.ResourceUsage;
  return { wallMs: performance.now() - started, cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000 };
}

const SCENARIOS: Record<string, { setup: Omit<ServerSetup, 'rows' | 'packages' | 'badEvery'>; note: string }> = {
  v1: { setup: { api: 'v1' }, note: 'v1, Last-Modified sent (whole list in pages of 5,000)' },
  'v1-plain': { setup: { api: 'v1', v1LastModified: false }, note: 'v1 as rebuilderd 0.27 (no Last-Modified: warm reads all again)' },
  v0: { setup: { api: 'v0' }, note: 'v0 only, Last-Modified sent (whole list in one answer)' },
  'per-name': { setup: { api: 'v1' }, note: 'v1, one query per name, in this process (no RSS figure)' },
};

/** The per-name comparison: the library's query in this process, every rebuilder at once, as checkStatus does. */
async function measurePerName(servers: Server[], names: string[], cache: HttpCache): Promise<Figures> {
  const before = await Promise.all(servers.map((s) => s.counts()));
  const started = performance.now();
  const cpu = process.cpuUsage();
  const answers = await Promise.all(servers.map((s, i) => queryRebuilder({ name: `r${i}`, url: s.url }, names, { ...DEFAULT_QUERY, cache, wholeListAbove: Infinity })));
  const wallMs = performance.now() - started;
  const cpuMs = cpuMsSince(cpu);
  for (const a of answers) if ('error' in a) throw new Error(`a rebuilder gave no answer: ${a.error}`);
  const after = await Promise.all(servers.map((s) => s.counts()));
  return { wallMs, cpuMs, rssMb: NaN, ...difference(before, after), verdicts: `${names.length} names` };
}

/** Requests summed over the servers, and each server's CPU time, between two readings. */
function difference(before: Counts[], after: Counts[]): { counts: Omit<Counts, 'cpuMs'>; serversCpuMs: number[] } {
  const counts = { requests: 0, conditional: 0, notModified: 0 };
  for (const [i, a] of after.entries()) for (const key of Object.keys(counts) as (keyof typeof counts)[]) counts[key] += a[key] - before[i]![key];
  return { counts, serversCpuMs: after.map((a, i) => a.cpuMs - before[i]!.cpuMs) };
}

function line(label: string, f: Figures): string {
  const rss = Number.isNaN(f.rssMb) ? '' : `   peak RSS ${f.rssMb.toFixed(0)} MB`;
  return `  ${label.padEnd(5)} wall ${(f.wallMs / 1000).toFixed(2)} s   client CPU ${(f.cpuMs / 1000).toFixed(2)} s   servers CPU ${f.serversCpuMs.map((b) => (b / 1000).toFixed(2)).join('/')} s   requests ${f.counts.requests} (conditional ${f.counts.conditional}, 304 ${f.counts.notModified})${rss}`;
}

/** The run whose wall time is the median (the lower middle one for an even count). */
function median(figures: Figures[]): Figures {
  return [...figures].sort((a, b) => a.wallMs - b.wallMs)[Math.floor((figures.length - 1) / 2)]!;
}

/** Issue 11's goals, each with its figure. The cold goal leaves out the servers' time; see the header comment. */
function goals(cold: Figures, warm: Figures): string {
  const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
  const servers = cold.serversCpuMs.reduce((a, b) => a + b, 0);
  const check = (ok: boolean): string => (ok ? 'met' : 'NOT MET');
  return [
    `  goals: cold client CPU ${s(cold.cpuMs)} ≤ 3 s: ${check(cold.cpuMs <= 3000)}`,
    `cold wall ${s(cold.wallMs)} ≤ 3 s + servers CPU ${s(servers)}: ${check(cold.wallMs <= 3000 + servers)}`,
    warm.counts.notModified > 0 ? `warm wall ${s(warm.wallMs)} ≤ 1 s: ${check(warm.wallMs <= 1000)}` : `warm: no 304s (no Last-Modified), not the goal's case`,
    `peak RSS ${Math.max(cold.rssMb, warm.rssMb).toFixed(0)} MB ≤ 200 MB: ${check(Math.max(cold.rssMb, warm.rssMb) <= 200)}`,
  ].join('; ');
}

async function main(): Promise<void> {
  const rowCount = Number(process.env.BENCH_STATUS_ROWS ?? 30_000);
  const packageCount = Number(process.env.BENCH_STATUS_PACKAGES ?? 1000);
  const only = process.env.BENCH_STATUS_ONLY?.split(',');
  const runs = Math.max(1, Number(process.env.BENCH_STATUS_RUNS ?? 1));
  const work = await makeTempDir('bench-status');
  try {
    const lock = join(work, 'lock.json');
    const packages = lockRows(rowCount, packageCount);
    writeStatusLock(lock, packages);
    const startup = await measureStartup(work);
    console.log(`status: ${packageCount} packages, 3 rebuilders × ${rowCount} rows, node ${process.version}, ${cpus().length} cores, load average ${loadavg()[0]!.toFixed(1)}; \`repro-oci --version\` takes ${(startup.wallMs / 1000).toFixed(2)} s wall, ${(startup.cpuMs / 1000).toFixed(2)} s CPU here`);
    for (const [name, scenario] of Object.entries(SCENARIOS)) {
      if (only && !only.includes(name)) continue;
      const servers = await Promise.all([97, 50, 20].map((badEvery) => startServer({ ...scenario.setup, rows: rowCount, packages: packageCount, badEvery })));
      try {
        const pairs: { cold: Figures; warm: Figures }[] = [];
        for (let run = 0; run < runs; run++) {
          // Each cold run starts with an empty cache and state (no pinned keys, no seal key yet).
          const cache = join(work, `cache-${name}-${run}`);
          const state = join(work, `state-${name}-${run}`);
          const args = ['status', lock, ...servers.flatMap((s) => ['--rebuilder', s.url]), '--cache', cache, '--require', '3', '--json'];
          const again = name === 'per-name' ? () => measurePerName(servers, packages.map((p) => p.name), HttpCache.at(cache)) : () => measure(servers, args, work, state);
          const cold = await again();
          pairs.push({ cold, warm: await again() });
        }
        const cold = median(pairs.map((p) => p.cold));
        const warm = median(pairs.map((p) => p.warm));
        console.log(`${name}: ${scenario.note}; ${cold.verdicts}${runs > 1 ? ` (median of ${runs} runs by wall time)` : ''}`);
        console.log(line('cold', cold));
        console.log(line('warm', warm));
        if (name !== 'per-name') console.log(goals(cold, warm));
      } finally {
        for (const s of servers) s.child.disconnect();
      }
    }
  } finally {
    await removeDir(work);
  }
}

if (process.argv[2] === '--serve') await serve(JSON.parse(process.argv[3]!) as ServerSetup);
else await main();
