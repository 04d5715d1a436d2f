import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import fc from 'fast-check';
import { parseLock } from '../src/lock/lock.js';
import { REPO_ROOT, runCli, tempDirFor } from './support/cli.js';
import { rawPackageLock, sampleLock } from './support/raw-lock.js';

const HEX = (c: string): string => c.repeat(64);

function assertOneLineRefusal(r: { code: number | null; stderr: string; stdout: string }, message: RegExp): void {
  assert.equal(r.code, 2, r.stderr + r.stdout);
  assert.doesNotMatch(r.stderr, /internal error/);
  assert.match(r.stderr, /^repro-oci: [^\n]*\n$/, `one line: ${r.stderr}`);
  assert.match(r.stderr, message);
}

test('ls/install: a lock whose package name holds ../ is refused at load, before anything becomes a path', async (t) => {
  const dir = await tempDirFor(t, 'lock-name');
  const lock = await rawPackageLock(dir, '../../evil');
  const ls = await runCli(['ls', lock], { env: { REPRO_OCI_CACHE: join(dir, 'cache') } });
  assertOneLineRefusal(ls, /lock .*lock\.json: \/packages\/0\/name must match pattern/);
  assert.doesNotMatch(ls.stdout, /\.\.\//, 'no ../ entry listed');
  const install = await runCli(['install', lock, '--root', join(dir, 'root')], { env: { REPRO_OCI_CACHE: join(dir, 'cache') } });
  assertOneLineRefusal(install, /\/packages\/0\/name must match pattern/);
});

test('ls: a well-formed lock with a raw package still installs (the fixture itself is sound)', async (t) => {
  const dir = await tempDirFor(t, 'lock-ok');
  const ls = await runCli(['ls', await rawPackageLock(dir, 'good')], { env: { REPRO_OCI_CACHE: join(dir, 'cache') } });
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /\/var\/lib\/pacman\/local\/good-1-1\/desc/);
});

const HOSTILE: [string, (lock: Record<string, unknown>) => void, RegExp][] = [
  ['sigLevel: 5', (l) => (l.sigLevel = 5), /\/sigLevel must be string/],
  ['urls: [1]', (l) => ((l.packages as Record<string, unknown>[])[0]!.urls = [1]), /\/packages\/0\/urls\/0 must be string/],
  ['a float csize', (l) => ((l.packages as Record<string, unknown>[])[0]!.csize = 1.5), /\/packages\/0\/csize must be integer/],
  ['an isize above 2^53', (l) => ((l.packages as Record<string, unknown>[])[0]!.isize = 2 ** 53 + 2), /\/packages\/0\/isize must be <= 9007199254740991/],
  ['a builddate of 1e300', (l) => ((l.packages as Record<string, unknown>[])[0]!.builddate = 1e300), /\/packages\/0\/builddate must be <= 9007199254740991/],
  ['reason: null', (l) => ((l.packages as Record<string, unknown>[])[0]!.reason = null), /\/packages\/0\/reason must be string/],
  ['a version holding /', (l) => ((l.packages as Record<string, unknown>[])[0]!.version = '1/../2-1'), /\/packages\/0\/version must match pattern/],
  ['a file name with a /', (l) => ((l.packages as Record<string, unknown>[])[0]!.filename = '../pkg.tar.zst'), /\/packages\/0\/filename must match pattern/],
  ['a keyring name with a /', (l) => (l.keyring = { name: '../../etc/x', keys: `sha256:${HEX('2')}`, trusted: [], revoked: [] }), /\/keyring\/name must match pattern/],
  ['an unknown key', (l) => (l.extra = true), /: unknown key \/extra\n/],
  ['a package listed twice', (l) => (l.packages = [...(l.packages as unknown[]), ...(l.packages as unknown[])]), /package good is listed twice/],
  ['a sigLevel pacman does not know', (l) => (l.sigLevel = 'Sometimes'), /sigLevel/],
  ['a file: URL whose path does not decode', (l) => ((l.packages as Record<string, unknown>[])[0]!.urls = ['file:///%zz']), /\/packages\/0\/urls\/0: "file:\/\/\/%zz" is not a URL that can be fetched/],
  ['a file: URL naming another host', (l) => ((l.packages as Record<string, unknown>[])[0]!.urls = ['file://host/x']), /\/packages\/0\/urls\/0: "file:\/\/host\/x" is not a URL that can be fetched/],
  ['a server URL that does not parse', (l) => ((l.repositories as Record<string, unknown>[])[0]!.servers = ['http://[::1']), /\/repositories\/0\/servers\/0: "http:\/\/\[::1" is not a URL/],
];

