import { diffJson } from '../compare/image-diff.js';
import { UserError } from '../errors.js';
import { ContentCache } from '../fetch/cache.js';
import type { Digest } from '../oci/digest.js';
import { MediaType } from '../oci/mediatypes.js';
import { checkConfig, checkManifest } from '../oci/raw-json.js';
import type { Descriptor } from '../oci/types.js';
import { RECIPE_LABEL } from '../image/recipe.js';
import { readJsonBlob } from '../transports/layout.js';
import { openSource, type TransportOptions } from '../transports/open.js';
import { describeSkipped, resolvePlatformManifest, type SkippedManifest } from '../transports/platform-manifest.js';
import type { ImageSource } from '../transports/types.js';
import { readSmall } from '../util/fs.js';
import { displayName } from '../util/raw-name.js';
import { formatRebuild, rebuild, type RebuildOptions, type RebuildResult } from '../verify/rebuild.js';
import { MAX_ENVELOPE_BYTES, parseStatement, verifyEnvelope } from './dsse.js';
import { IN_TOTO_ARTIFACT_TYPE, VSA_ENVELOPE_MEDIA_TYPE } from './media-types.js';
import { loadPublicKeys, type PublicSigningKey } from './signing-key.js';
import { selectRebuilders } from '../status/rebuilders.js';
import { checkClaims, shown, type AttestedClaims, type Claim, type RequiredPackagePolicy } from './verify-claims.js';

/**
 * `verify REF`: finds the publish attestations of the image REF names among its OCI referrers and checks each
 * against docs/attestation.md's policy. The registry is the attacker's: every listing, manifest and envelope is
 * bounded in size, checked against its digest, and a bad one is one attestation's one-line failure, not the run's.
 */

/** Referrer attestations examined per subject; an attacker listing thousands costs at most this many fetches. */
export const MAX_ATTESTATIONS = 32;
/** An attestation's manifest is a few hundred bytes: one descriptor of config and one of the envelope. */
const MAX_ARTIFACT_MANIFEST_BYTES = 64 * 1024;

export interface VerifyImageOptions {
  /** The trusted public keys: an attestation counts when one of them signed it. */
  keys: readonly PublicSigningKey[];
  /** The platform manifest to verify when the reference names an index (default: the only image, else linux/amd64). */
  platform?: string;
  /** `--policy FILE`: the recorded package policy must be at least this strict, and met. */
  packagePolicy?: RequiredPackagePolicy;
  /** Rebuild locally as well (these are `rebuild`'s options) and require the same digest. */
  rebuild?: Omit<RebuildOptions, 'platform' | 'log'>;
  log?: (message: string) => void;
}

export interface AttestationReport {
  /** The attestation's manifest (the referrer). */
  digest: Digest;
  /** The digest it is listed as a referrer of: the image manifest, or the index holding it. */
  referrerOf: Digest;
  verified: boolean;
  /** The trusted keys whose signature verified (empty when none did). */
  keyIds: string[];
  /** The first claim that does not hold, when not verified. */
  failed?: { claim: Claim; message: string };
  /** What it attests, when verified. */
  claims?: AttestedClaims;
}

export interface VerifyResult {
  verified: boolean;
  /** When not verified, why in one line: `no attestation…`, `no attestation passes…`, or the local rebuild's verdict. */
  reason?: string;
  /** The manifest digest checked (the platform manifest when the reference names an index). */
  manifest: Digest;
  /** Set when the reference named an index; `skipped` are its entries that are no platform's image. */
  index?: { digest: Digest; platform: string; skipped: SkippedManifest[] };
  /** Every attestation found, in the order listed (manifest's referrers first, then the index's). */
  attestations: AttestationReport[];
  /** Attestations listed beyond MAX_ATTESTATIONS per subject, not examined. */
  notExamined: number;
  /** With `rebuild`: the local rebuild's result (made only when an attestation passed). */
  rebuild?: RebuildResult;
}

