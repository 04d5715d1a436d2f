import type { Command } from 'commander';
import { addCommandOptions, addRegistryOptions, keyExpiryOption, repeatable, transportOptions, type CommandCliOptions, type RegistryCliOptions } from '../options.js';
import type { KeyExpiry } from '../../pacman/signature.js';
import { buildRootfsImage, type BuiltImage } from '../../image/build-rootfs.js';
import { UserError } from '../../errors.js';
import { ContentCache } from '../../fetch/cache.js';
import { buildSpecFile } from '../../image/build-spec.js';
import { buildBootstrapSpecFile } from '../../bootstrap/build.js';
import { parseBootstrapOutput } from '../../bootstrap/tarball.js';
import { limitsFromOptions } from '../../setup/limits.js';
import { parseReference } from '../../transports/reference.js';
import { defaultLockPath } from '../../lock/lock.js';
import { checkCache, checkOutputs } from '../preflight.js';
import { checkWritableDirectory, checkWritableFile } from '../../util/writable.js';
import { exists } from '../../util/fs.js';
import { Annotation } from '../../oci/types.js';
import type { OciImportCommit } from '../../transports/oci-import.js';
import { checkDigestFile, descriptorJson, note, printJson, writeDigestFile } from '../output.js';


interface BuildOptions extends RegistryCliOptions, CommandCliOptions {
  rootfs?: string;
  config?: string;
  output: string[];
  sourceDateEpoch?: string;
  lock?: string;
  frozen?: boolean;
  cache?: string;
  mirror: string[];
  keyring?: string;
  keyExpiry: KeyExpiry;
  sbom?: string;
  json?: boolean;
  digestfile?: string;
}

const log = note;

async function buildRootfs(opts: BuildOptions & { rootfs: string }): Promise<BuiltImage> {
  return buildRootfsImage({
    rootfs: opts.rootfs,
    ...(opts.config ? { settings: opts.config } : {}),
    outputs: opts.output,
    ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}),
    ...(process.env.SOURCE_DATE_EPOCH !== undefined ? { sourceDateEpochEnv: process.env.SOURCE_DATE_EPOCH } : {}),
    transport: transportOptions(opts),
  });
}

/**
 * What building a spec takes from the options, for an image and a bootstrap tarball alike. Checked first, before
 * any work: a lock that will be made must be writable, and so must the cache.
 */
async function specBuildOptions(specPath: string, opts: BuildOptions) {
  const lockPath = opts.lock ?? defaultLockPath(specPath);
  if (!opts.frozen && opts.lock === undefined && !(await exists(lockPath))) await checkWritableFile(lockPath, `lock ${lockPath}`);
  await checkCache(opts.cache);
  return {
    ...(opts.lock !== undefined ? { lock: opts.lock } : {}),
    ...(opts.frozen ? { frozen: true } : {}),
    noCommands: !opts.commands,
    cache: ContentCache.at(opts.cache),
    mirrors: opts.mirror,
    ...(opts.keyring ? { keyringDir: opts.keyring } : {}),
    keyExpiry: opts.keyExpiry,
    limits: limitsFromOptions(opts),
    ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}),
    ...(process.env.SOURCE_DATE_EPOCH ? { sourceDateEpochEnv: process.env.SOURCE_DATE_EPOCH } : {}),
    log,
  };
}

async function buildSpec(specPath: string, opts: BuildOptions): Promise<BuiltImage> {
  return buildSpecFile(specPath, {
    ...(await specBuildOptions(specPath, opts)),
    outputs: opts.output,
    ...(opts.sbom ? { sbomDir: opts.sbom } : {}),
    transport: transportOptions(opts),
    log,
  });
}

/** An oci-import output in --json: the commit and the official-images stanza, field for field. */
function ociImportJson(c: OciImportCommit): object {
  return { repository: c.repository, branch: c.branch, commit: c.commit, parent: c.parent ?? null, tree: c.tree, architecture: c.architecture, stanza: c.stanza };
}

/** `build --json` (docs/json-output.md): the image's documents, each output and the time each phase took. */
export function buildJson(result: BuiltImage): object {
  return {
    manifest: descriptorJson(result.manifest),
    config: descriptorJson(result.config),
    // The same fields, in the same order, as each layer of `inspect --json`.
    layers: result.layers.map((l) => ({
      digest: l.digest,
      diffId: l.diffId,
      size: l.size,
      mediaType: l.mediaType,
      ...(l.annotations?.[Annotation.Compressor] ? { compressor: l.annotations[Annotation.Compressor] } : {}),
    })),
    outputs: result.outputs.map((o) => ({ reference: o.reference, digest: o.digest, ...(o.ociImport ? { ociImport: ociImportJson(o.ociImport) } : {}) })),
    timings: result.timings,
  };
}

