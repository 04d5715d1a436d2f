import { parseDesc } from '../arch/desc.js';
import { checkConfig } from '../oci/raw-json.js';
import type { Descriptor, ImageConfig, Manifest } from '../oci/types.js';
import { PathPatterns } from '../install/noextract.js';
import type { Digest } from '../oci/digest.js';
import { readJsonBlob } from '../transports/layout.js';
import { CheckedBlobs, isMissingBlob, layerDiffIds, readLayer, verifyAllBlobs } from '../transports/verify.js';
import { resolvePlatformManifest } from '../transports/platform-manifest.js';
import type { ImageSource } from '../transports/types.js';
import { indexLayer, type EntrySummary, type LayerIndex } from './layer-index.js';
import { byteOrder } from '../util/order.js';
import { decodeName, displayName } from '../util/raw-name.js';

/**
 * Compares two images level by level — index, manifest, config, layers, tar entries, and pacman's view (which
 * packages changed and which package owns each differing file) — streaming each layer once and holding only
 * per-entry summaries in memory.
 */
export type Level = 'index' | 'manifest' | 'config' | 'layer' | 'file' | 'package';

export interface Difference {
  level: Level;
  /** Index entry, manifest field, config field (dotted), layer number or file path. */
  where: string;
  field?: string;
  a?: string;
  b?: string;
  /** For files: the pacman package owning the path (on either side). */
  owner?: string;
  message: string;
}

export interface DiffOptions {
  /** Ignore timestamps, entry order and annotation noise (as diffoci --semantic). */
  semantic?: boolean;
  /** Path globs (fnmatch) whose file differences are ignored. */
  ignore?: string[];
  /** Platform to compare when a side is an index (os/arch[/variant]). */
  platform?: string;
  /**
   * Hash every blob under both roots in full (layers also against their diffIDs), so that "same" holds for the
   * bytes and not just the manifests; a missing blob is then an error. Without it, the blobs read are still
   * verified in full, and a layer a side does not hold (an archive kept without layers) is noted.
   */
  verifyBlobs?: boolean;
}

export interface DiffReport {
  a: string;
  b: string;
  same: boolean;
  /** Platform manifests compared when an index was involved. */
  manifests: { a: string; b: string };
  /** The manifests themselves, for a second pass over the layers (report directories). */
  parsed?: { a: Manifest; b: Manifest };
  differences: Difference[];
  /** Whether every blob of both sides was hashed in full, and how many each side holds (set when asked either way). */
  blobs?: { verified: boolean; checked?: { a: number; b: number } };
}

export interface Side {
  label: string;
  source: ImageSource;
}

/** A side while it is compared: what of it has been hashed in full already. */
interface OpenSide extends Side {
  checked: CheckedBlobs;
}

/** Annotations publishers add or rewrite without changing the image (docker-library, BuildKit). */
const NOISY_ANNOTATIONS = /^(org\.opencontainers\.image\.(created|revision|source|url|version|ref\.name|base\.name|base\.digest)|com\.docker\.official-images\..*|vnd\.docker\.reference\..*)$/;

/** Flattens JSON into dotted paths with JSON-encoded leaves, for field-by-field comparison. */
function flatten(value: unknown, prefix: string, out: Map<string, string>): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) out.set(prefix, '{}');
    for (const [k, v] of entries) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (Array.isArray(value)) {
    if (value.length === 0) out.set(prefix, '[]');
    value.forEach((v, i) => flatten(v, `${prefix}[${i}]`, out));
  } else {
    out.set(prefix, JSON.stringify(value));
  }
}

function compareFields(level: Level, a: unknown, b: unknown, ignore: (field: string) => boolean, diffs: Difference[]): void {
  const fa = new Map<string, string>();
  const fb = new Map<string, string>();
  flatten(a, '', fa);
  flatten(b, '', fb);
  for (const key of [...new Set([...fa.keys(), ...fb.keys()])].sort()) {
    if (ignore(key)) continue;
    const va = fa.get(key);
    const vb = fb.get(key);
    if (va === vb) continue;
    diffs.push({ level, where: key, ...(va !== undefined ? { a: va } : {}), ...(vb !== undefined ? { b: vb } : {}), message: `${level} ${key}: ${va ?? '(absent)'} → ${vb ?? '(absent)'}` });
  }
}