export async function verifyImage(source: ImageSource, label: string, options: VerifyImageOptions): Promise<VerifyResult> {
  if (options.keys.length === 0) throw new UserError('verify: no trusted public key given (--key PUB)');
  const log = options.log ?? (() => {});
  const { descriptor, manifest, index } = await resolvePlatformManifest(source, options.platform, label);
  const config = checkConfig(await readJsonBlob(source, manifest.config, 'config'), `${label} config`).value;
  const expected = {
    manifest: descriptor.digest,
    recipe: config.config?.Labels?.[RECIPE_LABEL],
    ...(options.packagePolicy ? { packagePolicy: options.packagePolicy } : {}),
  };
  const result: VerifyResult = {
    verified: false,
    manifest: descriptor.digest,
    ...(index ? { index: { digest: index.digest as Digest, platform: index.platform, skipped: index.skipped } } : {}),
    attestations: [],
    notExamined: 0,
  };
  if (!source.referrers) {
    result.reason = `no attestation: ${label} is a transport that keeps no referrers (push it to a registry, or use an oci: layout)`;
    return result;
  }
  const seen = new Set<string>();
  for (const subject of [descriptor.digest, ...(index ? [index.digest as Digest] : [])]) {
    // The same descriptor listed twice is examined once; one with the same digest and another size or type is not the same.
    const listed = (await source.referrers(subject, IN_TOTO_ARTIFACT_TYPE)).filter((d) => {
      const key = `${d.mediaType} ${d.digest} ${d.size}`;
      return !seen.has(key) && seen.add(key);
    });
    result.notExamined += Math.max(0, listed.length - MAX_ATTESTATIONS);
    for (const entry of listed.slice(0, MAX_ATTESTATIONS)) result.attestations.push(await examine(source, entry, subject, expected, options.keys));
  }
  const passed = result.attestations.filter((a) => a.verified);
  if (result.attestations.length === 0) {
    result.reason = `no attestation: nothing of artifact type ${IN_TOTO_ARTIFACT_TYPE} refers to ${descriptor.digest}${index ? ` or its index ${index.digest}` : ''}`;
    return result;
  }
  if (passed.length === 0) {
    result.reason = `no attestation passes every check (${result.attestations.length} found)`;
    return result;
  }
  result.verified = true;
  if (options.rebuild) {
    log(`rebuilding ${descriptor.digest} locally (--rebuild)`);
    result.rebuild = await rebuild(source, label, { ...options.rebuild, ...(index ? { platform: index.platform } : {}), log });
    if (!result.rebuild.reproducible) {
      result.verified = false;
      result.reason = `the local rebuild made ${result.rebuild.rebuilt}, not ${descriptor.digest}`;
    }
  }
  return result;
}

/** One referrer, checked claim by claim; the first that fails is its verdict. */
async function examine(source: ImageSource, entry: Descriptor, subject: Digest, expected: Parameters<typeof checkClaims>[1], keys: readonly PublicSigningKey[]): Promise<AttestationReport> {
  const report: AttestationReport = { digest: entry.digest, referrerOf: subject, verified: false, keyIds: [] };
  const failed = (claim: Claim, message: string): AttestationReport => ({ ...report, failed: { claim, message } });
  const what = `attestation ${entry.digest}`;
  // Only an OCI image manifest is an attestation here; anything else is not fetched at all.
  if (entry.mediaType !== MediaType.OciManifest) return failed('artifact', `listed with media type ${shown(entry.mediaType)}, not ${MediaType.OciManifest}`);
  if (entry.size > MAX_ARTIFACT_MANIFEST_BYTES) return failed('artifact', `its manifest declares ${entry.size} bytes, more than the ${MAX_ARTIFACT_MANIFEST_BYTES} an attestation manifest may have`);
  let layer: Descriptor;
  try {
    const manifest = checkManifest(await readJsonBlob(source, entry, 'attestation manifest'), what, entry.mediaType).value;
    if (manifest.artifactType !== IN_TOTO_ARTIFACT_TYPE) return failed('artifact', `its manifest's artifactType is ${shown(String(manifest.artifactType))}, not ${IN_TOTO_ARTIFACT_TYPE}`);
    if (manifest.subject?.digest !== subject) return failed('artifact', `listed as a referrer of ${subject}, but its subject is ${shown(String(manifest.subject?.digest))}`);
    if (manifest.layers.length !== 1) return failed('artifact', `has ${manifest.layers.length} layers; the envelope is its single layer`);
    layer = manifest.layers[0]!;
  } catch (err) {
    if (err instanceof UserError) return failed('artifact', err.message);
    throw err;
  }
  if (layer.mediaType !== VSA_ENVELOPE_MEDIA_TYPE) return failed('artifact', `its layer's media type is ${shown(layer.mediaType)}, not ${VSA_ENVELOPE_MEDIA_TYPE}`);
  if (layer.size > MAX_ENVELOPE_BYTES) return failed('envelope', `declares ${layer.size} bytes, more than the ${MAX_ENVELOPE_BYTES} a DSSE envelope may have`);
  let envelope: Buffer;
  try {
    envelope = await readSmall(await source.openBlob(layer), MAX_ENVELOPE_BYTES, `${what}: envelope`);
  } catch (err) {
    if (err instanceof UserError) return failed('envelope', err.message);
    throw err;
  }
  let verified;
  try {
    verified = verifyEnvelope(envelope, keys, `envelope ${layer.digest}`);
  } catch (err) {
    if (err instanceof UserError) return failed('signature', err.message);
    throw err;
  }
  report.keyIds = verified.keyIds;
  let statement;
  try {
    statement = parseStatement(verified.payload, 'statement');
  } catch (err) {
    if (err instanceof UserError) return failed('statement', err.message);
    throw err;
  }
  const checked = checkClaims(statement, expected);
  if (!checked.ok) return failed(checked.claim, checked.message);
  return { ...report, verified: true, claims: checked.claims };
}

