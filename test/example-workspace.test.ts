import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { applyUrlPolicy, UrlPolicy, refusedPackageError } from '../src/verify/url-policy.js';
import type { Lock } from '../src/lock/lock.js';
import { CLI, REPO_ROOT, run, runCli, tempDirFor, type RunResult } from './support/cli.js';
import { EXAMPLE_DIGEST } from './support/example-digest.js';

/**
 * `repro-oci example --dir`: the project README's command makes a workspace, and the workspace's README.md is
 * followed as written — every command of its `sh` blocks, in order, in the workspace, with `repro-oci` on PATH —
 * checking the exit status each line states and what each step really did.
 */

/** A directory with a `repro-oci` on PATH that runs this checkout's CLI, as `npm i -g` or npx would. */
function shimDir(root: string): string {
  const dir = join(root, 'bin');
  mkdirSync(dir);
  writeFileSync(join(dir, 'repro-oci'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`);
  chmodSync(join(dir, 'repro-oci'), 0o755);
  return dir;
}

/** The command lines of a Markdown text's `sh` blocks, in order (comment-only and blank lines left out). */
function shellLines(markdown: string): string[] {
  return [...markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].flatMap((m) => m[1]!.split('\n')).filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
}

/** Runs one README line with bash, in `cwd`, with the shim first on PATH and a package cache of its own. */
function shell(line: string, cwd: string, bin: string, cache: string): Promise<RunResult> {
  return run('bash', ['-c', line], { cwd, env: { PATH: `${bin}:${process.env.PATH}`, REPRO_OCI_CACHE: cache, REPRO_OCI_PROGRESS: '0' }, timeoutMs: 300_000 });
}

const digestOf = (stdout: string): string => {
  const m = /^(sha256:[0-9a-f]{64})$/m.exec(stdout);
  assert.ok(m, `no digest in ${JSON.stringify(stdout)}`);
  return m[1]!;
};

test('from the README: example --dir, then the workspace README as written: change a package, lock, build, diff explains it, both images rebuild', { timeout: 600_000 }, async (t) => {
  const root = await tempDirFor(t, 'workspace');
  const bin = shimDir(root);
  let caches = 0;
  const freshCache = (): string => join(root, `cache-${++caches}`);

  // The project README's one command for a workspace ("npx repro-oci" is the installed command, the shim here).
  const section = /^## Start from the example\n([\s\S]*?)^## /m.exec(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'));
  assert.ok(section, 'README.md has a "Start from the example" section');
  const start = shellLines(section[1]!);
  assert.equal(start.length, 1, start.join('\n'));
  const made = /^npx (repro-oci example --dir (\S+))(\s+#.*)?$/.exec(start[0]!);
  assert.ok(made, start[0]);
  const made1 = await shell(made[1]!, root, bin, freshCache());
  assert.equal(made1.code, 0, made1.stderr + made1.stdout);
  assert.match(made1.stdout, new RegExp(`MATCH: both builds produced ${EXAMPLE_DIGEST}\n`));
  assert.match(made1.stdout, new RegExp(`\n {2}reproducible: ${EXAMPLE_DIGEST}\n`));
  const ws = join(root, made[2]!);
  assert.match(made1.stdout, new RegExp(`\nWorkspace: ${ws} `));
  assert.deepEqual(readdirSync(ws).sort(), ['README.md', 'image', 'packages.yaml', 'repo', 'spec.lock.json', 'spec.yaml']);
  assert.deepEqual(readdirSync(root).sort(), ['bin', made[2]!].sort(), 'nothing beside the workspace (the example keeps its caches in its scratch directory)');
  assert.equal(readFileSync(join(ws, 'packages.yaml'), 'utf8'), readFileSync(join(REPO_ROOT, 'examples/hello-arch/packages.yaml'), 'utf8'));

  const steps = shellLines(readFileSync(join(ws, 'README.md'), 'utf8'));
  const kinds = steps.map((line) => {
    const kind = /^(?:repro-oci (\S+)|(sed)) /.exec(line);
    assert.ok(kind, line);
    return kind[1] ?? kind[2]!;
  });
  assert.deepEqual(kinds, ['rebuild', 'sed', 'example', 'lock', 'build', 'diff', 'rebuild', 'rebuild'], 'the steps of the walk-through');

  let changed = '';
  for (const line of steps) {
    const stated = /#\s*exit (\d)\b/.exec(line);
    assert.ok(stated, `the README states the exit status of: ${line}`);
    const r = await shell(line, ws, bin, freshCache());
    assert.equal(r.code, Number(stated[1]), `${line}\n${r.stderr}${r.stdout}`);
    const [, verb, args] = /^(\S+(?: \S+)?) (.*)$/.exec(line)!;
    if (verb === 'repro-oci rebuild') {
      const want = args!.startsWith('oci:image:hello ') ? EXAMPLE_DIGEST : changed;
      assert.ok(want, 'the changed image is rebuilt after it is built');
      assert.equal(r.stdout, `reproducible: ${want}\n`);
    } else if (verb?.startsWith('sed')) {
      const packages = readFileSync(join(ws, 'packages.yaml'), 'utf8');
      assert.match(packages, /version: "2\.1-4"/);
      assert.match(packages, /hello, changed world/);
    } else if (verb === 'repro-oci example') {
      const core = join(ws, 'repo/hello-core/os/x86_64');
      assert.ok(existsSync(join(core, 'libgreeting-2.1-4-any.pkg.tar.zst')), 'the changed package was generated');
      assert.ok(existsSync(join(core, 'libgreeting-2.1-3-any.pkg.tar.zst')), 'the old package file stays');
      assert.match(r.stdout, /^repo\/hello-core\/os\/x86_64: hello-filesystem-2024\.03-1-any\.pkg\.tar\.zst libgreeting-2\.1-4-any\.pkg\.tar\.zst\n/);
    } else if (verb === 'repro-oci lock') {
      assert.match(r.stdout, /libgreeting 2\.1-3 → 2\.1-4/);
      const lock = JSON.parse(readFileSync(join(ws, 'spec.lock.json'), 'utf8')) as Lock;
      assert.deepEqual(lock.packages.map((p) => `${p.name} ${p.version}`).sort(), ['hello 1:1.2-1', 'hello-filesystem 2024.03-1', 'libgreeting 2.1-4', 'voice-plain 1.0-1']);
    } else if (verb === 'repro-oci build') {
      changed = digestOf(r.stdout);
      assert.notEqual(changed, EXAMPLE_DIGEST);
    } else if (verb === 'repro-oci diff') {
      assert.match(r.stdout, /libgreeting 2\.1-3 → 2\.1-4/, r.stdout);
      assert.match(r.stdout, /\/usr\/lib\/libgreeting\.txt.*\[libgreeting\]/, r.stdout);
    }
  }

  // The same rebuild from any other directory: only the paths change, the answer does not.
  const mirrors = ['--mirror', join(ws, 'repo/hello-core/os/x86_64'), '--mirror', join(ws, 'repo/hello-extra/os/x86_64')];
  for (const cwd of ['/', root]) {
    const r = await runCli(['rebuild', `oci:${join(ws, 'image')}:hello`, ...mirrors], { cwd, env: { REPRO_OCI_CACHE: freshCache() } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `reproducible: ${EXAMPLE_DIGEST}\n`);
  }
  // Without a mirror, the recipe's relative paths are not resolved against the current directory, even the one
  // that holds them, nor allowed by --allow-url: one line names the package, the file and --mirror.
  for (const cwd of [ws, root]) {
    const r = await runCli(['rebuild', `oci:${join(ws, 'image')}:hello`, '--allow-url', `file://${cwd}/`], { cwd, env: { REPRO_OCI_CACHE: freshCache() } });
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'repro-oci: package hello-filesystem 2024.03-1: the recipe names it only by a path relative to the spec it was built from ("repo/hello-core/os/x86_64/hello-filesystem-2024.03-1-any.pkg.tar.zst"), which a rebuild does not resolve; give --mirror DIR, a directory that holds "hello-filesystem-2024.03-1-any.pkg.tar.zst"\n');
  }
});

