/**
 * Helpers for scripts/bench-rootfs.sh (compiled to dist/scripts/bench-rootfs.js):
 *
 *   select MB LIST SOURCE...   writes to LIST the NUL-separated paths (relative to /) of about MB megabytes of
 *                              regular-file content under the SOURCEs, hardlinks counted once, staying on each
 *                              source's filesystem; files that would overshoot are skipped
 *   report KEY=VALUE...        prints the benchmark table from the measured figures
 */
import { lstat, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

async function select(megabytes: number, listFile: string, sources: string[]): Promise<void> {
  const limit = megabytes * 1024 * 1024;
  const seen = new Set<string>();
  const paths: string[] = [];
  let total = 0;
  const full = (): boolean => total >= limit * 0.98;
  const walk = async (dir: string, dev: number): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      if (full()) return;
      const path = join(dir, name);
      const st = await lstat(path);
      if (st.isDirectory()) {
        if (st.dev !== dev) continue;
        paths.push(path);
        await walk(path, dev);
      } else if (st.isFile()) {
        const inode = `${st.dev}:${st.ino}`;
        if (!seen.has(inode)) {
          if (total + st.size > limit) continue;
          total += st.size;
          seen.add(inode);
        }
        paths.push(path);
      } else if (st.isSymbolicLink()) {
        paths.push(path);
      }
    }
  };
  for (const source of sources) {
    if (full()) break;
    const st = await lstat(source);
    paths.push(source);
    await walk(source, st.dev);
  }
  await writeFile(listFile, paths.map((p) => `${p.replace(/^\/+/, '')}\0`).join(''));
  process.stderr.write(`selected ${(total / 1048576).toFixed(0)} MB in ${paths.length} entries\n`);
}

function report(args: string[]): void {
  const v = Object.fromEntries(args.map((a) => [a.slice(0, a.indexOf('=')), Number(a.slice(a.indexOf('=') + 1))])) as Record<string, number>;
  const num = (k: string): number => {
    const n = v[k];
    if (n === undefined || !Number.isFinite(n)) throw new Error(`report: missing or bad ${k}`);
    return n;
  };
  const ratio = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(2) : 'n/a');
  const mb = (kb: number): string => (kb / 1024).toFixed(1);
  const row = (label: string, seconds: string, rss: string): string => `${label.padEnd(36)} ${seconds.padStart(9)} ${rss.padStart(13)}`;
  const [large, small] = [num('large_mb'), num('small_mb')];
  const lines = [
    `input: ${large} MB in ${num('large_files')} files; small input: ${small} MB in ${num('small_files')} files`,
    'peak RSS of the tar pipeline is that of its largest process (GNU time, wait4 rusage)',
    '',
    row('', 'seconds', 'peak RSS MB'),
    row(`repro-oci build (${large} MB)`, num('repro_s').toFixed(2), mb(num('repro_kb'))),
    row(`tar | gzip -n (${large} MB)`, num('tar_s').toFixed(2), mb(num('tar_kb'))),
    row('ratio repro-oci / tar', ratio(num('repro_s'), num('tar_s')), ratio(num('repro_kb'), num('tar_kb'))),
    row(`repro-oci build (${small} MB)`, num('small_s').toFixed(2), mb(num('small_kb'))),
    row(`ratio ${large} MB / ${small} MB input`, ratio(num('repro_s'), num('small_s')), ratio(num('repro_kb'), num('small_kb'))),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'select' && rest.length >= 3) {
  await select(Number(rest[0]), rest[1]!, rest.slice(2));
} else if (command === 'report') {
  report(rest);
} else {
  process.stderr.write('usage: bench-rootfs.js select MB LIST SOURCE... | report KEY=VALUE...\n');
  process.exitCode = 2;
}
