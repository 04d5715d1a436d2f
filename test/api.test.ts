import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, run, tempDirFor, type RunResult } from './support/cli.js';
import { EXAMPLE_DIGEST } from './support/example-digest.js';

/**
 * The package as another project sees it: a directory of its own whose node_modules/repro-oci is this repository,
 * so `import 'repro-oci'` goes through package.json's `main` exactly as after `npm install repro-oci`.
 */
async function consumerProject(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await tempDirFor(t, 'api');
  await mkdir(join(dir, 'node_modules'));
  await symlink(REPO_ROOT, join(dir, 'node_modules', 'repro-oci'), 'dir');
  await writeFile(join(dir, 'package.json'), '{ "name": "consumer", "private": true, "type": "module" }\n');
  return dir;
}

/** Runs an ES module's source in the consumer project; the environment carries no SOURCE_DATE_EPOCH. */
function runModule(dir: string, source: string): Promise<RunResult> {
  return run(process.execPath, ['--input-type=module', '-e', source], { cwd: dir, env: { SOURCE_DATE_EPOCH: undefined, TMPDIR: dir } });
}

const VERBS = ['lock', 'build', 'buildFromLock', 'buildRootfs', 'rebuild', 'rebuildSource', 'diff', 'copy', 'inspect', 'install', 'ls', 'status', 'verify'];
const CLASSES = ['UserError', 'DigestMismatchError', 'NotFoundError', 'ContentCache'];
const HELPERS = ['loadSpec', 'readLock', 'serializeLock', 'parseReference', 'openSource', 'openDestination', 'formatDiff', 'formatRebuild', 'formatInspect', 'writeExample'];

test('the package imports by name from another directory and exports the verbs, errors and helpers (with their types)', async (t) => {
  const dir = await consumerProject(t);
  const r = await runModule(dir, `
    import * as api from 'repro-oci';
    const kinds = Object.fromEntries(Object.entries(api).map(([k, v]) => [k, typeof v]));
    const e = new api.DigestMismatchError('x');
    process.stdout.write(JSON.stringify({ kinds, resolved: import.meta.resolve('repro-oci'), subclass: e instanceof api.UserError }));
  `);
  assert.equal(r.code, 0, r.stderr);
  const { kinds, resolved, subclass } = JSON.parse(r.stdout) as { kinds: Record<string, string>; resolved: string; subclass: boolean };
  for (const name of [...VERBS, ...CLASSES, ...HELPERS]) assert.equal(kinds[name], 'function', `export ${name}`);
  assert.equal(kinds.VERSION, 'string');
  assert.ok(subclass, 'DigestMismatchError is a UserError');
  // Through the symlink (which node resolves to its real path) to package.json's main.
  assert.equal(resolved, pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'index.js')).href);
  // The types a TypeScript caller needs ship beside it.
  const types = await readFile(join(REPO_ROOT, 'dist', 'src', 'index.d.ts'), 'utf8');
  for (const type of ['Lock', 'Spec', 'Descriptor', 'Digest', 'DiffReport', 'RebuildResult', 'ImageReference', 'SpecBuildResult', 'InspectReport', 'StatusReport', 'VerifyResult']) {
    assert.match(types, new RegExp(`\\b${type}\\b`), `type ${type}`);
  }
});

test("docs/api.md's example runs as written and prints the example's pinned digest, reproducible", async (t) => {
  const doc = await readFile(join(REPO_ROOT, 'docs', 'api.md'), 'utf8');
  const blocks = [...doc.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  assert.equal(blocks.length, 1, 'docs/api.md has one js example');
  const dir = await consumerProject(t);
  await writeFile(join(dir, 'example.mjs'), blocks[0]!);
  const r = await run(process.execPath, ['example.mjs'], { cwd: dir, env: { SOURCE_DATE_EPOCH: undefined, REPRO_OCI_CACHE: join(dir, 'unused-cache'), TMPDIR: dir } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${EXAMPLE_DIGEST} reproducible\n`);
  assert.match(r.stderr, /^locked 4 packages to /m);
  // The build, given no log, printed nothing of its own: the only fetches shown are the rebuild's, through its log.
  assert.equal(r.stderr.split('\n').filter((line) => line.startsWith('fetched ')).length, 4, r.stderr);
  // The example cleaned up after itself and used only the caches it named.
  assert.deepEqual((await readdir(dir)).sort(), ['example.mjs', 'node_modules', 'package.json']);
});

test('a user error rejects with UserError (one line) and the library prints nothing, writes nothing', async (t) => {
  const dir = await consumerProject(t);
  await writeFile(join(dir, 'spec.yaml'), 'pakages: [hello]\n');
  const r = await runModule(dir, `
    import { build, diff, lock, UserError } from 'repro-oci';
    const outcomes = [];
    for (const call of [
      () => lock('spec.yaml'),
      () => lock('missing.yaml'),
      () => build('spec.yaml', { outputs: ['oci:out:hello'] }),
      () => build('spec.yaml', { outputs: ['nosuchtransport:out'] }),
      () => diff('oci:nothing-here', 'oci:nothing-here'),
    ]) {
      try {
        await call();
        outcomes.push({ resolved: true });
      } catch (err) {
        outcomes.push({ userError: err instanceof UserError, message: err.message });
      }
    }
    process.stderr.write(JSON.stringify(outcomes));
  `);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '', 'nothing on stdout');
  const outcomes = JSON.parse(r.stderr) as { userError?: boolean; message?: string }[];
  assert.equal(outcomes.length, 5);
  for (const o of outcomes) {
    assert.equal(o.userError, true, JSON.stringify(o));
    assert.ok(o.message && !o.message.includes('\n'), JSON.stringify(o));
  }
  assert.match(outcomes[0]!.message!, /pakages/);
  assert.match(outcomes[3]!.message!, /nosuchtransport/);
  for (const path of ['spec.lock.json', 'out', 'missing.lock.json']) assert.ok(!existsSync(join(dir, path)), `${path} was not written`);
});
