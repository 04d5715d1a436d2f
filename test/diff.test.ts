import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DiffJson } from '../src/compare/format-diff.js';
import { generateExampleArchive } from '../src/example/generate.js';
import { CLI, REPO_ROOT, run, runCli, tempDirFor } from './support/cli.js';
import { tamperFile } from './support/tamper.js';

const EXAMPLE = join(REPO_ROOT, 'examples/hello-arch');

/** Builds the bundled example in `work` (its archive generated from `packagesYaml`, default the example's own). */
async function exampleImage(work: string, packagesYaml = join(EXAMPLE, 'packages.yaml')): Promise<{ ref: string; dir: string }> {
  mkdirSync(work, { recursive: true });
  await generateExampleArchive(packagesYaml, work);
  copyFileSync(join(EXAMPLE, 'spec.yaml'), join(work, 'spec.yaml'));
  const built = await runCli(['build', 'spec.yaml', '-o', `oci:${join(work, 'img')}:t`], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'cache') } });
  assert.equal(built.code, 0, built.stderr);
  return { ref: `oci:${join(work, 'img')}:t`, dir: join(work, 'img') };
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

async function diffJson(args: string[]): Promise<{ code: number | null; doc: DiffJson }> {
  const r = await runCli(['diff', '--json', ...args]);
  assert.ok(r.code === 0 || r.code === 1, r.stderr);
  return { code: r.code, doc: JSON.parse(r.stdout) as DiffJson };
}

test('one changed byte: diff names the file, its package and the field; rebuild says not reproducible and shows the same differences', async (t) => {
  const work = await tempDirFor(t, 'diff');
  const { ref, dir } = await exampleImage(work);
  await tamperFile(dir, 't', 'usr/lib/libgreeting.txt', (b) => Buffer.from(b.toString().replace('hello', 'jello')), join(work, 'bad'));
  const bad = `oci:${join(work, 'bad')}:t`;

  const same = await runCli(['diff', ref, ref]);
  assert.equal(same.code, 0, same.stderr);
  assert.match(same.stdout, /^same: sha256:/);

  const diff = await runCli(['diff', ref, bad]);
  assert.equal(diff.code, 1, diff.stderr);
  const lines = diff.stdout.split('\n');
  // The summary first: the file differs in a package whose version did not change, which is what a tampered image looks like.
  assert.equal(lines[0], '1 file differs (1 in package of unchanged version: libgreeting); layer content otherwise identical');
  assert.match(diff.stdout, /\[config\] 1 difference\n {2}~ rootfs\.diff_ids\[0\]: "sha256:[0-9a-f]{64}" → "sha256:[0-9a-f]{64}"\n/);
  assert.match(diff.stdout, /\[entry\] layer 0: 1 difference\n {2}~ \/usr\/lib\/libgreeting\.txt: sha256 [0-9a-f]{16} → [0-9a-f]{16} \[libgreeting\]\n/);
  assert.doesNotMatch(diff.stdout, /\[package\]/);

  const { code, doc } = await diffJson([ref, bad]);
  assert.equal(code, 1);
  assert.deepEqual(Object.keys(doc), ['summary', 'differences'], 'the summary object comes first');
  assert.equal(doc.summary.same, false);
  assert.equal(doc.summary.text, lines[0]);
  assert.deepEqual(doc.summary.sameVersionDiffering, ['libgreeting']);
  assert.deepEqual(
    doc.differences.filter((d) => d.level === 'entry'),
    [{ kind: 'changed', level: 'entry', path: '/usr/lib/libgreeting.txt', layer: 0, before: { sha256: sha256Hex('hello, reproducible world\n') }, after: { sha256: sha256Hex('jello, reproducible world\n') }, package: 'libgreeting' }],
  );

  const report = join(work, 'report');
  assert.equal((await runCli(['diff', '--report-dir', report, ref, bad])).code, 1);
  assert.equal(readFileSync(join(report, 'a/usr/lib/libgreeting.txt'), 'utf8'), 'hello, reproducible world\n');
  assert.equal(readFileSync(join(report, 'b/usr/lib/libgreeting.txt'), 'utf8'), 'jello, reproducible world\n');

  // A reader that has gone (`| head`, here `| true`, which exits before the report is written) is no crash.
  const piped = await run('bash', ['-c', '"$0" "$1" diff --json "$2" "$3" | true; echo "exit ${PIPESTATUS[0]}"', process.execPath, CLI, ref, bad]);
  assert.equal(piped.stdout, 'exit 1\n', piped.stderr);
  assert.equal(piped.stderr, '');

  // --ignore takes the path as printed, and globs without the leading slash as before.
  for (const pattern of ['/usr/lib/libgreeting.txt', 'usr/lib/*']) {
    const ignored = await diffJson(['--ignore', pattern, ref, bad]);
    assert.equal(ignored.code, 1, 'the config and manifest still differ');
    assert.deepEqual(ignored.doc.differences, doc.differences.filter((d) => d.level !== 'entry'), pattern);
    assert.equal(ignored.doc.summary.files, 0);
  }

  const rebuild = await runCli(['rebuild', bad], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'cache') } });
  assert.equal(rebuild.code, 1, rebuild.stderr);
  const rebuildLines = rebuild.stdout.split('\n');
  assert.match(rebuildLines[0]!, /^NOT reproducible: image sha256:[0-9a-f]{64}, rebuild sha256:[0-9a-f]{64}$/);
  assert.equal(rebuildLines[1], lines[0], 'the same summary line as diff');
  assert.match(rebuild.stdout, /~ \/usr\/lib\/libgreeting\.txt: sha256 [0-9a-f]{16} → [0-9a-f]{16} \[libgreeting\]/);
  assert.ok(existsSync(join(work, 'bad')));

  // rebuild --json holds the differences as diff --json gives them (the rebuild is the original image).
  const rebuildJson = await runCli(['rebuild', '--json', bad], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'cache') } });
  assert.equal(rebuildJson.code, 1, rebuildJson.stderr);
  const verdict = JSON.parse(rebuildJson.stdout) as { reproducible: boolean; diff: DiffJson };
  assert.equal(verdict.reproducible, false);
  const reverse = await diffJson([bad, ref]);
  assert.deepEqual(verdict.diff.differences, reverse.doc.differences);
  assert.equal(verdict.diff.summary.text, reverse.doc.summary.text);
  assert.equal('parsed' in verdict.diff, false);
});