/**
 * `--policy FILE`: the rebuilders file `status` reads (schemas/rebuilders.schema.json), with status's defaults
 * for what it leaves out (1 GOOD per package, attestations required).
 */
export async function readPackagePolicy(path: string): Promise<RequiredPackagePolicy> {
  const { rebuilders, policy } = await selectRebuilders([], path);
  return {
    rebuilders: rebuilders.map(({ name, url }) => ({ name, url })),
    require: policy.require ?? 1,
    rules: policy.rules ?? [],
    attestations: policy.attestations ?? 'required',
  };
}

/** The trusted keys of each `--key` file (PEM public keys; a key given twice counts once). */
export async function loadTrustedKeys(paths: readonly string[]): Promise<PublicSigningKey[]> {
  const keys = new Map<string, PublicSigningKey>();
  for (const path of paths) for (const key of await loadPublicKeys(path, '--key')) keys.set(key.keyId, key);
  return [...keys.values()];
}

export interface VerifyReferenceOptions extends Omit<VerifyImageOptions, 'rebuild'> {
  transport?: TransportOptions;
  /** Rebuild locally too; `cache` defaults to ContentCache.at(). */
  rebuild?: Omit<RebuildOptions, 'platform' | 'log' | 'cache'> & { cache?: ContentCache };
}

/** `verify REF`: opens the image and verifies its attestations (see verifyImage). */
export async function verifyReference(reference: string, options: VerifyReferenceOptions): Promise<VerifyResult> {
  const { transport, rebuild: rebuildOptions, ...rest } = options;
  const source = await openSource(reference, transport);
  try {
    return await verifyImage(source, reference, {
      ...rest,
      ...(rebuildOptions ? { rebuild: { ...rebuildOptions, cache: rebuildOptions.cache ?? ContentCache.at() } } : {}),
    });
  } finally {
    await source.close();
  }
}

/** The CLI's text: the verdict first, then the index, each attestation's outcome, and the rebuild's. */
export function formatVerify(result: VerifyResult): string {
  const passing = result.attestations.filter((a) => a.verified).length;
  const lines = [result.verified ? `verified: ${result.manifest} (${passing} of ${result.attestations.length} attestation(s) pass)` : `NOT verified: ${result.manifest}: ${result.reason ?? ''}`];
  if (result.index) {
    lines.push(`index ${result.index.digest}: verifying its ${result.index.platform} manifest`);
    const skipped = describeSkipped(result.index.digest, result.index.skipped);
    if (skipped) lines.push(skipped);
  }
  for (const a of result.attestations) {
    const head = `attestation ${a.digest}${a.referrerOf === result.manifest ? '' : ` (referrer of the index ${a.referrerOf})`}`;
    if (!a.verified) {
      lines.push(`${head}: FAILED ${a.failed!.claim}: ${a.failed!.message}`);
      continue;
    }
    const c = a.claims!;
    const packages = c.packages ? `packages: ${c.packages.meeting}/${c.packages.total} met the policy (${c.packages.rebuilders.map(displayName).join(', ')})` : 'packages: no package policy applied';
    lines.push(`${head}: PASSED: signed by ${a.keyIds.map((k) => k.slice(0, 16)).join(', ')}; build and rebuild both ${result.manifest}; recipe ${c.recipe}; ${packages}${c.publisher ? `; published by repro-oci ${displayName(c.publisher)}` : ''}`);
  }
  if (result.notExamined > 0) lines.push(`${result.notExamined} more attestation(s) listed, not examined (at most ${MAX_ATTESTATIONS} per subject)`);
  if (result.rebuild) lines.push(...formatRebuild(result.rebuild).trimEnd().split('\n').filter((l) => !l.startsWith('index ')).map((l) => `rebuild: ${l}`));
  return `${lines.join('\n')}\n`;
}

/** The document `verify --json` prints: the result's fields in docs/json-output.md's order, the rebuild's differences as `diff --json` gives them. */
export function verifyJson(result: VerifyResult): Record<string, unknown> {
  const { verified, reason, manifest, index, attestations, notExamined, rebuild: rebuilt } = result;
  return {
    verified,
    ...(reason !== undefined ? { reason } : {}),
    manifest,
    ...(index ? { index } : {}),
    attestations,
    notExamined,
    ...(rebuilt ? { rebuild: { ...rebuilt, ...(rebuilt.diff ? { diff: diffJson(rebuilt.diff) } : {}) } } : {}),
  };
}
