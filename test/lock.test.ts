import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { serveDirectory } from './support/http-server.js';
import { fakeClockEnv, runCli, tempDirFor } from './support/cli.js';
import { writeSyncDb, type FixturePackage } from './support/syncdb-fixture.js';

const DAY1: Record<string, FixturePackage[]> = {
  core: [
    { name: 'glibc', version: '2.39-1', arch: 'x86_64' },
    { name: 'bash', version: '5.2.026-2', arch: 'x86_64', depends: ['glibc', 'readline'] },
    { name: 'readline', version: '8.2.010-1', arch: 'x86_64', depends: ['glibc'] },
    { name: 'filesystem', version: '2024.01.31-1', groups: ['base'] },
  ],
  extra: [{ name: 'tzdata', version: '2024a-1', groups: ['base'] }],
};
const DAY2: Record<string, FixturePackage[]> = {
  core: [
    { name: 'glibc', version: '2.39-2', arch: 'x86_64' },
    { name: 'bash', version: '5.2.026-2', arch: 'x86_64', depends: ['glibc', 'readline', 'ncurses'] },
    { name: 'readline', version: '8.2.010-1', arch: 'x86_64', depends: ['glibc'] },
    { name: 'ncurses', version: '6.4-1', arch: 'x86_64' },
  ],
  extra: [{ name: 'tzdata', version: '2024a-1', groups: ['base'] }],
};

/** An archive tree as archive.archlinux.org lays it out: repos/YYYY/MM/DD/$repo/os/$arch/$repo.db. */
async function makeArchive(root: string): Promise<void> {
  for (const [date, repos] of [['2024/03/20', DAY1], ['2024/03/21', DAY2]] as const) {
    for (const [repo, pkgs] of Object.entries(repos)) {
      const dir = join(root, 'repos', date, repo, 'os', 'x86_64');
      mkdirSync(dir, { recursive: true });
      await writeSyncDb(join(dir, `${repo}.db`), pkgs);
    }
  }
}

function spec(url: string): string {
  return [`archive:`, `  url: ${url}`, `  date: "2024-03-20"`, `repositories: [core, extra]`, `packages: [bash, base]`, `sigLevel: Never`, ''].join('\n');
}

test('lock: identical bytes on every run, whatever the clock zone; records files, digests and order', async (t) => {
  const work = await tempDirFor(t, 'lock');
  await makeArchive(join(work, 'archive'));
  const server = await serveDirectory(join(work, 'archive'));
  t.after(() => server.close());
  writeFileSync(join(work, 'spec.yaml'), spec(server.url));
  const first = await runCli(['lock', join(work, 'spec.yaml'), '-o', join(work, 'a.json')], { env: { TZ: 'UTC', LANG: 'C' } });
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /locked 5 packages/);
  const second = await runCli(['lock', join(work, 'spec.yaml'), '-o', join(work, 'b.json')], { env: { TZ: 'America/St_Johns', LANG: 'de_DE.UTF-8' }, cwd: work });
  assert.equal(second.code, 0, second.stderr);
  const a = readFileSync(join(work, 'a.json'));
  assert.ok(a.equals(readFileSync(join(work, 'b.json'))), 'lock bytes differ between runs');
  // Another machine's clock: years ahead.
  const third = await runCli(['lock', join(work, 'spec.yaml'), '-o', join(work, 'c.json')], { env: fakeClockEnv('2033-01-01 00:00:00') });
  assert.equal(third.code, 0, third.stderr);
  assert.ok(a.equals(readFileSync(join(work, 'c.json'))), 'lock bytes depend on the clock');
  const lock = JSON.parse(a.toString()) as { archive: { date: string }; packages: { name: string; version: string; urls: string[]; sha256: string; reason: string }[] };
  assert.deepEqual(lock.packages.map((p) => `${p.name} ${p.version} ${p.reason}`), ['glibc 2.39-1 dependency', 'readline 8.2.010-1 dependency', 'bash 5.2.026-2 explicit', 'filesystem 2024.01.31-1 explicit', 'tzdata 2024a-1 explicit']);
  const bash = lock.packages.find((p) => p.name === 'bash')!;
  assert.deepEqual(bash.urls, [`${server.url}/repos/2024/03/20/core/os/x86_64/bash-5.2.026-2-x86_64.pkg.tar.zst`, `${server.url}/packages/b/bash/bash-5.2.026-2-x86_64.pkg.tar.zst`]);
  assert.match(bash.sha256, /^[0-9a-f]{64}$/);
  // The default output path sits next to the spec.
  const dflt = await runCli(['lock', join(work, 'spec.yaml')]);
  assert.equal(dflt.code, 0, dflt.stderr);
  assert.ok(readFileSync(join(work, 'spec.lock.json')).equals(a));
});