test('a package update: the summary names it, each difference says kind, level, values and owner, --ignore round-trips', async (t) => {
  const work = await tempDirFor(t, 'diff-update');
  const { ref } = await exampleImage(join(work, 'old'));
  const updated = join(work, 'packages.yaml');
  writeFileSync(updated, readFileSync(join(EXAMPLE, 'packages.yaml'), 'utf8').replace('version: "2.1-3"', 'version: "2.1-4"').replace('hello, reproducible world', 'hello, updated world'));
  const { ref: next } = await exampleImage(join(work, 'new'), updated);

  const text = await runCli(['diff', ref, next]);
  assert.equal(text.code, 1, text.stderr);
  const [summary, minus, plus] = text.stdout.split('\n');
  assert.equal(summary, '1 package changed (libgreeting 2.1-3 → 2.1-4); 12 files differ; layer content otherwise identical; config: 1 field differs (config.Labels["io.github.repro-oci.recipe"])');
  assert.match(minus!, /^--- a sha256:[0-9a-f]{64}$/);
  assert.match(plus!, /^\+\+\+ b sha256:[0-9a-f]{64}$/);
  assert.match(text.stdout, /\[package\] 1 difference\n {2}~ libgreeting 2\.1-3 → 2\.1-4\n/);
  assert.match(text.stdout, /\n {2}~ \/usr\/lib\/libgreeting\.txt: size 26 → 21, sha256 [0-9a-f]{16} → [0-9a-f]{16} \[libgreeting\]\n/);
  assert.match(text.stdout, /\n {2}- \/var\/lib\/pacman\/local\/libgreeting-2\.1-3\/desc \(file\) \[libgreeting\]\n/);
  assert.match(text.stdout, /\n {2}\+ \/var\/lib\/pacman\/local\/libgreeting-2\.1-4 \(dir\) \[libgreeting\]\n/);

  const { doc } = await diffJson([ref, next]);
  assert.equal(doc.summary.text, summary);
  assert.deepEqual(doc.summary.packages, { added: [], removed: [], changed: [{ name: 'libgreeting', before: '2.1-3', after: '2.1-4' }] });
  assert.deepEqual(doc.summary.counts, { index: 0, manifest: 2, config: 2, layer: 0, package: 1, entry: 12 }, 'config and layer digests (the gzip size happens to stay)');
  assert.equal(doc.summary.files, 12);
  assert.deepEqual(doc.summary.sameVersionDiffering, []);
  const find = (level: string, path: string): DiffJson['differences'][number] | undefined => doc.differences.find((d) => d.level === level && d.path === path);
  assert.deepEqual(find('package', 'libgreeting'), { kind: 'changed', level: 'package', path: 'libgreeting', before: '2.1-3', after: '2.1-4', package: 'libgreeting' });
  assert.deepEqual(find('entry', '/usr/lib/libgreeting.txt'), {
    kind: 'changed',
    level: 'entry',
    path: '/usr/lib/libgreeting.txt',
    layer: 0,
    before: { size: 26, sha256: sha256Hex('hello, reproducible world\n') },
    after: { size: 21, sha256: sha256Hex('hello, updated world\n') },
    package: 'libgreeting',
  });
  const removedDesc = find('entry', '/var/lib/pacman/local/libgreeting-2.1-3/desc')!;
  assert.equal(removedDesc.kind, 'removed');
  assert.equal(removedDesc.package, 'libgreeting');
  assert.equal(removedDesc.after, undefined);
  assert.deepEqual(Object.keys(removedDesc.before as object), ['type', 'mode', 'uid', 'gid', 'size', 'mtime', 'sha256'], 'a removed entry keeps all its fields');
  assert.equal((removedDesc.before as { mode: number }).mode, 0o644, 'values, not strings');
  const addedDir = find('entry', '/var/lib/pacman/local/libgreeting-2.1-4')!;
  assert.deepEqual([addedDir.kind, (addedDir.after as { type: string }).type, addedDir.before], ['added', 'dir', undefined]);
  // Field values are JSON values, not JSON inside strings.
  assert.equal(typeof (find('entry', '/usr/lib/libgreeting.txt')!.before as { size: unknown }).size, 'number');
  assert.match(find('config', 'rootfs.diff_ids[0]')!.before as string, /^sha256:[0-9a-f]{64}$/);
  assert.ok(doc.differences.filter((d) => d.level !== 'entry' && d.level !== 'package').every((d) => d.package === undefined));

  // Each printed path, given to --ignore, removes exactly its own difference; the exit status stays 1.
  for (const [level, path] of [
    ['entry', '/var/lib/pacman/local/libgreeting-2.1-3/desc'],
    ['config', 'config.Labels["io.github.repro-oci.recipe"]'],
    ['package', 'libgreeting'],
    ['manifest', 'layers[0].digest'],
  ] as const) {
    assert.ok(text.stdout.includes(` ${path}`), `${path} is printed`);
    const ignored = await diffJson(['--ignore', path, ref, next]);
    assert.equal(ignored.code, 1);
    assert.deepEqual(ignored.doc.differences, doc.differences.filter((d) => !(d.level === level && d.path === path)), path);
  }
  const noLabel = await runCli(['diff', '--ignore', 'config.Labels["io.github.repro-oci.recipe"]', ref, next]);
  assert.equal(noLabel.stdout.split('\n')[0], '1 package changed (libgreeting 2.1-3 → 2.1-4); 12 files differ; layer content otherwise identical');
});

