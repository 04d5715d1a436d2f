import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { busyboxRepo, COMMANDS_SKIP } from './support/busybox.js';
import { runCli, tempDirFor } from './support/cli.js';
import { serveDirectory } from './support/http-server.js';

/**
 * Images are untrusted input: their recipe's setup commands run under time, disk, memory and process limits, and
 * its package URLs are contacted only where the user allows (the Arch Linux Archive, --mirror, --allow-url).
 */
const SKIP = COMMANDS_SKIP;
const APPLETS = ['sh', 'sleep', 'dd', 'ls', 'grep', 'head', 'cat', 'mkdir', 'true', 'wc', 'seq', 'tr', 'truncate'];

function spec(commands: string[][], server = 'repo/$repo/os/$arch'): string {
  return [`repositories: [{ name: core, servers: ['${server}'] }]`, 'packages: [busybox]', 'sigLevel: Never', 'image:', '  setup:', `    commands: ${JSON.stringify(commands)}`, ''].join('\n');
}

/**
 * The copies commands run on go to memory when it has room (a tmpfs: /dev/shm by default), else to TMPDIR: each
 * test gets a directory of its own in both, so that what a stopped command leaves behind is seen wherever it went.
 */
async function workWithSpec(t: TestContext, commands: string[][]): Promise<{ work: string; env: Record<string, string> }> {
  const work = await tempDirFor(t, 'untrusted');
  await busyboxRepo(work, APPLETS);
  writeFileSync(join(work, 'spec.yaml'), spec(commands));
  const memory = mkdtempSync('/dev/shm/untrusted-test-');
  chmodSync(memory, 0o755); // the sandbox's uid must reach what is in it
  t.after(() => rmSync(memory, { recursive: true, force: true }));
  return { work, env: { REPRO_OCI_CACHE: join(work, 'cache'), TMPDIR: join(work, 'tmp'), REPRO_OCI_MEMORY_SCRATCH: memory } };
}

/** The scratch directories are the run's own: nothing may be left in them, whatever stopped the commands. */
function assertScratchEmpty(work: string, env: Record<string, string>): void {
  assert.deepEqual(readdirSync(join(work, 'tmp')), []);
  assert.deepEqual(readdirSync(env.REPRO_OCI_MEMORY_SCRATCH!), []);
}

/** The sandbox runs as a uid of its own, which must be able to reach the scratch directory in TMPDIR. */
function prepareTmp(work: string): void {
  chmodSync(work, 0o755);
  mkdirSync(join(work, 'tmp'), { mode: 0o755 });
}

/** Processes on this machine whose command line is exactly `argv`. */
function processesRunning(argv: string[]): number {
  let count = 0;
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8') === `${argv.join('\0')}\0`) count++;
    } catch {
      // Gone meanwhile.
    }
  }
  return count;
}

test('a setup command that never ends is stopped at the time limit, with the command and the limit named', { skip: SKIP, timeout: 120_000 }, async (t) => {
  const forever = ['sleep', '100000'];
  const { work, env } = await workWithSpec(t, [forever]);
  prepareTmp(work);
  const started = Date.now();
  const r = await runCli(['build', 'spec.yaml', '--command-timeout', '1s', '-o', `oci:${join(work, 'out')}`], { cwd: work, env });
  assert.equal(r.code, 2, r.stderr);
  assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
  assert.match(r.stderr, /\nrepro-oci: setup command \["sleep","100000"\] was stopped: it ran longer than the time limit \(1s, --command-timeout\)\n$/);
  assert.equal(processesRunning(forever), 0, 'the sandbox was killed with its command');
  assert.equal(existsSync(join(work, 'out')), false);
  assertScratchEmpty(work, env);
});

test('a setup command that writes a huge file is stopped at the disk limit', { skip: SKIP, timeout: 120_000 }, async (t) => {
  const { work, env } = await workWithSpec(t, [['dd', 'if=/dev/zero', 'of=/big', 'bs=1M', 'count=200']]);
  prepareTmp(work);
  const r = await runCli(['build', 'spec.yaml', '--command-disk', '20M', '-o', `oci:${join(work, 'out')}`], { cwd: work, env });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /\nrepro-oci: setup command \["dd","if=\/dev\/zero","of=\/big","bs=1M","count=200"\] was stopped: it wrote more than the disk limit \(20 MiB, --command-disk\)\n$/);
  assertScratchEmpty(work, env);
});