for (const [name, mutate, message] of HOSTILE) {
  test(`ls: a lock with ${name} is one line, exit 2`, async (t) => {
    const dir = await tempDirFor(t, 'lock-hostile');
    const r = await runCli(['ls', await rawPackageLock(dir, 'good', { mutate })], { env: { REPRO_OCI_CACHE: join(dir, 'cache') } });
    assertOneLineRefusal(r, message);
  });
}

test('.PKGINFO and sync database names are checked as the lock\'s are', async () => {
  const { parsePkgInfo } = await import('../src/pacman/pkginfo.js');
  const { parseDesc, readSyncDesc } = await import('../src/pacman/desc.js');
  assert.throws(() => parsePkgInfo('pkgname = ../x\npkgver = 1-1\n', 'p .PKGINFO'), /p \.PKGINFO: package name "\.\.\/x" is not valid/);
  assert.throws(() => parsePkgInfo('pkgname = x\npkgver = 1/2-1\n', 'p .PKGINFO'), /p \.PKGINFO: version "1\/2-1" is not valid/);
  const desc = (name: string, version: string, filename: string) => readSyncDesc(parseDesc(`%FILENAME%\n${filename}\n\n%NAME%\n${name}\n\n%VERSION%\n${version}\n`, 'db'), 'db');
  assert.equal(desc('a', '1:2.0_rc1+x~y-1.1', 'a-1:2.0-1-any.pkg.tar.zst').value.name, 'a');
  assert.throws(() => desc('-a', '1-1', 'f'), /db: package name "-a" is not valid/);
  assert.throws(() => desc('a', '1 2-1', 'f'), /db: version "1 2-1" is not valid/);
  assert.throws(() => desc('a', '1-1', '.hidden'), /db: file name "\.hidden" is not valid/);
  assert.throws(() => desc('a', '1-1', 'x/../../y'), /db: file name "x\/\.\.\/\.\.\/y" is not valid/);
  assert.throws(() => desc('a', '1-1', 'é'.repeat(128)), /is not valid/, 'more than NAME_MAX bytes');
});

/** What the schema itself says, independently of the loader's code. */
const schemaValid = new Ajv({ strict: false }).compile(JSON.parse(readFileSync(join(REPO_ROOT, 'schemas/lock.schema.json'), 'utf8')) as object);

/** Arbitrary JSON-ish values a hostile lock could put anywhere. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.constantFrom(2 ** 53, 2 ** 53 + 2, -1, 1e300, 0.5, Number.MAX_SAFE_INTEGER),
  fc.string(),
  fc.constantFrom('', '../x', '.', '-a', 'a/b', 'x\ny', 'explicit', 'dependency', 'Never', `sha256:${HEX('a')}`, HEX('b')),
  fc.array(fc.oneof(fc.integer(), fc.string()), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(fc.integer(), fc.string()), { maxKeys: 3 }),
);

type Mutation = { path: (string | number)[]; op: 'set' | 'delete' | 'addKey'; value: unknown; key: string };

/** Applies a mutation at a path chosen by index into whatever the lock holds there (objects by key, arrays by position). */
function mutate(lock: unknown, m: Mutation): unknown {
  const copy = structuredClone(lock) as Record<string, unknown>;
  let node: unknown = copy;
  let parent: Record<string | number, unknown> | undefined;
  let key: string | number | undefined;
  for (const step of m.path) {
    if (node === null || typeof node !== 'object') break;
    const keys = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    if (keys.length === 0) break;
    parent = node as Record<string | number, unknown>;
    key = keys[Number(step) % keys.length]!;
    node = parent[key];
  }
  if (parent === undefined || key === undefined) return m.value;
  if (m.op === 'delete') {
    if (Array.isArray(parent)) parent.splice(Number(key), 1);
    else delete parent[key];
  } else if (m.op === 'addKey' && node !== null && typeof node === 'object' && !Array.isArray(node)) {
    (node as Record<string, unknown>)[m.key] = m.value;
  } else {
    parent[key] = m.value;
  }
  return copy;
}

