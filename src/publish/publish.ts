import { chmod, mkdir } from 'node:fs/promises';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { signStatement } from '../attest/dsse.js';
import { loadSigningKey, type SigningKey } from '../attest/signing-key.js';
import { verificationStatement, type BuildRecord } from '../attest/verification-summary.js';
import type { DiffJson } from '../compare/image-diff.js';
import { errorMessage, NondeterministicError, UserError } from '../errors.js';
import { ContentCache } from '../fetch/cache.js';
import { buildSpecFile, type SpecFileBuildOptions } from '../image/build-spec.js';
import { serializeRecipe } from '../image/recipe.js';
import { serializeLock } from '../lock/lock.js';
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/types.js';
import type { HttpCache } from '../status/http-cache.js';
import type { Policy, StatusReport } from '../status/model.js';
import { selectRebuilders } from '../status/rebuilders.js';
import { checkStatus } from '../status/status.js';
import { LayoutSource } from '../transports/layout.js';
import type { TransportOptions } from '../transports/open.js';
import { parseReference } from '../transports/reference.js';
import { formatDockerReference, type DockerReference } from '../transports/registry/reference.js';
import { ReferrerPusher, type ReferrersVia } from '../transports/registry/referrer-push.js';
import { makeScratchDir, writeFileAtomic } from '../util/fs.js';
import { timed, type Timings } from '../util/timings.js';
import { VERSION } from '../version.js';
import { attestationArtifact, recipeArtifact, type Artifact } from './artifacts.js';
import { currentUmask, mirrorOfCache, rebuildEnvironment, rebuildInSeparateProcess, type IsolatedRebuild, type RebuildEnvironment } from './isolated-rebuild.js';

export interface PublishOptions extends Pick<SpecFileBuildOptions, 'lock' | 'frozen' | 'noCommands' | 'mirrors' | 'keyringDir' | 'keyExpiry' | 'limits' | 'sourceDateEpoch' | 'sourceDateEpochEnv'> {
  /** Registry references to publish to, `docker://HOST/NAME[:TAG]` (tag `latest` when none). */
  destinations: string[];
  /** The signing key (ed25519 or ECDSA P-256), or the path of its PEM file. */
  key: string | SigningKey;
  /** Run every check and sign, push nothing. */
  dryRun?: boolean;
  /** The build's package cache (default ContentCache.at()); the rebuild never uses it. */
  cache?: ContentCache;
  /** Rebuilders whose answers the package policy judges (as `status`); with neither this nor `rebuildersFile`, no package policy. */
  rebuilders?: string[];
  rebuildersFile?: string;
  /** Over the rebuilders file's policy; `failOnBad` is always true for publish. */
  policy?: Partial<Omit<Policy, 'failOnBad'>>;
  statusTimeoutMs?: number;
  stateDir?: string;
  statusCache?: HttpCache;
  transport?: TransportOptions;
  log?: (message: string) => void;
}

export type PublishCheck = 'build' | 'rebuild' | 'packages';

export interface PublishDestination {
  reference: string;
  /** `HOST/NAME`, the statement's subject name. */
  repository: string;
  /** The tag moved last; none for a reference by digest. */
  tag?: string;
  recipe: Descriptor;
  attestation: Descriptor;
  /** How the registry took the referrers (after a push). */
  referrers?: ReferrersVia;
}

export interface PublishResult {
  /** Every check passed and every destination was pushed and tagged. */
  published: boolean;
  dryRun: boolean;
  /** The checks that failed, each with its one-line reason; empty when all passed. */
  failed: { check: PublishCheck; message: string }[];
  /** The image built (absent when the build itself was refused). */
  manifest?: Descriptor;
  recipe?: Digest;
  rebuild?: {
    manifest?: string;
    reproducible: boolean;
    environment: Record<string, string>;
    notes: string[];
    /** `rebuild`'s verdict text, with the differences when the digests differ. */
    text: string;
    diff?: DiffJson;
  };
  /** The package policy's report, when rebuilders were given. */
  packages?: StatusReport;
  destinations: PublishDestination[];
  /** Milliseconds: build, rebuild (with the package policy running beside it), push. */
  timings: Timings;
}

/** The environment recorded for each build: only what publish chose, never the machine's values (docs/attestation.md). */
const BUILD_ENVIRONMENT = { process: 'publish', cache: 'caller' };
function rebuildRecord(environment: RebuildEnvironment): Record<string, string> {
  return { ...environment, process: 'separate', cache: 'empty', scratch: 'separate', cwd: 'separate' };
}

function destinationRef(text: string): DockerReference & { text: string } {
  const ref = parseReference(text);
  if (ref.transport !== 'docker') throw new UserError(`--to ${text}: publish pushes to registries: give docker://HOST/NAME[:TAG]`);
  return { registry: ref.registry, repository: ref.repository, ...(ref.tag !== undefined ? { tag: ref.tag } : {}), ...(ref.digest ? { digest: ref.digest } : {}), text };
}

