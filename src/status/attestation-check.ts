import { errorMessage, NotFoundError, UserError } from '../errors.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../fetch/download.js';
import { verifyAttestation, type AttestationKey, type ExpectedProduct } from './attestation.js';
import type { AttestationStore } from './attestation-store.js';
import { getBytes } from './http-get.js';
import type { ApiGeneration, AttestationCheck, Cell, Rebuilder, RebuilderRow, StatusPackage } from './model.js';

/**
 * Backs each GOOD with its attestation: fetched from the rebuilder (v1 per artifact, v0 per build), verified
 * against the rebuilder's keys, and its product matched to the package's file. Only a verified attestation turns
 * the rebuilder's word into evidence; one that fails a check is `invalid`, which counts against the package.
 */

/** Attestations are a few kilobytes; a compressed one is decoded under the verifier's own bound. */
const MAX_ATTESTATION = 1024 * 1024;

export interface AttestationOptions {
  timeoutMs: number;
  retry?: RetryPolicy;
  /**
   * The rebuilder's kept attestations (an attestation does not change once made): a kept one is verified again on
   * every use (or its seal checked), and one that no longer verifies is dropped and fetched afresh once.
   */
  store?: AttestationStore;
}

/** The build log, diffoscope and attestation URLs of a row, as each API generation lays them out. */
export function rowLinks(rebuilder: Rebuilder, api: ApiGeneration, row: RebuilderRow): NonNullable<Cell['links']> {
  if (row.buildId === null) return {};
  if (api === 'v1') {
    const build = `${rebuilder.url}/api/v1/builds/${row.buildId}`;
    const artifact = row.artifactId !== null && row.artifactId !== undefined ? `${build}/artifacts/${row.artifactId}` : undefined;
    return {
      log: `${build}/log`,
      ...(artifact && row.diffoscopeLogId != null ? { diffoscope: `${artifact}/diffoscope` } : {}),
      ...(artifact && row.attestationLogId != null ? { attestation: `${artifact}/attestation` } : {}),
    };
  }
  const build = `${rebuilder.url}/api/v0/builds/${row.buildId}`;
  return {
    log: `${build}/log`,
    ...(row.hasDiffoscope ? { diffoscope: `${build}/diffoscope` } : {}),
    ...(row.hasAttestation ? { attestation: `${build}/attestation` } : {}),
  };
}

/** One GOOD's attestation: fetched (or kept), then verified with `keys` against the package. */
export async function checkAttestation(pkg: StatusPackage, url: string | undefined, keys: readonly AttestationKey[], rebuilder: Rebuilder, options: AttestationOptions): Promise<AttestationCheck> {
  if (url === undefined) return { state: 'unverified', reason: 'the rebuilder lists no attestation for it' };
  if (keys.length === 0) return { state: 'unverified', reason: 'no key to verify its attestation', url };
  const expected: ExpectedProduct = { name: pkg.name, version: pkg.version, arch: pkg.arch, ...(pkg.fileName ? { fileName: pkg.fileName } : {}), ...(pkg.sha256 ? { sha256: pkg.sha256 } : {}) };
  const { store } = options;
  // A kept attestation is checked like a fetched one; one that does not verify (a damaged or forged entry) is
  // dropped and asked for again, so only a kept body is ever fetched twice.
  const sealed = store?.sealed(url, keys, expected);
  if (sealed) return sealed;
  const kept = store?.body(url);
  if (kept) {
    const check = await verifyBody(url, keys, expected, kept);
    if (check.state === 'verified') store!.remember(url, keys, expected, check);
    if (check.state !== 'invalid') return check;
    store!.drop(url);
  }
  const what = `rebuilder ${rebuilder.name}`;
  let bytes: Buffer;
  try {
    bytes = await getBytes(url, what, MAX_ATTESTATION, options.retry ?? DEFAULT_RETRY, options.timeoutMs);
  } catch (err) {
    if (err instanceof NotFoundError) return { state: 'unverified', reason: 'the rebuilder serves no attestation for it (HTTP 404)', url };
    if (!(err instanceof UserError)) throw err;
    return { state: 'unverified', reason: `its attestation could not be fetched: ${errorMessage(err).replace(`${what}: `, '')}`, url };
  }
  store?.put(url, bytes);
  const check = await verifyBody(url, keys, expected, bytes);
  if (check.state === 'verified') store?.remember(url, keys, expected, check);
  return check;
}

async function verifyBody(url: string, keys: readonly AttestationKey[], expected: ExpectedProduct, bytes: Buffer): Promise<AttestationCheck> {
  try {
    const verified = await verifyAttestation(bytes, keys, expected, 'attestation');
    return { state: 'verified', url, digest: verified.digest, productFile: verified.productFile, productSha256: verified.productSha256, bound: verified.bound, signedBy: verified.signedBy };
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    return { state: 'invalid', reason: errorMessage(err).replace(/^attestation: /, ''), url };
  }
}

/** Runs `work` over `items`, `limit` at a time, in order of the items for the results. */
export async function mapLimited<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
