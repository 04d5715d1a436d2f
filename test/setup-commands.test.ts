import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { busyboxRepo, COMMANDS_SKIP } from './support/busybox.js';
import { runCli, tempDirFor } from './support/cli.js';

/** A repository with one package: a static busybox with the applets the commands use, and an etc/shadow. */
function commandsRepo(dir: string): Promise<string> {
  return busyboxRepo(dir, ['sh', 'cat', 'mkdir', 'hostname', 'date'], [
    { path: 'etc/shadow', type: 'file', content: 'root::19800::::::\n', mode: 0o600 },
    { path: 'var/cache/ldconfig', type: 'dir' },
  ]);
}

function spec(commands: string[][]): string {
  return [
    'repositories: [{ name: core, servers: [repo/$repo/os/$arch] }]',
    'packages: [busybox]',
    'sigLevel: Never',
    'image:',
    '  setup:',
    '    presets: [archlinux-docker]',
    `    commands: ${JSON.stringify(commands)}`,
    '',
  ].join('\n');
}

async function layerFile(image: string, path: string): Promise<{ content: string; listing: string }> {
  const index = JSON.parse(readFileSync(join(image, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(readFileSync(join(image, 'blobs/sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as { layers: { digest: string }[] };
  const layer = join(image, 'blobs/sha256', manifest.layers[0]!.digest.slice(7));
  return {
    content: execFileSync('tar', ['-xzOf', layer, path], { encoding: 'utf8' }),
    listing: execFileSync('tar', ['--numeric-owner', '-tvzf', layer], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } }),
  };
}

test('setup commands run in the sandbox; their output is folded back deterministically', { skip: COMMANDS_SKIP }, async (t) => {
  const work = await tempDirFor(t, 'setup-cmd');
  await commandsRepo(work);
  const commands = [['sh', '-c', 'echo "sde=$SOURCE_DATE_EPOCH tz=$TZ lang=$LANG host=$(hostname)" > /etc/motd; mkdir -p /usr/share/made; echo x > /usr/share/made/file; date +%s%N > /var/cache/ldconfig/aux-cache; umask > /etc/umask-seen']];
  writeFileSync(join(work, 'spec.yaml'), spec(commands));
  const env = { REPRO_OCI_CACHE: join(work, 'cache') };
  const a = await runCli(['build', 'spec.yaml', '--source-date-epoch', '1700000000', '-o', `oci:${join(work, 'a')}`], { cwd: work, env });
  assert.equal(a.code, 0, a.stderr);
  // Another time zone and umask for the second build: neither reaches the commands.
  const umask = process.umask(0o077);
  const b = await runCli(['build', 'spec.yaml', '--source-date-epoch', '1700000000', '-o', `oci:${join(work, 'b')}`], { cwd: work, env: { ...env, TZ: 'Asia/Tokyo' } }).finally(() => process.umask(umask));
  assert.equal(b.code, 0, b.stderr);
  assert.equal(b.stdout, a.stdout);
  const { content, listing } = await layerFile(join(work, 'a'), 'etc/motd');
  assert.equal(content, 'sde=1700000000 tz=UTC lang=C host=repro-oci\n');
  assert.match(listing, /^-rw-r--r-- 0\/0 +\d+ 2023-11-14 22:13 etc\/motd$/m, 'mtime clamped, owner from the model');
  assert.match(listing, /usr\/share\/made\/file$/m);
  assert.equal((await layerFile(join(work, 'b'), 'etc/umask-seen')).content, '0022\n', 'the sandbox sets the umask, whatever the caller\'s');
  assert.doesNotMatch(listing, /aux-cache/, 'excluded by the preset, so its variation does not matter');
});

test('a nondeterministic setup command fails the build and names the path', { skip: COMMANDS_SKIP }, async (t) => {
  const work = await tempDirFor(t, 'setup-nondet');
  await commandsRepo(work);
  writeFileSync(join(work, 'spec.yaml'), spec([['sh', '-c', 'cat /proc/sys/kernel/random/uuid > /etc/instance-id']]));
  const r = await runCli(['build', 'spec.yaml', '-o', `oci:${join(work, 'out')}`], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'cache') } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\nrepro-oci: setup commands are nondeterministic: 1 path\(s\) differ between two runs: etc\/instance-id\n$/);
  assert.equal(existsSync(join(work, 'out')), false);
});

test('a failing setup command is a clear error', { skip: COMMANDS_SKIP }, async (t) => {
  const work = await tempDirFor(t, 'setup-fail');
  await commandsRepo(work);
  writeFileSync(join(work, 'spec.yaml'), spec([['sh', '-c', 'echo broken >&2; exit 3']]));
  const r = await runCli(['build', 'spec.yaml', '-o', `oci:${join(work, 'out')}`], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'cache') } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /setup command \["sh","-c","echo broken >&2; exit 3"\] failed \(exit 3\): broken/);
});
