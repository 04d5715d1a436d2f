import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { findJsonSyntaxError } from '../src/util/json-text.js';
import { closestName } from '../src/util/yaml-schema.js';
import { busyboxRepo, COMMANDS_SKIP } from './support/busybox.js';
import { runCli, tempDirFor, type RunResult } from './support/cli.js';
import { startRegistry } from './support/registry.js';

/**
 * Errors with a place: a mistake in a file names the file, the line and the column; a mistyped key the key it
 * most likely meant; a malformed digest, credentials option or failing setup command says exactly that. Each is
 * one line on stderr and exit 2, never a stack trace.
 */

/** The run failed with exactly this one line (after any progress lines), exit 2, no stack trace. */
function assertError(r: RunResult, line: string): void {
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.at(-1), `repro-oci: ${line}`, r.stderr);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  assert.doesNotMatch(r.stderr, /internal error/);
}

/** Nothing but the one line. */
function assertOnlyError(r: RunResult, line: string): void {
  assertError(r, line);
  assert.equal(r.stderr, `repro-oci: ${line}\n`);
}

const REPOSITORIES = 'repositories:\n  - name: core\n    servers: [repo/$repo/os/$arch]\n';

async function workDir(t: Parameters<typeof tempDirFor>[0], files: Record<string, string>): Promise<string> {
  const dir = await tempDirFor(t, 'places');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

test('a mistyped spec key is named at its line and column, with the key it most likely meant', async (t) => {
  const dir = await workDir(t, {
    'typo.yaml': `${REPOSITORIES}pakages: [busybox]\n`,
    'case.yaml': `${REPOSITORIES}packages: [busybox]\nimage:\n  config:\n    EntryPoint: [/bin/sh]\n`,
    'two.yaml': `${REPOSITORIES.replace('servers', 'server')}packages: [busybox]\nimage:\n  layer: { compression: zsdt }\n`,
    'far.yaml': `${REPOSITORIES}packages: [busybox]\nflavour: vanilla\n`,
  });
  const lock = (spec: string): Promise<RunResult> => runCli(['lock', spec, '-o', join(dir, 'out.lock.json')], { cwd: dir });
  // The "required property packages" error that the typo causes is not repeated.
  assertOnlyError(await lock('typo.yaml'), 'spec typo.yaml: line 4, column 1: unknown key /pakages (did you mean packages?)');
  // The spec's image section is checked with the spec, at its place in the file (lock checks it too).
  assertOnlyError(await lock('case.yaml'), 'spec case.yaml: line 7, column 5: unknown key /image/config/EntryPoint (did you mean Entrypoint?)');
  assertOnlyError(
    await lock('two.yaml'),
    'spec two.yaml: line 3, column 5: unknown key /repositories/0/server (did you mean servers?); line 6, column 25: /image/layer/compression must be one of gzip, zstd, none (did you mean zstd?)',
  );
  assertOnlyError(await lock('far.yaml'), 'spec far.yaml: line 5, column 1: unknown key /flavour');
});

test('YAML syntax errors name the line and column', async (t) => {
  const dir = await workDir(t, {
    'spec.yaml': 'repositories:\n  - name: core\n    servers: [repo\npackages: [busybox]\n',
    'dup.yaml': `${REPOSITORIES}packages: [a]\npackages: [b]\n`,
  });
  assertOnlyError(
    await runCli(['lock', 'spec.yaml'], { cwd: dir }),
    'spec spec.yaml: not valid YAML at line 4, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]',
  );
  assertOnlyError(await runCli(['lock', 'dup.yaml'], { cwd: dir }), 'spec dup.yaml: not valid YAML at line 5, column 1: Map keys must be unique');
});

test('a rebuilders file: syntax and schema errors at their place', async (t) => {
  const dir = await workDir(t, {
    'syntax.yaml': 'rebuilders:\n  - name: a\n    url: "http://x\n',
    'typo.yaml': 'rebuilder:\n  - name: a\n    url: http://127.0.0.1:1\n',
    'inner.yaml': 'rebuilders:\n  - name: a\n    URL: http://127.0.0.1:1\n',
  });
  const status = (file: string): Promise<RunResult> => runCli(['status', 'whatever.lock.json', '--rebuilders', file], { cwd: dir });
  assertOnlyError(await status('syntax.yaml'), 'rebuilders file syntax.yaml: not valid YAML at line 4, column 1: Missing closing "quote');
  assertOnlyError(await status('typo.yaml'), 'rebuilders file typo.yaml: line 1, column 1: unknown key /rebuilder (did you mean rebuilders?)');
  assertOnlyError(await status('inner.yaml'), 'rebuilders file inner.yaml: line 3, column 5: unknown key /rebuilders/0/URL (did you mean url?)');
});

test('a lock that is not JSON: the line and column where it stops being JSON, the text never quoted', async (t) => {
  const dir = await workDir(t, { 'spec.yaml': `${REPOSITORIES}packages: [busybox]\n` });
  const cases: [string, string][] = [
    ['{"lockVersion": 1,\n  "packages": }\n', "line 2, column 15: unexpected '}' where a value belongs"],
    ['{"lockVersion": 1,\n  "x": "a\tb"}', 'line 2, column 10: U+0009 inside a string (control characters must be escaped)'],
    ['{"lockVersion": 1} \u001b[2J', 'line 1, column 20: unexpected U+001B after the end of the JSON value'],
    ['{"lockVersion": 1,\n\n', 'line 3, column 1: the text ends where a quoted key belongs'],
  ];
  for (const [text, place] of cases) {
    writeFileSync(join(dir, 'bad.lock.json'), text);
    assertError(await runCli(['build', 'spec.yaml', '--lock', 'bad.lock.json', '-o', `oci:${join(dir, 'out')}`], { cwd: dir }), `lock bad.lock.json: not valid JSON at ${place}`);
  }
});

test('the JSON scanner agrees with JSON.parse on what is JSON', () => {
  const samples = ['{}', '[]', '0', '-0.5e+3', '"\\u00e9\\n"', '{"a":[1,{"b":null}],"c":true}', ' [ 1 , 2 ] ', '[01]', '[1,]', '{"a":1,}', '"\\x"', '[1e]', '-', 'nul', '"a', '[', '{"a" 1}', '\ufeff{}', '"\u2028"', '[.5]', '[1.]'];
  for (const text of samples) {
    let parses = true;
    try {
      JSON.parse(text);
    } catch {
      parses = false;
    }
    assert.equal(findJsonSyntaxError(text) === undefined, parses, JSON.stringify(text));
  }
  // Nesting deeper than any call stack is scanned, not recursed.
  assert.deepEqual(findJsonSyntaxError(`${'['.repeat(200_000)}}`), { offset: 200_000, problem: "unexpected '}' where a value belongs" });
});

test('closestName: case first, then a few edits; nothing for names far from every key', () => {
  assert.equal(closestName('EntryPoint', ['Cmd', 'Entrypoint']), 'Entrypoint');
  assert.equal(closestName('pakages', ['packages', 'archive']), 'packages');
  assert.equal(closestName('pacakges', ['packages']), 'packages', 'a swap of neighbours is one edit');
  assert.equal(closestName('flavour', ['packages', 'archive', 'image']), undefined);
  assert.equal(closestName('x'.repeat(10_000), ['x']), undefined);
});

test('an image recipe that is not JSON is named with its place', async (t) => {
  const dir = await tempDirFor(t, 'places-recipe');
  const recipe = Buffer.from('{"recipeVersion": 1,\n  "spec": ,\n}\n');
  mkdirSync(join(dir, 'root/usr/share/repro-oci'), { recursive: true });
  writeFileSync(join(dir, 'root/usr/share/repro-oci/recipe.json'), recipe);
  const digest = `sha256:${createHash('sha256').update(recipe).digest('hex')}`;
  writeFileSync(join(dir, 'image.yaml'), `config:\n  Labels:\n    io.github.repro-oci.recipe: "${digest}"\n`);
  const built = await runCli(['build', '--rootfs', join(dir, 'root'), '--config', join(dir, 'image.yaml'), '-o', `oci:${join(dir, 'img')}`]);
  assert.equal(built.code, 0, built.stderr);
  assertOnlyError(
    await runCli(['rebuild', `oci:${join(dir, 'img')}`], { env: { REPRO_OCI_CACHE: join(dir, 'cache') } }),
    "image: usr/share/repro-oci/recipe.json: not valid JSON at line 2, column 11: unexpected ',' where a value belongs",
  );
});

test('a malformed sha256 digest is called malformed; another algorithm is refused as such', async () => {
  assertOnlyError(
    await runCli(['inspect', 'docker://127.0.0.1:1/a@sha256:abc']),
    'docker://127.0.0.1:1/a@sha256:abc: digest "sha256:abc" is malformed: a sha256 digest is 64 lowercase hex digits, this has 3 hex digits',
  );
  const upper = `sha256:${'AB'.repeat(32)}`;
  assertOnlyError(
    await runCli(['inspect', `docker://127.0.0.1:1/a@${upper}`]),
    `docker://127.0.0.1:1/a@${upper}: digest "${upper}" is malformed: a sha256 digest is 64 lowercase hex digits, this has 64 hex digits (not all lowercase)`,
  );
  assertOnlyError(
    await runCli(['inspect', 'docker://127.0.0.1:1/a@sha256:xyz!']),
    'docker://127.0.0.1:1/a@sha256:xyz!: digest "sha256:xyz!" is malformed: a sha256 digest is 64 lowercase hex digits, this has other characters',
  );
  assertOnlyError(await runCli(['inspect', `docker://127.0.0.1:1/a@sha512:${'a'.repeat(128)}`]), `docker://127.0.0.1:1/a@sha512:${'a'.repeat(128)}: digest sha512:${'a'.repeat(128)}: only sha256 digests are supported`);
});

test('credentials errors name the option that gave them, before anything is read', async (t) => {
  const dir = await tempDirFor(t, 'places-creds');
  const env = { HOME: dir, REGISTRY_AUTH_FILE: join(dir, 'none.json'), DOCKER_CONFIG: join(dir, 'docker'), REPRO_OCI_RETRY_DELAY_MS: '1' };
  // The source does not exist: the credentials are judged first.
  const copy = (...args: string[]): Promise<RunResult> => runCli(['copy', ...args, `oci:${join(dir, 'missing')}`, 'docker://127.0.0.1:1/a:b'], { env });
  assertOnlyError(await copy('--dest-creds', 'nocolon'), '--dest-creds: expected USERNAME:PASSWORD');
  assertOnlyError(await copy('--src-creds', ':nouser'), '--src-creds: expected USERNAME:PASSWORD');
  assertOnlyError(await copy('--creds', ''), '--creds: expected USERNAME:PASSWORD');
  assertOnlyError(await copy('--creds', 'u:p', '--dest-creds', 'nocolon'), '--dest-creds: expected USERNAME:PASSWORD');

  // A registry that refuses or wants credentials: the hint and the refusal name the destination's option.
  const secured = await startRegistry({ htpasswd: { alice: 'secret' } });
  t.after(() => secured.stop());
  const image = join(dir, 'img');
  mkdirSync(join(dir, 'root'));
  writeFileSync(join(dir, 'root/hello'), 'hi\n');
  assert.equal((await runCli(['build', '--rootfs', join(dir, 'root'), '-o', `oci:${image}`])).code, 0);
  const dest = `docker://${secured.host}/private/img:v1`;
  const push = (...args: string[]): Promise<RunResult> => runCli(['copy', ...args, `oci:${image}`, dest], { env });
  const refusal = (message: string): RegExp => new RegExp(`^repro-oci: ${dest.replace(/[.]/g, '\\.')}: blob sha256:[0-9a-f]{64}: ${message}\n$`);
  const wants = await push();
  assert.equal(wants.code, 2);
  assert.match(wants.stderr, refusal('authentication required \\(HTTP 401\\); pass --dest-creds USER:PASS or add the registry to auth\\.json or ~/\\.docker/config\\.json'));
  const refused = await push('--dest-creds', 'alice:wrong');
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, refusal('credentials for alice from --dest-creds were refused \\(HTTP 401\\)'));
  assert.match((await push('--creds', 'alice:wrong')).stderr, refusal('credentials for alice from --creds were refused \\(HTTP 401\\)'));
  assert.equal((await push('--dest-creds', 'alice:secret')).code, 0);
});