test('property: thousands of mutated locks are accepted only when schema-valid, else refused in one line; nothing else escapes', (t) => {
  const base = sampleLock({ name: 'bash', version: '1:5.2.026-2', filename: 'bash-1:5.2.026-2-x86_64.pkg.tar.zst', sha256: HEX('c'), csize: 100 });
  assert.doesNotThrow(() => parseLock(JSON.stringify(base), 'lock'), 'the unmutated sample is valid');
  const mutation: fc.Arbitrary<Mutation> = fc.record({
    path: fc.array(fc.nat(20), { minLength: 1, maxLength: 4 }),
    op: fc.constantFrom('set', 'delete', 'addKey'),
    value: anyValue,
    key: fc.string({ maxLength: 6 }),
  });
  let accepted = 0;
  let refused = 0;
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), fc.boolean(), (mutations, asText) => {
      const lock = mutations.reduce<unknown>((l, m) => mutate(l, m), base);
      // Sometimes as text with a cut or a stray byte, so that the JSON layer is exercised too.
      const text = asText ? JSON.stringify(lock) : JSON.stringify(lock).slice(0, -1 - (mutations.length % 3));
      try {
        parseLock(text, 'lock L');
        assert.ok(schemaValid(lock), `accepted a lock the schema refuses: ${text}`);
        accepted++;
      } catch (err) {
        assert.equal((err as Error).name, 'UserError', `not a UserError: ${(err as Error).stack}`);
        assert.doesNotMatch((err as Error).message, /\n/, 'one line');
        assert.match((err as Error).message, /^lock L/);
        refused++;
      }
    }),
    { numRuns: 5000 },
  );
  t.diagnostic(`accepted ${accepted}, refused ${refused}`);
  assert.ok(refused > 1000, `refusals: ${refused}`);
  assert.ok(accepted > 0, `some mutations keep the lock valid: ${accepted}`);
});

test('rebuild: the lock inside an image\'s recipe is checked like a lock file', async () => {
  const { parseRecipe } = await import('../src/image/recipe.js');
  const lock = sampleLock({ name: 'good', version: '1-1', filename: 'good-1-1-any.pkg.tar.zst', sha256: HEX('d'), csize: 1 });
  const recipe = (l: unknown) => Buffer.from(JSON.stringify({ recipeVersion: 1, reproOci: '0', spec: { repositories: [{ name: 'core', servers: ['repo'] }], packages: ['good'] }, lock: l, sourceDateEpoch: 0, compressor: 'gzip' }));
  assert.equal(parseRecipe(recipe(lock), undefined, 'image').lock.packages[0]!.name, 'good');
  (lock.packages as Record<string, unknown>[])[0]!.name = '../../../etc';
  assert.throws(() => parseRecipe(recipe(lock), undefined, 'image'), (err: Error) => err.name === 'UserError' && /^image: recipe lock: \/packages\/0\/name must match pattern/.test(err.message));
});

test('the schema\'s name, version and file name patterns are the code\'s', async () => {
  const names = await import('../src/pacman/names.js');
  const schema = JSON.parse(readFileSync(join(REPO_ROOT, 'schemas/lock.schema.json'), 'utf8')) as { definitions: { package: { properties: Record<string, { pattern: string }> } } };
  const props = schema.definitions.package.properties;
  assert.equal(props.name!.pattern, names.PACKAGE_NAME.source);
  assert.equal(props.version!.pattern, names.PACKAGE_VERSION.source);
  assert.equal(props.filename!.pattern, names.PACKAGE_FILENAME.source);
});

