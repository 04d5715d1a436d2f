import assert from 'node:assert/strict';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateExampleArchive } from '../src/example/generate.js';
import { REPO_ROOT, runCli, tempDirFor } from './support/cli.js';
import { tamperFile } from './support/tamper.js';

test('archive keeps manifest, config and recipe without layers; rebuild works from it; --layers keeps everything', async (t) => {
  const work = await tempDirFor(t, 'archive');
  await generateExampleArchive(join(REPO_ROOT, 'examples/hello-arch/packages.yaml'), work);
  copyFileSync(join(REPO_ROOT, 'examples/hello-arch/spec.yaml'), join(work, 'spec.yaml'));
  const env = { REPRO_OCI_CACHE: join(work, 'cache') };
  const built = await runCli(['build', 'spec.yaml', '-o', `oci:${join(work, 'img')}:t`], { cwd: work, env });
  assert.equal(built.code, 0, built.stderr);
  const digest = built.stdout.trim();

  const kept = await runCli(['archive', `oci:${join(work, 'img')}:t`, `oci:${join(work, 'keep')}:hello`]);
  assert.equal(kept.code, 0, kept.stderr);
  assert.equal(kept.stdout.trim(), digest);
  assert.match(kept.stderr, /archived 1 manifest\(s\), 1 recipe\(s\)/);
  const manifest = JSON.parse(readFileSync(join(work, 'img/blobs/sha256', digest.slice(7)), 'utf8')) as { layers: { digest: string }[]; config: { digest: string } };
  const blobs = readdirSync(join(work, 'keep/blobs/sha256'));
  assert.ok(blobs.includes(digest.slice(7)) && blobs.includes(manifest.config.digest.slice(7)), 'manifest and config kept byte for byte');
  assert.ok(!blobs.includes(manifest.layers[0]!.digest.slice(7)), 'no layer without --layers');
  assert.ok(readFileSync(join(work, 'img/blobs/sha256', digest.slice(7))).equals(readFileSync(join(work, 'keep/blobs/sha256', digest.slice(7)))));

  const rebuilt = await runCli(['rebuild', `oci:${join(work, 'keep')}:hello`], { cwd: work, env });
  assert.equal(rebuilt.code, 0, rebuilt.stderr + rebuilt.stdout);
  assert.equal(rebuilt.stdout, `reproducible: ${digest}\n`);

  const full = await runCli(['archive', '--layers', `oci:${join(work, 'img')}:t`, `oci:${join(work, 'full')}`]);
  assert.equal(full.code, 0, full.stderr);
  assert.deepEqual(readdirSync(join(work, 'full/blobs/sha256')).sort(), readdirSync(join(work, 'img/blobs/sha256')).sort());

  // A tampered image kept without layers: the rebuild still finds its recipe and says where the difference is.
  await tamperFile(join(work, 'img'), 't', 'etc/hello.conf', () => Buffer.from('voice=loud\n'), join(work, 'bad'));
  assert.equal((await runCli(['archive', `oci:${join(work, 'bad')}:t`, `oci:${join(work, 'keep')}:bad`])).code, 0);
  const bad = await runCli(['rebuild', `oci:${join(work, 'keep')}:bad`], { cwd: work, env });
  assert.equal(bad.code, 1, bad.stderr);
  assert.match(bad.stdout, /^NOT reproducible/);
  assert.match(bad.stdout, /~ rootfs\.diff_ids\[0\]: /);
  assert.match(bad.stdout, /layer 0: oci:.*keep:bad does not hold sha256:[0-9a-f]{64}; its files cannot be compared/);
});