test('many files, each under the per-file limit, are stopped at the disk limit too; so is a full /tmp', { skip: SKIP, timeout: 120_000 }, async (t) => {
  const many = ['sh', '-c', 'for i in $(seq 200); do dd if=/dev/zero of=/f$i bs=1M count=1 2>/dev/null; sleep 0.05; done'];
  const { work, env } = await workWithSpec(t, [many]);
  prepareTmp(work);
  const r = await runCli(['build', 'spec.yaml', '--command-disk', '20M', '-o', `oci:${join(work, 'out')}`], { cwd: work, env });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /was stopped: it wrote more than the disk limit \(20 MiB, --command-disk\)\n$/);
  assertScratchEmpty(work, env);

  // The sandbox's /tmp is memory (tmpfs): it is bounded by the same limit, so the command fails on its own.
  writeFileSync(join(work, 'spec.yaml'), spec([['dd', 'if=/dev/zero', 'of=/tmp/big', 'bs=1M', 'count=200']]));
  const tmp = await runCli(['build', 'spec.yaml', '--command-disk', '20M', '-o', `oci:${join(work, 'out')}`], { cwd: work, env });
  assert.equal(tmp.code, 2, tmp.stderr);
  assert.match(tmp.stderr, /\["dd","if=\/dev\/zero","of=\/tmp\/big","bs=1M","count=200"\] was stopped: it wrote a file larger than the disk limit \(20 MiB, --command-disk\)\n$/);
  assertScratchEmpty(work, env);
});

