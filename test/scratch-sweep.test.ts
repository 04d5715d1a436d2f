import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateExampleArchive } from '../src/example/generate.js';
import { CLI, REPO_ROOT, runCli, tempDirFor } from './support/cli.js';
import { ownerIsGone, ownerMark } from '../src/util/process-owner.js';
import { listenOnLoopback } from './support/http-server.js';

/**
 * A registry that answers /v2/ and the manifests of one OCI layout, and never answers a blob request: a push
 * (which asks about blobs first) or a pull (once past the manifest) hangs there, in the middle of its work.
 */
async function stallingRegistry(layout: string): Promise<{ host: string; blobRequests: () => number; close: () => Promise<void> }> {
  let blobs = 0;
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; mediaType: string }[] };
  const top = index.manifests[0]!;
  const manifest = readFileSync(join(layout, 'blobs', 'sha256', top.digest.slice(7)));
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    req.resume();
    if (/\/blobs\//.test(req.url ?? '')) {
      blobs++;
      return; // never answered
    }
    if (/\/manifests\//.test(req.url ?? '')) {
      res.writeHead(200, { 'Content-Type': top.mediaType, 'Docker-Content-Digest': top.digest, 'Content-Length': manifest.length }).end(req.method === 'HEAD' ? undefined : manifest);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
  };
  const { port, close } = await listenOnLoopback(handler);
  return { host: `127.0.0.1:${port}`, blobRequests: () => blobs, close };
}

/** Starts the CLI without waiting for it; `exited` resolves when it is gone (killed or not). */
function startCli(args: string[], cwd: string, env: Record<string, string>): { child: ChildProcess; exited: Promise<void> } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env, REPRO_OCI_PROGRESS: '0' }, stdio: 'ignore' });
  return { child, exited: new Promise((resolve) => child.on('exit', () => resolve())) };
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 60_000): Promise<void> {
  for (const start = Date.now(); !condition(); ) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const list = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).sort() : []);
const kill = async (run: { child: ChildProcess; exited: Promise<void> }): Promise<void> => {
  run.child.kill('SIGKILL');
  await run.exited;
};

/** The example's archive, spec and lock in `work`, and an image of it in `work/img` (for the registry to serve). */
async function exampleWork(work: string, env: Record<string, string>): Promise<void> {
  await generateExampleArchive(join(REPO_ROOT, 'examples/hello-arch/packages.yaml'), work);
  copyFileSync(join(REPO_ROOT, 'examples/hello-arch/spec.yaml'), join(work, 'spec.yaml'));
  const built = await runCli(['build', 'spec.yaml', '-o', `oci:${join(work, 'img')}:t`], { cwd: work, env });
  assert.equal(built.code, 0, built.stderr);
}

/**
 * Look-alikes of `name` that are not ours: a symlink to a directory, another user's directory and file, and
 * (where we only make directories) a plain file of ours.
 */
function plantLookAlikes(dir: string, name: string, work: string, weMakeFiles: boolean): { path: string; kind: string }[] {
  const victim = join(work, 'victim');
  mkdirSync(victim, { recursive: true });
  if (!existsSync(join(victim, 'precious'))) writeFileSync(join(victim, 'precious'), 'keep me\n');
  const planted: { path: string; kind: string }[] = [];
  const named = (kind: string): string => {
    // The same name with another last character (a digit, valid in either kind of name).
    const path = join(dir, name.slice(0, -1) + '123456789'.replace(name.slice(-1), '')[planted.length]);
    planted.push({ path, kind });
    return path;
  };
  symlinkSync(victim, named('symlink'));
  if (!weMakeFiles) writeFileSync(named('file'), 'not a directory\n');
  if (process.getuid?.() === 0) {
    const foreign = named('foreign directory');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'theirs'), 'x');
    chownSync(join(foreign, 'theirs'), 65534, 65534);
    chownSync(foreign, 65534, 65534);
    const foreignFile = named('foreign file');
    writeFileSync(foreignFile, 'theirs');
    chownSync(foreignFile, 65534, 65534);
  }
  return planted;
}

function assertPlantedIntact(planted: { path: string; kind: string }[], work: string): void {
  const present = (path: string): boolean => lstatSync(path, { throwIfNoEntry: false }) !== undefined;
  for (const { path, kind } of planted) assert.ok(present(path), `the planted ${kind} ${path} was removed`);
  assert.equal(readFileSync(join(work, 'victim', 'precious'), 'utf8'), 'keep me\n');
}

