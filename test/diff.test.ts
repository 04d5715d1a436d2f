import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateExampleArchive } from '../src/example/generate.js';
import { CLI, REPO_ROOT, run, runCli, tempDirFor } from './support/cli.js';
import { tamperFile } from './support/tamper.js';

async function exampleImage(work: string): Promise<{ ref: string; dir: string }> {
  await generateExampleArchive(join(REPO_ROOT, 'examples/hello-arch/packages.yaml'), work);
  copyFileSync(join(REPO_ROOT, 'examples/hello-arch/spec.yaml'), join(work, 'spec.yaml'));
  const built = await runCli(['build', 'spec.yaml', '-o', `oci:${join(work, 'img')}:t`], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'cache') } });
  assert.equal(built.code, 0, built.stderr);
  return { ref: `oci:${join(work, 'img')}:t`, dir: join(work, 'img') };
}

test('one changed byte: diff names the file, its package and the field; rebuild says not reproducible and shows it', async (t) => {
  const work = await tempDirFor(t, 'diff');
  const { ref, dir } = await exampleImage(work);
  await tamperFile(dir, 't', 'usr/lib/libgreeting.txt', (b) => Buffer.from(b.toString().replace('hello', 'jello')), join(work, 'bad'));
  const bad = `oci:${join(work, 'bad')}:t`;

  const same = await runCli(['diff', ref, ref]);
  assert.equal(same.code, 0, same.stderr);
  assert.match(same.stdout, /^same: sha256:/);

  const diff = await runCli(['diff', ref, bad]);
  assert.equal(diff.code, 1, diff.stderr);
  assert.match(diff.stdout, /\[config\] 1 difference\(s\)\n {2}config rootfs\.diff_ids\[0\]: /);
  assert.match(diff.stdout, /\[file\] 1 difference\(s\)\n {2}layer 0: \/usr\/lib\/libgreeting\.txt: sha256 [0-9a-f]{16} → [0-9a-f]{16} \[libgreeting\]\n/);
  assert.doesNotMatch(diff.stdout, /\[package\]/);

  const json = JSON.parse((await runCli(['diff', '--json', ref, bad])).stdout) as { same: boolean; differences: { level: string; where: string; field?: string; owner?: string }[] };
  assert.equal(json.same, false);
  assert.deepEqual(json.differences.filter((d) => d.level === 'file').map((d) => [d.where, d.field, d.owner]), [['usr/lib/libgreeting.txt', 'sha256', 'libgreeting']]);

  const report = join(work, 'report');
  assert.equal((await runCli(['diff', '--report-dir', report, ref, bad])).code, 1);
  assert.equal(readFileSync(join(report, 'a/usr/lib/libgreeting.txt'), 'utf8'), 'hello, reproducible world\n');
  assert.equal(readFileSync(join(report, 'b/usr/lib/libgreeting.txt'), 'utf8'), 'jello, reproducible world\n');

  // A reader that has gone (`| head`, here `| true`, which exits before the report is written) is no crash.
  const piped = await run('bash', ['-c', '"$0" "$1" diff --json "$2" "$3" | true; echo "exit ${PIPESTATUS[0]}"', process.execPath, CLI, ref, bad]);
  assert.equal(piped.stdout, 'exit 1\n', piped.stderr);
  assert.equal(piped.stderr, '');

  const ignored = await runCli(['diff', '--ignore', 'usr/lib/*', ref, bad]);
  assert.doesNotMatch(ignored.stdout, /libgreeting\.txt/);

  const rebuild = await runCli(['rebuild', bad], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'cache') } });
  assert.equal(rebuild.code, 1, rebuild.stderr);
  assert.match(rebuild.stdout, /^NOT reproducible: image sha256:[0-9a-f]{64}, rebuild sha256:[0-9a-f]{64}\n/);
  assert.match(rebuild.stdout, /\/usr\/lib\/libgreeting\.txt: sha256 [0-9a-f]{16} → [0-9a-f]{16} \[libgreeting\]/);
  assert.ok(existsSync(join(work, 'bad')));
});

test('semantic mode ignores timestamps; the pacman view shows package changes and owners', async (t) => {
  const work = await tempDirFor(t, 'diff-pkg');
  const { ref } = await exampleImage(work);
  const other = join(work, 'other');
  const built = await runCli(['build', 'spec.yaml', '--source-date-epoch', '1800000000', '-o', `oci:${other}:t`], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'cache') } });
  assert.equal(built.code, 0, built.stderr);
  const plain = await runCli(['diff', ref, `oci:${other}:t`]);
  assert.equal(plain.code, 1);
  assert.match(plain.stdout, /config created: "2023-11-14T22:13:20Z" → "2027-01-15T08:00:00Z"/);
  assert.match(plain.stdout, /\/usr\/share\/repro-oci\/recipe\.json: sha256/);
  assert.match(plain.stdout, /\/etc\/locale\.conf: mtime 1700000000 → 1800000000/);
  const semantic = await runCli(['diff', '--semantic', ref, `oci:${other}:t`]);
  assert.doesNotMatch(semantic.stdout, /mtime|config created/);
  assert.match(semantic.stdout, /recipe\.json: sha256/, 'the recipe records SOURCE_DATE_EPOCH, a real difference');

  // Fewer packages: the pacman view lists what went, and each vanished file names its package.
  writeFileSync(join(work, 'small.yaml'), readFileSync(join(work, 'spec.yaml'), 'utf8').replace('packages: [hello-base, hello]', 'packages: [hello-base]'));
  const small = await runCli(['build', 'small.yaml', '-o', `oci:${join(work, 'small')}:t`], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'cache') } });
  assert.equal(small.code, 0, small.stderr);
  const pk = await runCli(['diff', ref, `oci:${join(work, 'small')}:t`]);
  assert.match(pk.stdout, /\[package\] 2 difference\(s\)\n {2}package - hello 1:1\.2-1\n {2}package - libgreeting 2\.1-3\n/);
  assert.match(pk.stdout, /layer 0: - \/usr\/bin\/hello \(file\) \[hello\]/);
});