test('processes spawned without end are bounded by the process limit', { skip: SKIP, timeout: 120_000 }, async (t) => {
  // 100 processes at most, each gone after 5 s, even without a limit: the test cannot hurt the machine.
  const spawner = ['sh', '-c', 'i=0; while [ $i -lt 100 ]; do sleep 5 & i=$((i + 1)); done; wait'];
  const { work, env } = await workWithSpec(t, [spawner]);
  prepareTmp(work);
  const started = Date.now();
  const r = await runCli(['build', 'spec.yaml', '--command-processes', '32', '--command-timeout', '30s', '-o', `oci:${join(work, 'out')}`], { cwd: work, env });
  assert.equal(r.code, 2, r.stderr);
  // Either the watch sees the limit reached and stops the sandbox, or the shell fails on its first refused fork.
  assert.match(r.stderr, /\nrepro-oci: setup command \["sh","-c",.*\] (was stopped: it reached the process limit \(32, --command-processes\)|failed \(exit 2\): .*can't fork: Resource temporarily unavailable)\n$/);
  assert.ok(Date.now() - started < 25_000, `took ${Date.now() - started} ms`);
  assertScratchEmpty(work, env);
});

test('a setup command that allocates more than the memory limit fails', { skip: SKIP, timeout: 120_000 }, async (t) => {
  // 200 MB held in a shell variable: fine by default, refused under a 64 MiB address space.
  const hog = ['sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo ${#x} > /dev/null'];
  const { work, env } = await workWithSpec(t, [hog]);
  prepareTmp(work);
  const r = await runCli(['build', 'spec.yaml', '--command-memory', '64M', '-o', `oci:${join(work, 'out')}`], { cwd: work, env });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /\nrepro-oci: setup command \["sh","-c",.*\] failed \(exit \d+\): .*(out of memory|Cannot allocate memory)/i);
  assertScratchEmpty(work, env);
});

test('rebuild names the commands it will run, applies its own limits, and --no-commands refuses before fetching', { skip: SKIP, timeout: 300_000 }, async (t) => {
  const { work, env } = await workWithSpec(t, [['sleep', '3'], ['mkdir', '/made']]);
  prepareTmp(work);
  const built = await runCli(['build', 'spec.yaml', '-o', `oci:${join(work, 'img')}:t`], { cwd: work, env });
  assert.equal(built.code, 0, built.stderr);
  const allow = ['--mirror', join(work, 'repo', 'core', 'os', 'x86_64')];
  const fresh = { ...env, REPRO_OCI_CACHE: join(work, 'rebuild-cache') };

  const ok = await runCli(['rebuild', `oci:${join(work, 'img')}:t`, ...allow], { cwd: work, env: fresh });
  assert.equal(ok.code, 0, ok.stderr + ok.stdout);
  assert.equal(ok.stdout, `reproducible: ${built.stdout}`);
  assert.match(ok.stderr, /^the image's recipe runs 2 setup command\(s\), sandboxed \(no network; 10m per command, 4 GiB written, 4 GiB address space per process, 1024 processes\):\n {2}\["sleep","3"\]\n {2}\["mkdir","\/made"\]\n/m);

  const slow = await runCli(['rebuild', `oci:${join(work, 'img')}:t`, ...allow, '--command-timeout', '1s'], { cwd: work, env: fresh });
  assert.equal(slow.code, 2, slow.stderr);
  assert.match(slow.stderr, /\nrepro-oci: setup command \["sleep","3"\] was stopped: it ran longer than the time limit \(1s, --command-timeout\)\n$/);

  // Relative paths in a recipe are relative to a spec directory the image does not record: never resolved (not even
  // against the current directory, nor allowed by --allow-url), so the package comes from a mirror or the cache.
  for (const extra of [[], ['--allow-url', `file://${work}/`]]) {
    const local = await runCli(['rebuild', `oci:${join(work, 'img')}:t`, ...extra], { cwd: work, env: { ...env, REPRO_OCI_CACHE: join(work, 'empty-cache') } });
    assert.equal(local.code, 2);
    assert.equal(local.stderr, 'repro-oci: package busybox 1.36.1-1: the recipe names it only by a path relative to the spec it was built from ("repo/core/os/x86_64/busybox-1.36.1-1-x86_64.pkg.tar.zst"), which a rebuild does not resolve; give --mirror DIR, a directory that holds "busybox-1.36.1-1-x86_64.pkg.tar.zst"\n');
  }

  const none = { ...env, REPRO_OCI_CACHE: join(work, 'none-cache') };
  const refused = await runCli(['rebuild', `oci:${join(work, 'img')}:t`, ...allow, '--no-commands'], { cwd: work, env: none });
  assert.equal(refused.code, 2);
  assert.equal(refused.stderr, 'repro-oci: --no-commands: the recipe has 2 setup command(s): ["sleep","3"], ["mkdir","/made"]\n');
  assert.equal(existsSync(join(work, 'none-cache', 'blobs')), false, 'nothing fetched');
  const ownSpec = await runCli(['build', 'spec.yaml', '--no-commands', '-o', `oci:${join(work, 'never')}`], { cwd: work, env: none });
  assert.equal(ownSpec.code, 2);
  assert.equal(ownSpec.stderr, 'repro-oci: --no-commands: the spec has 2 setup command(s): ["sleep","3"], ["mkdir","/made"]\n');
  assert.equal(existsSync(join(work, 'none-cache', 'blobs')), false, 'nothing fetched');
  assertScratchEmpty(work, env);
});

test("a recipe's loopback and file: URLs are never contacted unless --allow-url is given", { skip: SKIP, timeout: 120_000 }, async (t) => {
  const { work, env } = await workWithSpec(t, []);
  prepareTmp(work);
  const server = await serveDirectory(join(work, 'repo', 'core', 'os', 'x86_64'));
  t.after(() => server.close());
  // The user's own spec may name a loopback server: build keeps working as before.
  writeFileSync(join(work, 'spec.yaml'), spec([], `${server.url}`));
  const built = await runCli(['build', 'spec.yaml', '-o', `oci:${join(work, 'img')}:t`], { cwd: work, env });
  assert.equal(built.code, 0, built.stderr);
  const lock = JSON.parse(readFileSync(join(work, 'spec.lock.json'), 'utf8')) as { packages: { urls: string[] }[] };
  assert.match(lock.packages[0]!.urls[0]!, /^http:\/\/127\.0\.0\.1:\d+\/busybox-/);

  const before = server.requests.length;
  const fresh = { ...env, REPRO_OCI_CACHE: join(work, 'rebuild-cache') };
  const refused = await runCli(['rebuild', `oci:${join(work, 'img')}:t`], { cwd: work, env: fresh });
  assert.equal(refused.code, 2);
  assert.equal(refused.stderr, `repro-oci: package busybox 1.36.1-1: none of the recipe's URLs is allowed (${JSON.stringify(lock.packages[0]!.urls[0])}); give --mirror URL or --allow-url ${server.url}/\n`);
  assert.equal(server.requests.length, before, 'the server received no request');

  const allowed = await runCli(['rebuild', `oci:${join(work, 'img')}:t`, '--allow-url', `${server.url}/`], { cwd: work, env: fresh });
  assert.equal(allowed.code, 0, allowed.stderr + allowed.stdout);
  assert.equal(allowed.stdout, `reproducible: ${built.stdout}`);
  assert.ok(server.requests.length > before);

  // A lock whose URL is a local secret: the build (the user's own lock, cache warm) records it in the recipe.
  const secret = join(work, 'secret');
  writeFileSync(secret, 'root:$6$secret:19800::::::\n', { mode: 0o600 });
  const forged = { ...lock, packages: lock.packages.map((p) => ({ ...p, urls: [`file://${secret}`, 'file:///etc/shadow'] })) };
  writeFileSync(join(work, 'forged.lock.json'), JSON.stringify(forged));
  const shadow = await runCli(['build', 'spec.yaml', '--lock', 'forged.lock.json', '-o', `oci:${join(work, 'shadow')}:t`], { cwd: work, env });
  assert.equal(shadow.code, 0, shadow.stderr);
  const leak = await runCli(['rebuild', `oci:${join(work, 'shadow')}:t`], { cwd: work, env: { ...env, REPRO_OCI_CACHE: join(work, 'leak-cache') } });
  assert.equal(leak.code, 2);
  assert.match(leak.stderr, /^repro-oci: package busybox 1\.36\.1-1: none of the recipe's URLs is allowed \("file:\/\/.*\/secret", "file:\/\/\/etc\/shadow"\); give --mirror URL or --allow-url file:\/\/.*\/\n$/);
  assert.doesNotMatch(leak.stderr, new RegExp(`\\b${statSync(secret).size}\\b|bytes|size|exist|found`));
});

/** A spec whose only setup is ALPM hooks of its own, each running `script` with /usr/bin/sh after the transaction. */
function hookSpec(scripts: string[]): string {
  const hook = (script: string): string => ['[Trigger]', 'Operation = Install', 'Type = Package', 'Target = busybox', '[Action]', 'When = PostTransaction', `Exec = /usr/bin/sh -c "${script}"`, ''].join('\n');
  const files = scripts.map((s, i) => ({ name: `${String(i).padStart(2, '0')}-fill.hook`, content: hook(s) }));
  return ['repositories: [{ name: core, servers: [repo/$repo/os/$arch] }]', 'packages: [busybox]', 'sigLevel: Never', 'image:', '  setup:', '    hooks: true', `    hookFiles: ${JSON.stringify(files)}`, ''].join('\n');
}

test('hooks that each stay under the disk limit are stopped when together they pass it; so are sparse files, whose size takes no disk', { skip: SKIP, timeout: 120_000 }, async (t) => {
  const { work, env } = await workWithSpec(t, []);
  prepareTmp(work);
  // Steps are checked cheaply against the file system's own counters; the third 8 MiB pushes the tree past 20 MiB.
  writeFileSync(join(work, 'spec.yaml'), hookSpec([0, 1, 2, 3].map((i) => `dd if=/dev/zero of=/fill-${i} bs=1M count=8 2>/dev/null`)));
  const filled = await runCli(['build', 'spec.yaml', '--command-disk', '20M', '-o', `oci:${join(work, 'out')}`], { cwd: work, env });
  assert.equal(filled.code, 2, filled.stderr);
  assert.match(filled.stderr, /\nrepro-oci: hook 02-fill\.hook was stopped: it wrote more than the disk limit \(20 MiB, --command-disk\)\n$/);
  assertScratchEmpty(work, env);

  // Sparse files take no blocks, so no counter sees them while the hooks run: the tree is measured before it is read.
  writeFileSync(join(work, 'spec.yaml'), hookSpec(['truncate -s 15M /sparse-a', 'truncate -s 15M /sparse-b']));
  const sparse = await runCli(['build', 'spec.yaml', '--command-disk', '20M', '-o', `oci:${join(work, 'out')}`], { cwd: work, env });
  assert.equal(sparse.code, 2, sparse.stderr);
  assert.match(sparse.stderr, /(^|\n)repro-oci: scriptlets and hooks were stopped: they wrote more than the disk limit \(20 MiB, --command-disk\)\n$/);
  assert.equal(existsSync(join(work, 'out')), false);
  assertScratchEmpty(work, env);
});

test('a hook that never ends is stopped at the time limit, and nothing of either run outlives the build', { skip: SKIP, timeout: 120_000 }, async (t) => {
  const { work, env } = await workWithSpec(t, []);
  prepareTmp(work);
  // Hooks start from a process of their own (setup/spawner.ts): stopping one must still reach the command.
  writeFileSync(join(work, 'spec.yaml'), hookSpec(['sleep 100017']));
  const r = await runCli(['build', 'spec.yaml', '--command-timeout', '1s', '-o', `oci:${join(work, 'out')}`], { cwd: work, env });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /\nrepro-oci: hook 00-fill\.hook was stopped: it ran longer than the time limit \(1s, --command-timeout\)\n$/);
  assert.equal(processesRunning(['sleep', '100017']), 0, 'both runs\' sandboxes were killed with their command');
  assert.equal(existsSync(join(work, 'out')), false);
  assertScratchEmpty(work, env);
});