function repositoryName(ref: DockerReference): string {
  return formatDockerReference({ registry: ref.registry, repository: ref.repository });
}

/**
 * `publish SPEC`: builds the spec, rebuilds the image in a separate isolated process and compares digests, applies
 * the package policy when rebuilders are given, and only when every check passed pushes the image, its recipe and
 * a signed verification summary to each destination — the tag last (docs/attestation.md). A failed check pushes
 * nothing and is returned in `failed`; an error (a registry fault, a bad key) throws, with no tag moved unless the
 * message says which were.
 */
export async function publishSpec(specPath: string, options: PublishOptions): Promise<PublishResult> {
  const log = options.log ?? (() => {});
  if (options.destinations.length === 0) throw new UserError('publish needs at least one --to');
  const destinations = options.destinations.map(destinationRef);
  const key = typeof options.key === 'string' ? await loadSigningKey(options.key) : options.key;
  const withPolicy = (options.rebuilders?.length ?? 0) > 0 || options.rebuildersFile !== undefined;
  if (withPolicy) await selectRebuilders(options.rebuilders ?? [], options.rebuildersFile); // a typo fails before the build
  const timings: Timings = {};
  const result: PublishResult = { published: false, dryRun: options.dryRun === true, failed: [], destinations: [], timings };

  const scratch = await makeScratchDir('publish');
  try {
    await chmod(scratch.path, 0o711); // the rebuild's setup sandbox (another uid, as root) must reach its tree below
    const layout = join(scratch.path, 'image');
    const reference = `oci:${layout}:publish`;
    const cache = options.cache ?? ContentCache.at();
    let built;
    try {
      built = await timed(timings, 'build', () => buildSpecFile(specPath, {
        ...pick(options, ['lock', 'frozen', 'noCommands', 'mirrors', 'keyringDir', 'keyExpiry', 'limits', 'sourceDateEpoch', 'sourceDateEpochEnv']),
        cache,
        outputs: [reference],
        log,
      }));
    } catch (err) {
      if (!(err instanceof NondeterministicError)) throw err;
      result.failed.push({ check: 'build', message: errorMessage(err) });
      return result;
    }
    result.manifest = built.manifest;
    const recipe = serializeRecipe(built.recipe);
    result.recipe = recipe.digest;
    log(`built ${built.manifest.digest}`);

    // The rebuild and the package policy run side by side: one is this machine's work, the other the network's.
    const mirror = join(scratch.path, 'mirror');
    await mirrorOfCache(built.recipe.lock, cache, mirror);
    const environment = rebuildEnvironment(process.env, await currentUmask());
    const spec = built.recipe.spec;
    const keyringDir = options.keyringDir ?? (spec.keyring ? resolvePath(dirname(specPath), spec.keyring.dir) : undefined);
    log(`rebuilding in a separate process: TZ=${environment.TZ} LC_ALL=${environment.LC_ALL} umask ${environment.umask}, empty cache, its own scratch and working directory`);
    const [rebuilt, packages] = await Promise.allSettled([
      timed(timings, 'rebuild', async () => {
        const child = join(scratch.path, 'rebuild');
        await mkdir(child);
        return rebuildInSeparateProcess({
          reference,
          scratch: child,
          mirror,
          environment,
          ...(keyringDir ? { keyringDir } : {}),
          ...pick(options, ['keyExpiry', 'limits', 'noCommands']),
          log,
        });
      }),
      withPolicy ? timed(timings, 'packages', () => packagePolicy(built.recipe.lock, join(scratch.path, 'lock.json'), options)) : Promise.resolve(undefined),
    ]);
    if (rebuilt.status === 'rejected') throw rebuilt.reason;
    if (packages.status === 'rejected') throw packages.reason;
    judgeRebuild(result, rebuilt.value, built.manifest.digest, rebuildRecord(environment));
    if (packages.value) {
      result.packages = packages.value;
      if (!packages.value.policyMet) result.failed.push({ check: 'packages', message: packages.value.summary.text });
    }
    if (result.failed.length) return result;

    // Every check passed: one signed statement per destination repository.
    const builds: BuildRecord[] = [
      { role: 'build', manifest: built.manifest.digest, environment: BUILD_ENVIRONMENT },
      { role: 'rebuild', manifest: built.manifest.digest, environment: rebuildRecord(environment) },
    ];
    const subject = { mediaType: built.manifest.mediaType, digest: built.manifest.digest, size: built.manifest.size };
    const recipeDoc = recipeArtifact(subject, recipe.bytes);
    const attestations = new Map<string, Artifact>();
    for (const ref of destinations) {
      const repository = repositoryName(ref);
      if (ref.digest && ref.digest !== built.manifest.digest) throw new UserError(`--to ${ref.text}: names ${ref.digest}, but the image built is ${built.manifest.digest}`);
      if (!attestations.has(repository)) {
        const statement = verificationStatement({ repository, manifest: built.manifest.digest, version: VERSION, recipe: recipe.digest, builds, ...(result.packages ? { packages: result.packages } : {}) });
        attestations.set(repository, attestationArtifact(subject, signStatement(statement, [key])));
      }
      const tag = ref.tag ?? (ref.digest ? undefined : 'latest');
      result.destinations.push({ reference: ref.text, repository, ...(tag ? { tag } : {}), recipe: recipeDoc.descriptor, attestation: attestations.get(repository)!.descriptor });
    }
    if (options.dryRun) return result;
    await timed(timings, 'push', () => pushAll(result, layout, subject, recipeDoc, attestations, destinations, options, log));
    result.published = true;
    return result;
  } finally {
    await scratch.cleanup();
  }
}