/** `build SPEC -o bootstrap:FILE`: archiso's bootstrap tarball instead of an image; stdout gets its sha256. */
async function buildBootstrapCli(spec: string | undefined, opts: BuildOptions): Promise<void> {
  if (opts.output.length !== 1) throw new UserError('a bootstrap:FILE output is the build\'s only output (its recipe and tree are not an image\'s)');
  if (!spec || opts.rootfs) throw new UserError('a bootstrap tarball is built from a spec (SPEC.yaml), not --rootfs');
  if (opts.sbom) throw new UserError('--sbom is for image outputs; the bootstrap tarball carries its SBOMs in root.<arch>/usr/share/repro-oci/');
  const output = parseBootstrapOutput(opts.output[0]!)!;
  await checkWritableFile(output.path, opts.output[0]!);
  if (output.sha256File) await checkWritableFile(`${output.path}.sha256`, `${opts.output[0]!} (its .sha256)`);
  await checkDigestFile(opts.digestfile);
  const built = await buildBootstrapSpecFile(spec, { ...(await specBuildOptions(spec, opts)), output: opts.output[0]! });
  await writeDigestFile(opts.digestfile, built.digest);
  if (opts.json) printJson({ bootstrap: { path: built.output.path, digest: built.digest, size: built.size, diffId: built.diffId, compressor: built.compressor }, timings: built.timings });
  else process.stdout.write(`${built.digest}\n`);
}

export function registerBuild(program: Command): void {
  addCommandOptions(addRegistryOptions(program
    .command('build')
    .description('Build an image from a spec and its lock (Arch packages), or a one-layer image from a root filesystem; prints the manifest digest')
    .argument('[spec]', 'SPEC.yaml (see schemas/spec.schema.json); or use --rootfs')
    .option('--rootfs <path>', 'directory or tarball (plain, gzip or zstd) holding the root filesystem')
    .option('--config <file>', 'image settings for --rootfs (IMAGE.yaml; see schemas/image-config.schema.json)')
    .requiredOption('-o, --output <ref>', 'where to write: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG], docker://…, oci-import:DIR[:BRANCH] (a git commit for docker-library; prints its official-images stanza) (repeatable); or, alone, bootstrap:FILE.tar.zst|.tar.gz[:sha256] for archiso\'s bootstrap tarball (:sha256 also writes FILE.sha256)', repeatable, [])
    .option('--source-date-epoch <seconds>', 'timestamp for created and file mtimes (default: $SOURCE_DATE_EPOCH, then the settings, then for a spec the lock\'s snapshot date)')
    .option('--lock <file>', 'lock to build from, which must exist (default SPEC.lock.json beside the spec, created when missing)')
    .option('--frozen', 'for CI: never resolve nor write a lock; fail when it is missing or was made for another package selection')
    .option('--cache <dir>', 'package cache (default: $REPRO_OCI_CACHE or ~/.cache/repro-oci)')
    .option('--mirror <url>', 'flat mirror holding packages by file name, tried before the lock URLs (repeatable)', repeatable, [])
    .option('--keyring <dir>', "keyring directory (default: the spec's keyring.dir)")
    .addOption(keyExpiryOption())
    .option('--sbom <dir>', 'also write the SBOMs (sbom.spdx.json, SPDX 2.3; sbom.cdx.json, CycloneDX 1.5) into DIR')
    .option('--json', 'print the manifest, config and layer descriptors (digests, diffIDs), each output\'s digest and the phase timings as JSON')
    .option('--digestfile <file>', 'also write the manifest digest to FILE (sha256:…, no newline, as skopeo copy --digestfile)')))
    .action(async (spec: string | undefined, opts: BuildOptions) => {
      if (opts.output.length === 0) throw new UserError('build needs at least one --output');
      if (opts.output.some((o) => parseBootstrapOutput(o))) return buildBootstrapCli(spec, opts);
      opts.output.forEach((o) => parseReference(o));
      if (spec && opts.rootfs) throw new UserError('give either a spec or --rootfs, not both');
      if (!spec && !opts.rootfs) throw new UserError('build needs a spec (SPEC.yaml) or --rootfs');
      if (spec && opts.config) throw new UserError('--config is for --rootfs builds; a spec carries its image settings under image:');
      if (opts.rootfs && (opts.frozen || opts.lock !== undefined)) throw new UserError('--frozen and --lock are for spec builds');
      await checkOutputs(opts.output);
      if (opts.sbom) await checkWritableDirectory(opts.sbom, `--sbom ${opts.sbom}`);
      await checkDigestFile(opts.digestfile);
      const result = opts.rootfs ? await buildRootfs({ ...opts, rootfs: opts.rootfs }) : await buildSpec(spec!, opts);
      await writeDigestFile(opts.digestfile, result.manifest.digest);
      if (opts.json) printJson(buildJson(result));
      else process.stdout.write(`${result.manifest.digest}\n${result.outputs.map((o) => (o.ociImport ? `\n${o.ociImport.stanzaText}` : '')).join('')}`);
    });
}