test('lock --update moves to a new snapshot and reports what changed', async (t) => {
  const work = await tempDirFor(t, 'lock-update');
  await makeArchive(join(work, 'archive'));
  const server = await serveDirectory(join(work, 'archive'));
  t.after(() => server.close());
  writeFileSync(join(work, 'spec.yaml'), spec(server.url));
  assert.equal((await runCli(['lock', join(work, 'spec.yaml')])).code, 0);
  const update = await runCli(['lock', join(work, 'spec.yaml'), '--update', '--snapshot', '2024-03-21']);
  assert.equal(update.code, 1, `exit 1: the lock changed; ${update.stderr}`);
  assert.equal(update.stdout, ['snapshot 2024-03-20 → 2024-03-21', '- filesystem 2024.01.31-1', '  glibc 2.39-1 → 2.39-2', '+ ncurses 6.4-1', ''].join('\n'));
  const again = await runCli(['lock', join(work, 'spec.yaml'), '--update', '--snapshot', '2024-03-21']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, 'no change\n');
});

test('lock: unreachable server, 404 and server errors give one clear line and no lock', async (t) => {
  const work = await tempDirFor(t, 'lock-errors');
  await makeArchive(join(work, 'archive'));
  const server = await serveDirectory(join(work, 'archive'));
  t.after(() => server.close());
  const lockPath = join(work, 'out.json');

  const closed = await serveDirectory(work);
  await closed.close(); // a port nothing listens on any more
  writeFileSync(join(work, 'down.yaml'), spec(closed.url));
  const down = await runCli(['lock', join(work, 'down.yaml'), '-o', lockPath], { env: { REPRO_OCI_RETRY_DELAY_MS: '1' } });
  assert.equal(down.code, 2);
  assert.match(down.stderr, /^repro-oci: repository core database: http:\/\/127\.0\.0\.1:\d+\/repos\/2024\/03\/20\/core\/os\/x86_64\/core\.db: ECONNREFUSED \(after 5 attempts\)$/m);
  assert.equal(down.stderr.trim().split('\n').length, 1);

  writeFileSync(join(work, 'missing.yaml'), spec(server.url).replace('2024-03-20', '2024-03-19'));
  const missing = await runCli(['lock', join(work, 'missing.yaml'), '-o', lockPath]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^repro-oci: repository core database: http:.*\/core\.db: HTTP 404 \(not found\)\n$/);

  writeFileSync(join(work, 'spec.yaml'), spec(server.url));
  const before = server.requests.length;
  server.faults.push({ path: 'core.db', times: 2, kind: 'status', status: 503 }, { path: 'extra.db', times: 1, kind: 'drop' });
  const flaky = await runCli(['lock', join(work, 'spec.yaml'), '-o', lockPath], { env: { REPRO_OCI_RETRY_DELAY_MS: '1' } });
  assert.equal(flaky.code, 0, `transient faults are retried: ${flaky.stderr}`);
  assert.equal(server.requests.slice(before).filter((r) => r.includes('core.db')).length, 3);

  const badSpec = join(work, 'bad.yaml');
  writeFileSync(badSpec, 'repositories: [core]\npackages: [bash]\n');
  const bad = await runCli(['lock', badSpec, '-o', join(work, 'never.json')]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /repository core is given by name only, which needs an archive snapshot/);
});