function pick<T extends object, K extends keyof T>(object: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (object[k] !== undefined) out[k] = object[k];
  return out;
}

function judgeRebuild(result: PublishResult, rebuilt: IsolatedRebuild, built: string, environment: Record<string, string>): void {
  if ('failed' in rebuilt) {
    result.rebuild = { reproducible: false, environment, notes: [], text: `the independent rebuild failed: ${rebuilt.failed}\n` };
    result.failed.push({ check: 'rebuild', message: `the independent rebuild failed: ${rebuilt.failed}` });
    return;
  }
  const r = rebuilt.result;
  const reproducible = r.reproducible && r.manifest === built && r.rebuilt === built;
  result.rebuild = { manifest: r.rebuilt, reproducible, environment, notes: r.notes, text: r.text, ...(r.diff ? { diff: r.diff } : {}) };
  if (!reproducible) result.failed.push({ check: 'rebuild', message: `NOT reproducible: the build made ${built}, the independent rebuild ${r.rebuilt}` });
}

/** `status` of the image's lock under the given rebuilders and policy, with a BAD always failing the package. */
async function packagePolicy(lock: Parameters<typeof serializeLock>[0], lockPath: string, options: PublishOptions): Promise<StatusReport> {
  await writeFileAtomic(lockPath, serializeLock(lock));
  return checkStatus(lockPath, {
    ...(options.rebuilders ? { rebuilders: options.rebuilders } : {}),
    ...(options.rebuildersFile !== undefined ? { rebuildersFile: options.rebuildersFile } : {}),
    policy: { ...(options.policy ?? {}), failOnBad: true },
    ...(options.statusTimeoutMs !== undefined ? { timeoutMs: options.statusTimeoutMs } : {}),
    ...(options.stateDir !== undefined ? { stateDir: options.stateDir } : {}),
    ...(options.statusCache ? { cache: options.statusCache } : {}),
    ...(options.transport ? { transport: options.transport } : {}),
  });
}

/**
 * Each repository gets the image by digest and both referrers; then each destination's tag moves. A failure before
 * the tags leaves every tag where it was; one among the tags names those already moved.
 */
async function pushAll(
  result: PublishResult,
  layout: string,
  subject: Descriptor,
  recipeDoc: Artifact,
  attestations: Map<string, Artifact>,
  destinations: (DockerReference & { text: string })[],
  options: PublishOptions,
  log: (message: string) => void,
): Promise<void> {
  const source = await LayoutSource.open(layout, 'publish');
  const moved: string[] = [];
  try {
    const { raw } = await source.root();
    const pushers = new Map<string, ReferrerPusher>();
    const vias = new Map<string, ReferrersVia>();
    try {
      for (const ref of destinations) {
        const repository = repositoryName(ref);
        if (pushers.has(repository)) continue;
        const pusher = await ReferrerPusher.create(ref, options.transport ?? {});
        pushers.set(repository, pusher);
        await pusher.pushImage(source, subject);
        vias.set(repository, await pusher.pushReferrers(subject.digest, [recipeDoc, attestations.get(repository)!]));
        log(`pushed ${subject.digest}, its recipe and attestation to docker://${repository} (referrers: ${vias.get(repository) === 'api' ? 'the referrers API' : 'the sha256-<hex> tag index'})`);
      }
    } catch (err) {
      throw new UserError(`${errorMessage(err)} (nothing was tagged: every tag is where it was)`);
    }
    for (const [i, ref] of destinations.entries()) {
      const entry = result.destinations[i]!;
      entry.referrers = vias.get(entry.repository)!;
      if (entry.tag === undefined) continue;
      try {
        await pushers.get(entry.repository)!.tag(entry.tag, subject, raw.bytes);
      } catch (err) {
        throw new UserError(`${errorMessage(err)} (${moved.length ? `tags moved before this one: ${moved.join(', ')}` : 'no tag was moved'})`);
      }
      moved.push(ref.text);
    }
  } finally {
    await source.close();
  }
}