test('example --dir . fills the current (empty) directory in place; a second run refuses and names --repo-only', { timeout: 300_000 }, async (t) => {
  const root = await tempDirFor(t, 'workspace-here');
  const here = join(root, 'here');
  mkdirSync(here);
  const r = await runCli(['example', '--dir', '.'], { cwd: here, env: { REPRO_OCI_CACHE: join(root, 'cache') } });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, new RegExp(`MATCH: both builds produced ${EXAMPLE_DIGEST}`));
  assert.deepEqual(readdirSync(here).sort(), ['README.md', 'image', 'packages.yaml', 'repo', 'spec.lock.json', 'spec.yaml']);
  assert.deepEqual(readdirSync(root).sort(), ['here'], 'no temporary left beside it, no cache used');

  const again = await runCli(['example', '--dir', '.'], { cwd: here });
  assert.equal(again.code, 2);
  assert.equal(again.stderr, 'repro-oci: --dir .: already a workspace (to generate its package archive again after editing packages.yaml: repro-oci example --dir . --repo-only)\n');
});

test('example --dir and --repo-only refuse bad places and bad packages.yaml in one line, writing nothing', async (t) => {
  const root = await tempDirFor(t, 'workspace-bad');
  writeFileSync(join(root, 'file'), 'x');
  mkdirSync(join(root, 'full'));
  writeFileSync(join(root, 'full', 'mine.txt'), 'keep');
  const cases: [string[], string][] = [
    [['--dir', join(root, 'full')], `repro-oci: --dir ${join(root, 'full')}: not empty\n`],
    [['--dir', join(root, 'file')], `repro-oci: --dir ${join(root, 'file')}: exists and is not a directory\n`],
    [['--dir', join(root, 'file', 'ws')], `repro-oci: --dir ${join(root, 'file', 'ws')}: ${join(root, 'file')} is not a directory\n`],
    [['--dir', '/proc/ws'], 'repro-oci: --dir /proc/ws: cannot create files in /proc: the file system takes no new files there (ENOENT)\n'],
    [['--repo-only'], 'repro-oci: --repo-only needs --dir DIR, the workspace whose packages.yaml to generate again\n'],
    [['--dir', join(root, 'full'), '--repo-only'], `repro-oci: --repo-only: ${join(root, 'full', 'packages.yaml')} does not exist (make a workspace first: repro-oci example --dir DIR)\n`],
  ];
  for (const [args, stderr] of cases) {
    const r = await runCli(['example', ...args], { cwd: root });
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stderr, stderr, args.join(' '));
  }

  // A packages.yaml edited wrongly: names that would leave the repository directory, unknown keys, not YAML.
  const ws = join(root, 'ws');
  mkdirSync(ws);
  const bundled = readFileSync(join(REPO_ROOT, 'examples/hello-arch/packages.yaml'), 'utf8');
  const edits: [string, RegExp][] = [
    [bundled.replace('name: libgreeting', 'name: ../../../escaped'), /^repro-oci: .*packages\.yaml: line \d+, column \d+: \/repositories\/hello-core\/1\/name must match pattern/],
    [bundled.replace('hello-extra:', '../extra:'), /^repro-oci: .*packages\.yaml: line \d+, column \d+: \/repositories must match pattern .*; line \d+, column \d+: \/repositories property name must be valid$/m],
    [bundled.replace('version: "2.1-3"', 'version: "2.1-3/../x"'), /^repro-oci: .*packages\.yaml: line \d+, column \d+: \/repositories\/hello-core\/1\/version must match pattern/],
    [bundled.replace('{ path: usr/lib/libgreeting.txt', '{ path: ../etc/evil'), /^repro-oci: .*packages\.yaml: line \d+, column \d+: \/repositories\/hello-core\/1\/entries\/2\/path must match pattern/],
    [bundled.replace('desc: Greeting phrases', 'dsec: Greeting phrases'), /^repro-oci: .*packages\.yaml: line \d+, column \d+: unknown key \/repositories\/hello-core\/1\/dsec \(did you mean desc\?\)$/m],
    [`${bundled}\n  : [unclosed\n`, /^repro-oci: .*packages\.yaml: not valid YAML at line \d+, column \d+: /],
  ];
  for (const [text, error] of edits) {
    writeFileSync(join(ws, 'packages.yaml'), text);
    const r = await runCli(['example', '--dir', ws, '--repo-only'], { cwd: root });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, error);
    assert.equal(r.stderr.split('\n').length, 2, 'one line');
    assert.deepEqual(readdirSync(ws), ['packages.yaml'], 'nothing written');
  }
  assert.deepEqual(readdirSync(root).sort(), ['file', 'full', 'ws']);
  assert.deepEqual(readdirSync(join(root, 'full')), ['mine.txt']);
});

