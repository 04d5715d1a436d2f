import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { generateExampleArchive } from '../src/example/generate.js';
import { fakeClockEnv, REPO_ROOT, run, runCli, tempDirFor } from './support/cli.js';
import { serveDirectory } from './support/http-server.js';

/** The bundled example, locked, with its packages copied into one flat mirror and its repositories moved away. */
async function exampleWithMirrorOnly(work: string): Promise<{ lock: string; mirror: string }> {
  await generateExampleArchive(join(REPO_ROOT, 'examples/hello-arch/packages.yaml'), work);
  copyFileSync(join(REPO_ROOT, 'examples/hello-arch/spec.yaml'), join(work, 'spec.yaml'));
  const locked = await runCli(['lock', 'spec.yaml'], { cwd: work });
  assert.equal(locked.code, 0, locked.stderr);
  // A space and `%` in the directory name: a plain path must reach the file system as it is written.
  const mirror = join(work, 'flat mirror %3A');
  mkdirSync(mirror);
  for (const repo of ['hello-core', 'hello-extra']) {
    const dir = join(work, 'repo', repo, 'os', 'x86_64');
    for (const name of readdirSync(dir).filter((n) => n.includes('.pkg.tar'))) copyFileSync(join(dir, name), join(mirror, name));
  }
  // The lock's own URLs now fail: only the mirror can deliver, so a mirror that fails fails the command.
  renameSync(join(work, 'repo'), join(work, 'repo.gone'));
  return { lock: join(work, 'spec.lock.json'), mirror };
}

test('--mirror as a plain path, a file: URL and an http: URL all deliver a package with an epoch (hello 1:1.2-1) to install, build and rebuild', async (t) => {
  const work = await tempDirFor(t, 'mirror-kinds');
  const { lock, mirror } = await exampleWithMirrorOnly(work);
  assert.ok(readdirSync(mirror).some((n) => n.startsWith('hello-1:1.2-1-')), 'the example has a package with an epoch');
  mkdirSync(join(work, 'elsewhere'));
  const server = await serveDirectory(mirror);
  t.after(() => server.close());
  const kinds: [string, string, string?][] = [
    ['plain path', mirror],
    // Relative to the current directory, not to the lock's or the spec's.
    ['relative path', '../flat mirror %3A', join(work, 'elsewhere')],
    ['file: URL', pathToFileURL(mirror).href],
    ['http: URL', `${server.url}/`],
  ];
  for (const [i, [kind, location, cwd]] of kinds.entries()) {
    const cache = join(work, `cache-${i}`);
    const root = join(work, `root-${i}`);
    const installed = await runCli(['install', lock, '--root', root, '--mirror', location, '--cache', cache], { cwd: cwd ?? work });
    assert.equal(installed.code, 0, `install --mirror (${kind}): ${installed.stderr}`);
    assert.equal(readFileSync(join(root, 'usr/bin/hello'), 'utf8'), '#!/bin/sh\nexec cat /usr/lib/libgreeting.txt\n');
    const built = await runCli(['build', join(work, 'spec.yaml'), '-o', `oci:${join(work, `img-${i}`)}:t`, '--mirror', location], { cwd: cwd ?? work, env: { REPRO_OCI_CACHE: join(work, `build-cache-${i}`) } });
    assert.equal(built.code, 0, `build --mirror (${kind}): ${built.stderr}`);
    // rebuild drops the recipe's relative URLs (docs/trust-model.md): with a cold cache, the mirror is the only source.
    const rebuilt = await runCli(['rebuild', `oci:${join(work, `img-${i}`)}:t`, '--mirror', location], { cwd: cwd ?? work, env: { REPRO_OCI_CACHE: join(work, `rebuild-cache-${i}`) } });
    assert.equal(rebuilt.code, 0, `rebuild --mirror (${kind}): ${rebuilt.stderr}`);
    assert.match(rebuilt.stdout, /^reproducible/);
  }
  assert.ok(server.requests.some((r) => r.startsWith('GET /hello-1:1.2-1-')), `the http mirror was asked for the file by its name: ${server.requests.join(', ')}`);
});

test('install and ls without SOURCE_DATE_EPOCH take the lock\'s date for %INSTALLDATE%, as build does: not 0, not the clock', async (t) => {
  const work = await tempDirFor(t, 'installdate');
  await generateExampleArchive(join(REPO_ROOT, 'examples/hello-arch/packages.yaml'), work);
  copyFileSync(join(REPO_ROOT, 'examples/hello-arch/spec.yaml'), join(work, 'spec.yaml'));
  assert.equal((await runCli(['lock', 'spec.yaml'], { cwd: work })).code, 0);
  const lock = join(work, 'spec.lock.json');
  // The example's packages were built at 1700000000 and it has no archive snapshot: the newest BUILDDATE.
  const lockDate = 1700000000;
  const clock = fakeClockEnv('2031-05-05 12:00:00');
  const noEpoch = { SOURCE_DATE_EPOCH: undefined, REPRO_OCI_CACHE: join(work, 'cache'), ...clock };

  const root = join(work, 'root');
  const installed = await runCli(['install', lock, '--root', root], { env: noEpoch });
  assert.equal(installed.code, 0, installed.stderr);
  const descPath = join(root, 'var/lib/pacman/local/hello-1:1.2-1/desc');
  assert.match(readFileSync(descPath, 'utf8'), new RegExp(`%BUILDDATE%\\n${lockDate}\\n\\n%INSTALLDATE%\\n${lockDate}\\n\\n`));
  assert.equal(statSync(descPath).mtimeMs / 1000, lockDate);

  const listed = await runCli(['ls', lock], { env: noEpoch });
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /\/var\/lib\/pacman\/local\/hello-1:1\.2-1\/desc {2}\[pacman db\]/);

  // The image of the same lock carries the same date: build and install share one default.
  const built = await runCli(['build', 'spec.yaml', '-o', `oci:${join(work, 'img')}:t`], { cwd: work, env: noEpoch });
  assert.equal(built.code, 0, built.stderr);
  const blobs = join(work, 'img', 'blobs', 'sha256');
  const blob = (digest: string): string => join(blobs, digest.replace(/^sha256:/, ''));
  const index = JSON.parse(readFileSync(join(work, 'img', 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
  const inImage = await run('tar', ['-xzOf', blob(manifest.layers[0]!.digest), 'var/lib/pacman/local/hello-1:1.2-1/desc']);
  assert.equal(inImage.code, 0, inImage.stderr);
  assert.equal(inImage.stdout, readFileSync(descPath, 'utf8'));

  // An explicit SOURCE_DATE_EPOCH still wins.
  const given = join(work, 'root-given');
  assert.equal((await runCli(['install', lock, '--root', given], { env: { ...noEpoch, SOURCE_DATE_EPOCH: '1234567890' } })).code, 0);
  assert.match(readFileSync(join(given, 'var/lib/pacman/local/hello-1:1.2-1/desc'), 'utf8'), /%INSTALLDATE%\n1234567890\n/);
});