test('semantic mode ignores timestamps; the pacman view shows package changes and owners', async (t) => {
  const work = await tempDirFor(t, 'diff-pkg');
  const { ref } = await exampleImage(work);
  const other = join(work, 'other');
  const built = await runCli(['build', 'spec.yaml', '--source-date-epoch', '1800000000', '-o', `oci:${other}:t`], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'cache') } });
  assert.equal(built.code, 0, built.stderr);
  const plain = await runCli(['diff', ref, `oci:${other}:t`]);
  assert.equal(plain.code, 1);
  assert.match(plain.stdout, /~ created: "2023-11-14T22:13:20Z" → "2027-01-15T08:00:00Z"/);
  assert.match(plain.stdout, /~ \/usr\/share\/repro-oci\/recipe\.json: mtime 1700000000 → 1800000000, sha256 [0-9a-f]{16} → [0-9a-f]{16}\n/);
  assert.match(plain.stdout, /~ \/etc\/locale\.conf: mtime 1700000000 → 1800000000\n/);
  const semantic = await runCli(['diff', '--semantic', ref, `oci:${other}:t`]);
  assert.equal(semantic.code, 1);
  assert.doesNotMatch(semantic.stdout, /mtime|~ created/);
  assert.match(semantic.stdout, /org\.opencontainers\.image\.created"\]: "2023-11-14T22:13:20Z" → "2027-01-15T08:00:00Z"/, 'a label the preset derives from SOURCE_DATE_EPOCH is content');
  assert.match(semantic.stdout, /recipe\.json: sha256/, 'the recipe records SOURCE_DATE_EPOCH, a real difference');

  // Fewer packages: the pacman view lists what went, and each vanished file names its package.
  writeFileSync(join(work, 'small.yaml'), readFileSync(join(work, 'spec.yaml'), 'utf8').replace('packages: [hello-base, hello]', 'packages: [hello-base]'));
  const small = await runCli(['build', 'small.yaml', '-o', `oci:${join(work, 'small')}:t`], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'cache') } });
  assert.equal(small.code, 0, small.stderr);
  const pk = await runCli(['diff', ref, `oci:${join(work, 'small')}:t`]);
  assert.match(pk.stdout, /^2 packages removed \(hello 1:1\.2-1, libgreeting 2\.1-3\); \d+ files differ; layer content otherwise identical; /);
  assert.match(pk.stdout, /\[package\] 2 differences\n {2}- hello 1:1\.2-1\n {2}- libgreeting 2\.1-3\n/);
  assert.match(pk.stdout, /\n {2}- \/usr\/bin\/hello \(file\) \[hello\]\n/);
});