const ENTRY_FIELDS: (keyof EntrySummary)[] = ['type', 'mode', 'uid', 'gid', 'size', 'mtime', 'linkTarget', 'devMajor', 'devMinor', 'xattrs', 'sha256'];

function show(field: keyof EntrySummary, value: unknown): string {
  if (value === undefined) return '(none)';
  if (field === 'mode') return (value as number).toString(8).padStart(4, '0');
  if (field === 'sha256') return (value as string).slice(0, 16);
  if (field === 'linkTarget') return displayName(value as string);
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Paths owned by each package, from pacman's local database in a layer. */
function pacmanView(db: Map<string, Buffer>): { versions: Map<string, string>; owners: Map<string, string> } {
  const versions = new Map<string, string>();
  const owners = new Map<string, string>();
  for (const [path, content] of db) {
    const m = /^var\/lib\/pacman\/local\/([^/]+)\/(desc|files)$/.exec(path);
    if (!m) continue;
    let blocks: Map<string, string[]>;
    try {
      // pacman writes names and values as bytes, UTF-8 or not; decoded as the layer's own names are.
      blocks = parseDesc(decodeName(content), path);
    } catch {
      continue; // a damaged database entry is itself a file difference
    }
    if (m[2] === 'desc') {
      const name = blocks.get('NAME')?.[0];
      const version = blocks.get('VERSION')?.[0];
      if (name && version) versions.set(name, version);
    } else {
      const name = m[1]!.replace(/-[^-]+-[^-]+$/, '');
      for (const file of blocks.get('FILES') ?? []) owners.set(file.replace(/\/$/, ''), name);
    }
  }
  return { versions, owners };
}

function compareEntries(a: LayerIndex, b: LayerIndex, where: string, options: DiffOptions, owners: Map<string, string>, diffs: Difference[], checkOrder = true): void {
  const ignored = new PathPatterns(options.ignore ?? []);
  const paths = [...new Set([...a.entries.keys(), ...b.entries.keys()])].sort(byteOrder);
  for (const path of paths) {
    if (ignored.matches(path)) continue;
    const ea = a.entries.get(path);
    const eb = b.entries.get(path);
    const owner = owners.get(path);
    const base = { level: 'file' as const, where: path, ...(owner ? { owner } : {}) };
    const ownedBy = owner ? ` [${owner}]` : '';
    if (!ea) {
      diffs.push({ ...base, message: `${where}: + ${displayName(`/${path}`)} (${eb!.type})${ownedBy}` });
      continue;
    }
    if (!eb) {
      diffs.push({ ...base, message: `${where}: - ${displayName(`/${path}`)} (${ea.type})${ownedBy}` });
      continue;
    }
    for (const field of ENTRY_FIELDS) {
      if (options.semantic && field === 'mtime') continue;
      const va = ea[field];
      const vb = eb[field];
      if (JSON.stringify(va) === JSON.stringify(vb)) continue;
      diffs.push({ ...base, field, a: show(field, va), b: show(field, vb), message: `${where}: ${displayName(`/${path}`)}: ${field} ${show(field, va)} → ${show(field, vb)}${ownedBy}` });
    }
  }
  if (!options.semantic && checkOrder) {
    const common = a.order.filter((p) => b.entries.has(p));
    const commonB = b.order.filter((p) => a.entries.has(p));
    const firstMoved = common.findIndex((p, i) => commonB[i] !== p);
    if (firstMoved !== -1) diffs.push({ level: 'layer', where, field: 'order', message: `${where}: entry order differs from ${displayName(`/${common[firstMoved]!}`)}` });
  }
}

export async function diffImages(sideA: Side, sideB: Side, options: DiffOptions = {}): Promise<DiffReport> {
  const a: OpenSide = { ...sideA, checked: new CheckedBlobs() };
  const b: OpenSide = { ...sideB, checked: new CheckedBlobs() };
  const rootA = await a.source.root();
  const rootB = await b.source.root();
  const report = await compareImages(a, b, rootA, rootB, options);
  if (options.verifyBlobs === true) {
    // After the comparison, which has verified the layers it read: the rest are read here, each once.
    await verifyAllBlobs(a.source, rootA, a.checked, a.label);
    await verifyAllBlobs(b.source, rootB, b.checked, b.label);
    report.blobs = { verified: true, checked: { a: a.checked.count, b: b.checked.count } };
  } else if (options.verifyBlobs === false) {
    report.blobs = { verified: false };
  }
  return report;
}

type Root = Awaited<ReturnType<ImageSource['root']>>;

async function compareImages(sideA: OpenSide, sideB: OpenSide, rootA: Root, rootB: Root, options: DiffOptions): Promise<DiffReport> {
  const diffs: Difference[] = [];
  const report: DiffReport = { a: rootA.descriptor.digest, b: rootB.descriptor.digest, same: false, manifests: { a: '', b: '' }, differences: diffs };
  if (rootA.descriptor.digest === rootB.descriptor.digest) {
    report.same = true;
    report.manifests = { a: rootA.descriptor.digest, b: rootB.descriptor.digest };
    return report;
  }

  const a = await resolvePlatformManifest(sideA.source, options.platform, sideA.label);
  const b = await resolvePlatformManifest(sideB.source, options.platform, sideB.label);
  report.manifests = { a: a.descriptor.digest, b: b.descriptor.digest };
  report.parsed = { a: a.manifest, b: b.manifest };
  if (a.index || b.index) {
    // Index-level differences are reported apart: publishers rewrite indexes; the manifest is what is verified.
    const ignoreIndex = (field: string): boolean => options.semantic === true && /^(annotations\.|manifests\[\d+\]\.annotations\.)/.test(field) && NOISY_ANNOTATIONS.test(field.replace(/^.*annotations\./, ''));
    compareFields('index', a.index?.value ?? { manifest: a.descriptor }, b.index?.value ?? { manifest: b.descriptor }, ignoreIndex, diffs);
  }
  if (a.descriptor.digest === b.descriptor.digest) {
    report.same = diffs.length === 0;
    return report;
  }

  const ignoreManifest = (field: string): boolean => options.semantic === true && field.startsWith('annotations.') && NOISY_ANNOTATIONS.test(field.slice('annotations.'.length));
  compareFields('manifest', a.manifest, b.manifest, ignoreManifest, diffs);

  const configA = checkConfig(await readJsonBlob(sideA.source, a.manifest.config, 'config'), `${sideA.label} config`).value;
  const configB = checkConfig(await readJsonBlob(sideB.source, b.manifest.config, 'config'), `${sideB.label} config`).value;
  const ignoreConfig = (field: string): boolean => options.semantic === true && (field === 'created' || /^history\[\d+\]\.created$/.test(field));
  compareFields('config', configA, configB, ignoreConfig, diffs);

  await compareLayers(sideA, sideB, a.manifest, b.manifest, configA, configB, options, diffs);
  report.same = diffs.length === 0;
  return report;
}

/**
 * The filesystem a stack of layers produces: later layers win, `.wh.NAME` removes NAME (and below), and
 * `.wh..wh..opq` hides everything earlier layers put in its directory (OCI image-spec layer.md whiteouts).
 */
export function mergeLayers(layers: LayerIndex[]): LayerIndex {
  const entries = new Map<string, EntrySummary>();
  const pacmanDb = new Map<string, Buffer>();
  const removeUnder = (prefix: string): void => {
    for (const map of [entries, pacmanDb] as Map<string, unknown>[]) {
      for (const key of [...map.keys()]) if (key === prefix || key.startsWith(`${prefix}/`)) map.delete(key);
    }
  };
  for (const layer of layers) {
    for (const path of layer.order) {
      const slash = path.lastIndexOf('/');
      const dir = slash === -1 ? '' : path.slice(0, slash);
      const base = path.slice(slash + 1);
      if (base === '.wh..wh..opq') {
        for (const map of [entries, pacmanDb] as Map<string, unknown>[]) {
          for (const key of [...map.keys()]) if (dir === '' || key.startsWith(`${dir}/`)) map.delete(key);
        }
      } else if (base.startsWith('.wh.')) {
        removeUnder(dir ? `${dir}/${base.slice(4)}` : base.slice(4));
      } else {
        entries.set(path, layer.entries.get(path)!);
        const db = layer.pacmanDb.get(path);
        if (db) pacmanDb.set(path, db);
      }
    }
  }
  return { entries, order: [...entries.keys()], pacmanDb };
}

/**
 * Indexes a layer, verified in full against its digest and diffID; or, unless every blob must be checked, notes
 * that this side does not hold it (an archive kept without layers).
 */
async function indexIfPresent(side: OpenSide, layer: Descriptor, diffId: Digest, where: string, options: DiffOptions, diffs: Difference[]): Promise<LayerIndex | undefined> {
  const what = `${side.label}: ${where} ${layer.digest}`;
  try {
    const index = await readLayer(side.source, layer, diffId, what, (content) => indexLayer(content, what));
    side.checked.addLayer(layer.digest, diffId);
    return index;
  } catch (err) {
    if (options.verifyBlobs === true || !isMissingBlob(err, layer.digest)) throw err;
    diffs.push({ level: 'layer', where, message: `${where}: ${side.label} does not hold ${layer.digest}; its files cannot be compared` });
    return undefined;
  }
}

async function compareLayers(sideA: OpenSide, sideB: OpenSide, ma: Manifest, mb: Manifest, ca: ImageConfig, cb: ImageConfig, options: DiffOptions, diffs: Difference[]): Promise<void> {
  const diffIdsA = layerDiffIds(ma, ca, `${sideA.label} manifest`);
  const diffIdsB = layerDiffIds(mb, cb, `${sideB.label} manifest`);
  const count = Math.max(ma.layers.length, mb.layers.length);
  // With more than one layer, every layer is read: the merged view needs them all.
  const multi = count > 1;
  const indexesA: LayerIndex[] = [];
  const indexesB: LayerIndex[] = [];
  const pending: { where: string; ia: LayerIndex; ib: LayerIndex }[] = [];
  for (let i = 0; i < count; i++) {
    const la = ma.layers[i];
    const lb = mb.layers[i];
    const where = `layer ${i}`;
    const same = la && lb && diffIdsA[i] === diffIdsB[i];
    if (!la || !lb) diffs.push({ level: 'layer', where, message: `${where}: only in ${la ? sideA.label : sideB.label}` });
    if (same && !multi) continue;
    const ia = la ? await indexIfPresent(sideA, la, diffIdsA[i]!, where, options, diffs) : undefined;
    const ib = lb ? (same ? ia : await indexIfPresent(sideB, lb, diffIdsB[i]!, where, options, diffs)) : undefined;
    if (ia) indexesA.push(ia);
    if (ib) indexesB.push(ib);
    if (ia && ib && !same) pending.push({ where, ia, ib });
  }
  const mergedA = mergeLayers(indexesA);
  const mergedB = mergeLayers(indexesB);
  const viewA = pacmanView(mergedA.pacmanDb);
  const viewB = pacmanView(mergedB.pacmanDb);
  const owners = new Map([...viewA.owners, ...viewB.owners]);
  for (const { where, ia, ib } of pending) compareEntries(ia, ib, where, options, owners, diffs);
  if (multi) compareEntries(mergedA, mergedB, 'merged', options, owners, diffs, false);
  for (const name of [...new Set([...viewA.versions.keys(), ...viewB.versions.keys()])].sort()) {
    const va = viewA.versions.get(name);
    const vb = viewB.versions.get(name);
    if (va === vb) continue;
    const message = !va ? `package + ${name} ${vb}` : !vb ? `package - ${name} ${va}` : `package ${name} ${va} → ${vb}`;
    diffs.push({ level: 'package', where: name, ...(va ? { a: va } : {}), ...(vb ? { b: vb } : {}), message });
  }
}

/** The line that says whether the blobs were checked, when the report says either way. */
function blobsLine(report: DiffReport): string {
  const blobs = report.blobs;
  if (!blobs) return '';
  if (!blobs.verified || !blobs.checked) return 'blobs: not checked (--no-verify-blobs); those read were verified\n';
  const { a, b } = blobs.checked;
  return `blobs: ${a === b ? `${a} of each side` : `${a} of a, ${b} of b`} checked in full (digests, and diffIDs of layers)\n`;
}

export function formatDiff(report: DiffReport, limit = Infinity): string {
  if (report.same) return `same: ${report.a}\n${blobsLine(report)}`;
  const lines = [`--- ${report.a}`, `+++ ${report.b}`];
  const order: Level[] = ['index', 'manifest', 'config', 'layer', 'package', 'file'];
  let shown = 0;
  for (const level of order) {
    const group = report.differences.filter((d) => d.level === level);
    if (group.length === 0) continue;
    lines.push(`[${level}] ${group.length} difference(s)`);
    for (const d of group) {
      if (shown++ >= limit) break;
      lines.push(`  ${d.message}`);
    }
  }
  if (report.differences.length > limit) lines.push(`  … and ${report.differences.length - limit} more`);
  return `${lines.join('\n')}\n${blobsLine(report)}`;
}