test('a failing setup command shows the end of its stderr, escaped and cut short', { skip: COMMANDS_SKIP }, async (t) => {
  const dir = await tempDirFor(t, 'places-setup');
  await busyboxRepo(dir, ['sh']);
  const build = async (script: string): Promise<RunResult> => {
    const spec = `${REPOSITORIES}packages: [busybox]\nsigLevel: Never\nimage:\n  setup:\n    commands: ${JSON.stringify([['sh', '-c', script]])}\n`;
    writeFileSync(join(dir, 'spec.yaml'), spec);
    return runCli(['build', 'spec.yaml', '-o', `oci:${join(dir, 'out')}`], { cwd: dir, env: { REPRO_OCI_CACHE: join(dir, 'cache') } });
  };
  const what = (script: string): string => `setup command ${JSON.stringify(['sh', '-c', script])}`;

  // stdout is not mixed in; the last three lines of stderr, a progress bar's carriage returns splitting lines.
  const noisy = 'echo progress; echo one >&2; echo two >&2; printf "50%%\\r100%%\\n" >&2; printf "\\033[31mred\\033[0m\\n" >&2; exit 3';
  assertError(await build(noisy), `${what(noisy)} failed (exit 3): 50% | 100% | "\\x1b[31mred\\x1b[0m"`);
  const long = 'head=$(printf "%0400d" 0); echo "$head" >&2; exit 1';
  assertError(await build(long), `${what(long)} failed (exit 1): ${'0'.repeat(300)}…`);
  const quiet = 'echo only on stdout; exit 4';
  assertError(await build(quiet), `${what(quiet)} failed (exit 4), nothing on stderr; its output ends: only on stdout`);
  const silent = 'exit 5';
  assertError(await build(silent), `${what(silent)} failed (exit 5) with no output`);
});
