/**
 * `inspect` shows what a user asks skopeo and pacman for: the manifest and config bytes as stored (compared with
 * `skopeo inspect --raw` and `--config --raw`), the recipe, the packages (compared with `pacman -Q`), the layers
 * with sizes, digests and diffIDs. Every blob it reads is verified: forged ones are refused in one line.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile, mkdir, cp } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { makeTempDir, removeDir, runCli, runCliOk, runOk } from './support/cli.js';
import { exampleImage, type ExampleImage } from './support/example-image.js';

let work: string;
let example: ExampleImage;

before(async () => {
  work = await makeTempDir('inspect');
  example = await exampleImage(work);
});
after(() => removeDir(work));

const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const blobPath = (layout: string, digest: string): string => join(layout, 'blobs', ...digest.split(':'));
const RECIPE_LABEL = 'io.github.repro-oci.recipe';

interface ImageJson {
  digest: string;
  size: number;
  platform: string;
  config: { digest: string; size: number; value: { config?: { Labels?: Record<string, string> }; rootfs: { diff_ids: string[] } } };
  layers: { digest: string; diffId?: string; size: number; mediaType: string }[];
  recipe?: { digest: string; reproOci: string; sourceDateEpoch: number; compressor: string; targets: string[] };
  packages?: { source: string; packages: { name: string; version: string; arch: string; repository?: string }[] };
}
interface InspectJson {
  digest: string;
  size: number;
  blobs: { verified: boolean; checked?: number };
  images: ImageJson[];
  notes?: string[];
}

async function inspectJson(ref: string, extra: string[] = []): Promise<InspectJson> {
  const r = await runCli(['inspect', '--json', ...extra, ref]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as InspectJson;
}

const pacmanList = (image: ImageJson): string => image.packages!.packages.map((p) => `${p.name} ${p.version}\n`).join('');

test('--raw and --config print the bytes skopeo inspect --raw and --config --raw print, for a layout and an archive', async () => {
  for (const ref of [example.reference, `oci-archive:${example.archive}:v1`]) {
    const raw = await runCliOk(['inspect', '--raw', ref]);
    assert.deepEqual(raw.stdoutBytes, (await runOk('skopeo', ['inspect', '--raw', ref])).stdoutBytes, ref);
    const config = await runCliOk(['inspect', '--config', ref]);
    assert.deepEqual(config.stdoutBytes, (await runOk('skopeo', ['inspect', '--config', '--raw', ref])).stdoutBytes, ref);
    // skopeo's spelling works too.
    assert.deepEqual((await runCliOk(['inspect', '--config', '--raw', ref])).stdoutBytes, config.stdoutBytes);
    const report = await inspectJson(ref);
    assert.equal(sha256(raw.stdoutBytes), report.digest);
    assert.equal(raw.stdoutBytes.length, report.size);
    assert.equal(sha256(config.stdoutBytes), report.images[0]!.config.digest);
  }
});

test('the report: layers with the sizes and digests of the manifest, the diffIDs of the uncompressed blobs, every blob checked', async () => {
  const report = await inspectJson(example.reference);
  const manifest = JSON.parse((await runOk('skopeo', ['inspect', '--raw', example.reference])).stdout) as { layers: { digest: string; size: number; mediaType: string }[] };
  const image = report.images[0]!;
  assert.deepEqual(image.layers.map((l) => [l.digest, l.size, l.mediaType]), manifest.layers.map((l) => [l.digest, l.size, l.mediaType]));
  for (const layer of image.layers) assert.equal(sha256(gunzipSync(await readFile(blobPath(example.layout, layer.digest)))), layer.diffId);
  assert.deepEqual(report.blobs, { verified: true, checked: 2 + image.layers.length });
  const skopeo = JSON.parse((await runOk('skopeo', ['inspect', example.reference])).stdout) as { Layers: string[]; Digest: string };
  assert.equal(skopeo.Digest, report.digest);
  assert.deepEqual(skopeo.Layers, image.layers.map((l) => l.digest));
});

test('the recipe: --recipe prints the bytes the config label names; the report summarizes it and lists the packages pacman -Q lists', async () => {
  const report = await inspectJson(example.reference);
  const image = report.images[0]!;
  const label = image.config.value.config!.Labels![RECIPE_LABEL]!;
  const recipe = await runCliOk(['inspect', '--recipe', example.reference]);
  assert.equal(sha256(recipe.stdoutBytes), label);
  const parsed = JSON.parse(recipe.stdout) as { lock: unknown; reproOci: string; sourceDateEpoch: number; compressor: string };
  assert.deepEqual(parsed.lock, JSON.parse(await readFile(example.lock, 'utf8')), "the recipe holds the build's lock");
  assert.deepEqual(image.recipe, {
    digest: label,
    reproOci: parsed.reproOci,
    sourceDateEpoch: parsed.sourceDateEpoch,
    compressor: parsed.compressor,
    architecture: 'x86_64',
    targets: ['hello-base', 'hello'],
  });
  assert.equal(image.packages!.source, 'recipe');
  assert.equal(pacmanList(image), example.pacmanQ, 'the same list, in the same order, as pacman -Q of the installed lock');
  assert.ok(image.packages!.packages.every((p) => p.repository), 'a lock knows each repository');

  const text = (await runCliOk(['inspect', example.reference])).stdout;
  assert.match(text, new RegExp(`Recipe: +${label} \\(repro-oci ${parsed.reproOci}, SOURCE_DATE_EPOCH ${parsed.sourceDateEpoch}\\)`));
  assert.match(text, /Packages: +4 \(from the recipe's lock\)\n {4}hello 1:1\.2-1\n/);
});

test("an image without a recipe lists the packages of its pacman database, as pacman -Q does; one with neither lists none", async () => {
  const layout = join(work, 'from-root');
  await runCliOk(['build', '--rootfs', example.root, '-o', `oci:${layout}:v1`]);
  const image = (await inspectJson(`oci:${layout}:v1`)).images[0]!;
  assert.equal(image.recipe, undefined);
  assert.equal(image.packages!.source, 'pacman-db');
  assert.equal(pacmanList(image), example.pacmanQ);
  assert.ok(image.packages!.packages.every((p) => p.repository === undefined), 'pacman records no repository');

  const bare = join(work, 'bare');
  await mkdir(join(bare, 'etc'), { recursive: true });
  await writeFile(join(bare, 'etc', 'motd'), 'hi\n');
  await runCliOk(['build', '--rootfs', bare, '-o', `oci:${join(work, 'bare-image')}:v1`]);
  const none = await runCliOk(['inspect', '--json', `oci:${join(work, 'bare-image')}:v1`]);
  const noneImage = (JSON.parse(none.stdout) as InspectJson).images[0]!;
  assert.equal(noneImage.packages, undefined);
  assert.equal(noneImage.recipe, undefined);
  assert.match((await runCliOk(['inspect', `oci:${join(work, 'bare-image')}:v1`])).stdout, /Packages: +none \(no recipe, no pacman database\)/);
  const noRecipe = await runCli(['inspect', '--recipe', `oci:${join(work, 'bare-image')}:v1`]);
  assert.equal(noRecipe.code, 2);
  assert.equal(noRecipe.stdout, '');
  assert.match(noRecipe.stderr, /^repro-oci: the image carries no recipe .*\n$/);
});

test('an index: --raw is the index as skopeo prints it; --config --platform picks the image as skopeo --override-arch does', async () => {
  const arm = join(work, 'arm');
  const amd = join(work, 'amd');
  await writeFile(join(work, 'arm.yaml'), 'platform: linux/arm64\nconfig:\n  Cmd: [/arm]\n');
  await runCliOk(['build', '--rootfs', example.root, '--config', join(work, 'arm.yaml'), '-o', `oci:${arm}:v1`]);
  await runCliOk(['build', '--rootfs', example.root, '-o', `oci:${amd}:v1`]);
  const multi = join(work, 'multi');
  const children = [];
  for (const [dir, architecture] of [[amd, 'amd64'], [arm, 'arm64']] as const) {
    const bytes = (await runCliOk(['inspect', '--raw', `oci:${dir}:v1`])).stdoutBytes;
    await runCliOk(['copy', `oci:${dir}:v1`, `oci:${multi}:${architecture}`]);
    children.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(bytes), size: bytes.length, platform: { architecture, os: 'linux' } });
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: children }));
  await writeFile(blobPath(multi, sha256(index)), index);
  const layoutIndex = JSON.parse(await readFile(join(multi, 'index.json'), 'utf8')) as { manifests: object[] };
  layoutIndex.manifests.push({ mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha256(index), size: index.length, annotations: { 'org.opencontainers.image.ref.name': 'both' } });
  await writeFile(join(multi, 'index.json'), JSON.stringify(layoutIndex));
  const ref = `oci:${multi}:both`;

  assert.deepEqual((await runCliOk(['inspect', '--raw', ref])).stdoutBytes, index);
  assert.deepEqual((await runOk('skopeo', ['inspect', '--raw', ref])).stdoutBytes, index);
  const armConfig = (await runCliOk(['inspect', '--config', '--platform', 'linux/arm64', ref])).stdoutBytes;
  assert.deepEqual(armConfig, (await runOk('skopeo', ['--override-arch', 'arm64', 'inspect', '--config', '--raw', ref])).stdoutBytes);
  assert.match(armConfig.toString('utf8'), /"\/arm"/);
  const amdConfig = (await runCliOk(['inspect', '--config', ref])).stdoutBytes;
  assert.deepEqual(amdConfig, (await runOk('skopeo', ['--override-arch', 'amd64', 'inspect', '--config', '--raw', ref])).stdoutBytes, 'default linux/amd64');

  const report = await inspectJson(ref);
  assert.deepEqual(report.images.map((i) => i.platform), ['linux/amd64', 'linux/arm64']);
  for (const image of report.images) assert.equal(pacmanList(image), example.pacmanQ);
  const missing = await runCli(['inspect', '--config', '--platform', 'linux/s390x', ref]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no manifest for linux\/s390x/);
});

test('forged blobs are refused in one line, nothing on stdout; --no-verify-blobs skips only what is not read', async () => {
  const forged = join(work, 'forged');
  await cp(example.layout, forged, { recursive: true });
  const report = await inspectJson(example.reference);
  const image = report.images[0]!;
  const ref = `oci:${forged}:v1`;

  // A layer with its last byte changed: only a full read notices.
  const layerFile = blobPath(forged, image.layers[0]!.digest);
  const layer = await readFile(layerFile);
  layer[layer.length - 1] ^= 1;
  await writeFile(layerFile, layer);
  for (const args of [['--raw'], ['--config'], ['--json'], ['--recipe'], []]) {
    const r = await runCli(['inspect', ...args, ref]);
    assert.equal(r.code, 2, `inspect ${args.join(' ')}`);
    assert.equal(r.stdout, '', `inspect ${args.join(' ')} printed nothing`);
    assert.match(r.stderr, new RegExp(`^repro-oci: .*${image.layers[0]!.digest}.*\n$`));
  }
  // Without the full check, what is read is still checked: the manifest and config are intact, the recipe's layer is not.
  assert.deepEqual((await runCliOk(['inspect', '--raw', '--no-verify-blobs', ref])).stdoutBytes, await readFile(blobPath(example.layout, report.digest)));
  assert.equal(sha256((await runCliOk(['inspect', '--config', '--no-verify-blobs', ref])).stdoutBytes), image.config.digest);
  const recipe = await runCli(['inspect', '--recipe', '--no-verify-blobs', ref]);
  assert.equal(recipe.code, 2);
  assert.equal(recipe.stdout, '');

  // A config with a changed byte: refused even when only the config is asked for.
  const configFile = blobPath(forged, image.config.digest);
  const config = await readFile(configFile);
  config[10] ^= 1;
  await writeFile(configFile, config);
  const bad = await runCli(['inspect', '--config', '--no-verify-blobs', ref]);
  assert.equal(bad.code, 2);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, new RegExp(`${image.config.digest}`));
});

test('a consistent image whose recipe file does not match its label is refused', async () => {
  // An attacker's image: every blob matches its digest, but the recipe it carries is not the one its label names.
  const root = join(work, 'lying-root');
  await cp(example.root, root, { recursive: true });
  await mkdir(join(root, 'usr/share/repro-oci'), { recursive: true });
  await writeFile(join(root, 'usr/share/repro-oci/recipe.json'), await runCliOk(['inspect', '--recipe', example.reference]).then((r) => Buffer.concat([r.stdoutBytes, Buffer.from(' ')])));
  await writeFile(join(work, 'lying.yaml'), `config:\n  Labels:\n    ${RECIPE_LABEL}: "${(await inspectJson(example.reference)).images[0]!.recipe!.digest}"\n`);
  const ref = `oci:${join(work, 'lying')}:v1`;
  await runCliOk(['build', '--rootfs', root, '--config', join(work, 'lying.yaml'), '-o', ref]);
  for (const args of [['--recipe'], ['--json'], []]) {
    const r = await runCli(['inspect', ...args, ref]);
    assert.equal(r.code, 2, `inspect ${args.join(' ')}`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^repro-oci: .*recipe\.json does not match the digest in the io\.github\.repro-oci\.recipe label\n$/);
  }
});

test('an image kept without its layers: --no-verify-blobs shows the recipe and packages from the recipe artifact', async () => {
  const kept = join(work, 'kept');
  await runCliOk(['archive', example.reference, `oci:${kept}:v1`]);
  const strict = await runCli(['inspect', `oci:${kept}:v1`]);
  assert.equal(strict.code, 2);
  assert.match(strict.stderr, /--no-verify-blobs reads only what is there/);
  const report = await inspectJson(`oci:${kept}:v1`, ['--no-verify-blobs']);
  assert.deepEqual(report.blobs, { verified: false });
  assert.equal(report.images[0]!.packages!.source, 'recipe');
  assert.equal(pacmanList(report.images[0]!), example.pacmanQ);
  const recipe = await runCliOk(['inspect', '--recipe', '--no-verify-blobs', `oci:${kept}:v1`]);
  assert.equal(sha256(recipe.stdoutBytes), report.images[0]!.recipe!.digest);
});

test('flags that do not go together are a usage error (exit 2, nothing on stdout)', async () => {
  for (const args of [['--json', '--raw'], ['--json', '--config'], ['--config', '--recipe'], ['--platform', 'linux/arm64']]) {
    const r = await runCli(['inspect', ...args, example.reference]);
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.split('\n').length, 2, r.stderr);
  }
});
