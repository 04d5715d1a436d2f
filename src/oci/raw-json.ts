import { UserError } from '../errors.js';
import { displayName } from '../util/raw-name.js';
import { isDigest, sha256, type Digest } from './digest.js';
import { isIndexMediaType, isManifestMediaType } from './mediatypes.js';
import type { Descriptor, ImageConfig, Index, Manifest } from './types.js';

/**
 * JSON read from outside: the exact bytes, their digest, and the parsed value. The value is never re-serialized,
 * so a foreign manifest keeps its digest however it was formatted.
 */
export interface RawJson<T> {
  readonly bytes: Buffer;
  readonly digest: Digest;
  readonly value: T;
}

/** Limit on any JSON document we read (manifests are a few KiB; registries cap them at 4 MiB). */
export const MAX_JSON_BYTES = 4 * 1024 * 1024;

export function parseRawJson<T>(bytes: Buffer, what: string): RawJson<T> {
  if (bytes.length > MAX_JSON_BYTES) throw new UserError(`${what}: ${bytes.length} bytes is more than the ${MAX_JSON_BYTES} allowed`);
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new UserError(`${what}: not valid JSON (${displayName((err as Error).message)})`);
  }
  return { bytes, digest: sha256(bytes), value: value as T };
}

function fail(what: string, problem: string): never {
  throw new UserError(`${what}: ${problem}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkStringMap(v: unknown, what: string, field: string): void {
  if (v === undefined) return;
  if (!isObject(v) || Object.values(v).some((x) => typeof x !== 'string')) fail(what, `${field} must map strings to strings`);
}

export function checkDescriptor(v: unknown, what: string): Descriptor {
  if (!isObject(v)) fail(what, 'descriptor is not an object');
  if (typeof v.mediaType !== 'string' || v.mediaType === '') fail(what, 'descriptor has no mediaType');
  if (!isDigest(v.digest)) fail(what, `descriptor digest ${JSON.stringify(v.digest)} is not a sha256 digest`);
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) fail(what, 'descriptor size is not a non-negative integer');
  checkStringMap(v.annotations, what, 'annotations');
  if (v.platform !== undefined) {
    const p = v.platform;
    if (!isObject(p) || typeof p.os !== 'string' || typeof p.architecture !== 'string') fail(what, 'descriptor platform needs os and architecture');
  }
  return v as unknown as Descriptor;
}

/** The media type a document says it is: its own mediaType field, else the descriptor's. */
export function documentMediaType(value: unknown, descriptorMediaType: string | undefined): string | undefined {
  if (isObject(value) && typeof value.mediaType === 'string') return value.mediaType;
  return descriptorMediaType;
}

export function checkManifest(raw: RawJson<unknown>, what: string, descriptorMediaType?: string): RawJson<Manifest> {
  const v = raw.value;
  if (!isObject(v)) fail(what, 'manifest is not a JSON object');
  if (v.schemaVersion !== 2) fail(what, `unsupported schemaVersion ${JSON.stringify(v.schemaVersion)}`);
  const mt = documentMediaType(v, descriptorMediaType);
  if (mt !== undefined && !isManifestMediaType(mt)) fail(what, `media type ${displayName(mt)} is not an image manifest`);
  if (descriptorMediaType !== undefined && mt !== descriptorMediaType) fail(what, `declares media type ${displayName(String(mt))} but its descriptor says ${displayName(descriptorMediaType)}`);
  checkDescriptor(v.config, `${what} config`);
  if (!Array.isArray(v.layers)) fail(what, 'manifest has no layers array');
  v.layers.forEach((l, i) => checkDescriptor(l, `${what} layer ${i}`));
  checkStringMap(v.annotations, what, 'annotations');
  return raw as RawJson<Manifest>;
}

export function checkIndex(raw: RawJson<unknown>, what: string, descriptorMediaType?: string): RawJson<Index> {
  const v = raw.value;
  if (!isObject(v)) fail(what, 'index is not a JSON object');
  if (v.schemaVersion !== 2) fail(what, `unsupported schemaVersion ${JSON.stringify(v.schemaVersion)}`);
  const mt = documentMediaType(v, descriptorMediaType);
  if (mt !== undefined && !isIndexMediaType(mt)) fail(what, `media type ${displayName(mt)} is not an image index`);
  if (!Array.isArray(v.manifests)) fail(what, 'index has no manifests array');
  v.manifests.forEach((m, i) => checkDescriptor(m, `${what} entry ${i}`));
  checkStringMap(v.annotations, what, 'annotations');
  return raw as RawJson<Index>;
}

export function checkConfig(raw: RawJson<unknown>, what: string): RawJson<ImageConfig> {
  const v = raw.value;
  if (!isObject(v)) fail(what, 'config is not a JSON object');
  if (typeof v.os !== 'string' || typeof v.architecture !== 'string') fail(what, 'config needs os and architecture');
  const rootfs = v.rootfs;
  if (!isObject(rootfs) || rootfs.type !== 'layers' || !Array.isArray(rootfs.diff_ids) || !rootfs.diff_ids.every(isDigest)) {
    fail(what, 'config rootfs must be {type: "layers", diff_ids: [sha256 digests]}');
  }
  return raw as RawJson<ImageConfig>;
}

/** Whether a document is an index (by media type, or by shape when it declares none). */
export function looksLikeIndex(value: unknown, descriptorMediaType?: string): boolean {
  const mt = documentMediaType(value, descriptorMediaType);
  if (mt !== undefined) return isIndexMediaType(mt);
  return isObject(value) && Array.isArray(value.manifests);
}