test('build --lock and lock --update read the lock through the same checks', async (t) => {
  const dir = await tempDirFor(t, 'lock-commands');
  const lock = await rawPackageLock(dir, 'good', { mutate: (l) => ((l.packages as Record<string, unknown>[])[0]!.reason = null) });
  writeFileSync(join(dir, 'spec.yaml'), 'repositories: [{ name: core, servers: [repo] }]\npackages: [good]\nsigLevel: Never\n');
  const before = readFileSync(lock);
  const build = await runCli(['build', join(dir, 'spec.yaml'), '--lock', lock, '-o', `oci:${join(dir, 'out')}`], { env: { REPRO_OCI_CACHE: join(dir, 'cache') } });
  assertOneLineRefusal(build, /\/packages\/0\/reason must be string/);
  const update = await runCli(['lock', join(dir, 'spec.yaml'), '-o', lock, '--update']);
  assertOneLineRefusal(update, /\/packages\/0\/reason must be string/);
  assert.ok(readFileSync(lock).equals(before), 'the lock is left as it was');
});

/** Every leaf of a JSON value, as a path of keys and indices. */
function leaves(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== 'object') return [path];
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value);
  return entries.flatMap(([k, v]) => leaves(v, [...path, k]));
}

function setAt(value: unknown, path: (string | number)[], leaf: unknown): unknown {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[path.at(-1)!] = leaf;
  return copy;
}

test('property: a mutated lock that loads is installed or refused in one line by ls\'s pipeline, never a crash', async (t) => {
  const dir = await tempDirFor(t, 'lock-downstream');
  const { ContentCache } = await import('../src/fetch/cache.js');
  const { fetchLockedPackages, lockSignatures } = await import('../src/install/fetch-packages.js');
  const { installPackages } = await import('../src/install/installer.js');
  const base = JSON.parse(readFileSync(await rawPackageLock(dir, 'good'), 'utf8')) as unknown;
  const paths = leaves(base);
  // Values of the kinds a lock holds, many of them valid, so that most mutations load and go on downstream.
  const text = fc.constantFrom('good', 'other', 'pkg-1-1-any.pkg.tar.zst', 'missing.pkg.tar.zst', '../pkg-1-1-any.pkg.tar.zst', '/etc/hostname', 'file:///etc/hostname', 'file:///nonexistent', 'ftp://x/y', '1-1', '2:3-4.5', 'Never', 'Optional', 'Required', 'PackageNever', 'dependency', 'core', 'x86_64', HEX('e'));
  const number = fc.oneof(fc.nat({ max: 1 << 20 }), fc.constantFrom(0, 1, Number.MAX_SAFE_INTEGER));
  const valueAt = (path: (string | number)[]): unknown => path.reduce<unknown>((node, key) => (node as Record<string | number, unknown>)[key], base);
  let installed = 0;
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(fc.nat(paths.length - 1), text, number, async (index, someText, someNumber) => {
      const path = paths[index]!;
      let lock;
      try {
        lock = parseLock(JSON.stringify(setAt(base, path, typeof valueAt(path) === 'number' ? someNumber : someText)), 'lock L');
      } catch {
        return; // refused at load: the property above covers it
      }
      try {
        const signatures = await lockSignatures(lock, undefined);
        const packages = await fetchLockedPackages(lock, { baseDir: dir, cache: ContentCache.at(join(dir, 'cache')), signatures, log: () => {} });
        const tree = await installPackages(packages, { sourceDateEpoch: 0 });
        await tree.cleanup();
        installed++;
      } catch (err) {
        assert.ok((err as Error).name === 'UserError' || (err as Error).name === 'DigestMismatchError' || (err as Error).name === 'NotFoundError', `not a user error: ${(err as Error).stack}`);
        assert.doesNotMatch((err as Error).message, /\n/, 'one line');
        refused++;
      }
    }),
    { numRuns: 600 },
  );
  t.diagnostic(`installed ${installed}, refused ${refused}`);
  assert.ok(installed > 0 && refused > 0, `installed ${installed}, refused ${refused}`);
});