test('scratch directories of a SIGKILLed build are removed by the next run; a live run keeps its own; look-alikes are left alone', async (t) => {
  const work = await tempDirFor(t, 'sweep');
  const tmp = join(work, 'tmp');
  mkdirSync(tmp);
  const env = { TMPDIR: tmp, REPRO_OCI_CACHE: join(work, 'cache') };
  await exampleWork(work, env);
  const registry = await stallingRegistry(join(work, 'img'));
  t.after(() => registry.close());
  assert.deepEqual(list(tmp), [], 'a finished build leaves its scratch space behind');

  // A build pushing to the registry hangs there with its scratch space (the staged image) in TMPDIR: kill it.
  const push = ['build', 'spec.yaml', '-o', `docker://${registry.host}/x:t`];
  const dead = startCli(push, work, env);
  await waitFor('the first push', () => registry.blobRequests() > 0);
  const deadDirs = list(tmp);
  assert.ok(deadDirs.some((n) => n.startsWith('repro-oci-build-')), `no scratch directory while building: ${deadDirs.join(' ')}`);
  await kill(dead);
  // A symlink inside the dead run's directory is removed, not followed.
  mkdirSync(join(work, 'victim'));
  writeFileSync(join(work, 'victim', 'precious'), 'keep me\n');
  symlinkSync(join(work, 'victim'), join(tmp, deadDirs[0]!, 'link-out'));

  // The next run, here a second push, clears what the dead one left as it starts.
  const live = startCli(push, work, env);
  t.after(() => kill(live));
  await waitFor('the second push', () => registry.blobRequests() > 1);
  const liveDirs = list(tmp).filter((n) => !deadDirs.includes(n));
  assert.ok(liveDirs.length > 0);
  assert.deepEqual(list(tmp), liveDirs, 'the dead run left its scratch space behind');
  // Planted beside them, named as the dead run's directory would be: not ours to remove.
  const planted = plantLookAlikes(tmp, deadDirs.find((n) => n.startsWith('repro-oci-build-'))!, work, false);
  mkdirSync(join(tmp, 'repro-oci-build-unowned')); // ours by uid, but no owner mark: someone else's scratch
  const kept = [...liveDirs, ...planted.map((p) => p.path.slice(tmp.length + 1)), 'repro-oci-build-unowned'].sort();

  // Another run, while the second is still alive, keeps that one's scratch space and every look-alike.
  const next = await runCli(['build', 'spec.yaml', '-o', `oci:${join(work, 'img2')}:t`], { cwd: work, env });
  assert.equal(next.code, 0, next.stderr);
  assert.deepEqual(list(tmp), kept);
  assertPlantedIntact(planted, work);
  for (const dir of liveDirs) assert.ok(lstatSync(join(tmp, dir)).isDirectory());
});

test('the temporary sibling of an output left by a SIGKILLed copy is removed when that output is written again', async (t) => {
  const work = await tempDirFor(t, 'sweep');
  const env = { TMPDIR: work, REPRO_OCI_CACHE: join(work, 'cache') };
  await exampleWork(work, env);
  const registry = await stallingRegistry(join(work, 'img'));
  t.after(() => registry.close());
  const out = join(work, 'out');
  mkdirSync(out);
  const before = list(out);

  // A pull into oci:out/copy hangs on its first blob, with the layout being written beside its final name.
  const pull = ['copy', `docker://${registry.host}/x:t`, `oci:${join(out, 'copy')}:t`];
  const dead = startCli(pull, work, env);
  await waitFor('the first pull', () => registry.blobRequests() > 0);
  const deadTemps = list(out).filter((n) => !before.includes(n));
  assert.equal(deadTemps.length, 1, deadTemps.join(' '));
  assert.match(deadTemps[0]!, /^\.copy\.tmp-/);
  await kill(dead);

  const live = startCli(pull, work, env);
  t.after(() => kill(live));
  await waitFor('the second pull', () => registry.blobRequests() > 1);
  const liveTemps = list(out).filter((n) => !before.includes(n) && !deadTemps.includes(n));
  assert.equal(liveTemps.length, 1);
  const planted = plantLookAlikes(out, deadTemps[0]!, work, true);

  const next = await runCli(['copy', `oci:${join(work, 'img')}:t`, `oci:${join(out, 'copy')}:t`], { cwd: work, env });
  assert.equal(next.code, 0, next.stderr);
  assert.deepEqual(list(out), ['copy', ...liveTemps, ...planted.map((p) => p.path.slice(out.length + 1))].sort());
  assertPlantedIntact(planted, work);
});

test('an owner mark names its process: gone when the pid is free or reused, never judged from another pid namespace', async () => {
  const [pid, start, space] = ownerMark()!.split('.') as [string, string, string];
  assert.equal(pid, String(process.pid));
  assert.equal(ownerIsGone(pid, start, space), false, 'this process');
  assert.equal(ownerIsGone(pid, String(Number(start) + 1), space), true, 'the pid now belongs to a later process');
  assert.equal(ownerIsGone(pid, String(Number(start) + 1), space === '00000000' ? '11111111' : '00000000'), false, 'another boot or pid namespace');
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.on('exit', resolve));
  assert.equal(ownerIsGone(String(child.pid), start, space), true, 'an exited process');
});