test('a rebuild resolves the recipe\'s relative package paths only against a baseDir the caller gives, never the current directory', () => {
  const pkg = (urls: unknown[]) => ({ name: 'a', version: '1-1', arch: 'any', repository: 'core', filename: 'a-1-1-any.pkg.tar.zst', urls: urls as string[], sha256: '0'.repeat(64), csize: 1, isize: 1, builddate: 0, reason: 'explicit' as const });
  const lock = { packages: [pkg(['repo/core/a-1-1-any.pkg.tar.zst']), pkg(['repo/a.pkg', 'http://127.0.0.1/a.pkg'])] } as unknown as Lock;
  const policy = new UrlPolicy([`file://${process.cwd()}/`, 'file:///work/']);
  const without = applyUrlPolicy(lock, undefined, policy);
  assert.deepEqual(without.lock.packages.map((p) => p.urls), [[], []]);
  assert.equal(without.dropped, 3);
  assert.equal(without.unresolved, 2);
  assert.equal(refusedPackageError(without.refused[0]!).message, 'package a 1-1: the recipe names it only by a path relative to the spec it was built from ("repo/core/a-1-1-any.pkg.tar.zst"), which a rebuild does not resolve; give --mirror DIR, a directory that holds "a-1-1-any.pkg.tar.zst"');
  // Mixed: the usual message, whose suggestion comes from the absolute URL.
  assert.equal(refusedPackageError(without.refused[1]!).message, 'package a 1-1: none of the recipe\'s URLs is allowed ("repo/a.pkg", "http://127.0.0.1/a.pkg"); give --mirror URL or --allow-url http://127.0.0.1/');
  const withBase = applyUrlPolicy(lock, '/work', policy);
  assert.deepEqual(withBase.lock.packages.map((p) => p.urls), [['file:///work/repo/core/a-1-1-any.pkg.tar.zst'], ['file:///work/repo/a.pkg']]);
  assert.equal(withBase.unresolved, 0);
});
