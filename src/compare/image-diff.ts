import { isDeepStrictEqual } from 'node:util';
import { parseDesc } from '../pacman/desc.js';
import { checkConfig } from '../oci/raw-json.js';
import type { Descriptor, ImageConfig, Manifest } from '../oci/types.js';
import type { Digest } from '../oci/digest.js';
import { readJsonBlob } from '../transports/layout.js';
import { CheckedBlobs, isMissingBlob, layerDiffIds, readLayer, verifyAllBlobs } from '../transports/verify.js';
import { resolvePlatformManifest, type SkippedManifest } from '../transports/platform-manifest.js';
import type { ImageSource } from '../transports/types.js';
import { indexLayer, type EntrySummary, type LayerIndex } from './layer-index.js';
import { byteOrder } from '../util/order.js';
import { decodeName, displayName } from '../util/raw-name.js';
import { compareJson, LEVELS, type Difference, type DifferenceKind, type Level } from './difference.js';
import { printedEntryPath, withoutIgnored } from './printed-path.js';
import { summarizeDiff, type DiffSummary } from './summary.js';

export type { Difference, DifferenceKind, Level } from './difference.js';
export type { DiffSummary } from './summary.js';
export { diffJson, formatDiff, formatDifference, type DiffJson } from './format-diff.js';

/**
 * Compares two images level by level — index, manifest, config, layers, tar entries, and pacman's view (which
 * packages changed and which package owns each differing entry) — streaming each layer once and holding only
 * per-entry summaries in memory.
 */
export interface DiffOptions {
  /** Ignore timestamps, entry order and annotation noise (as diffoci --semantic). */
  semantic?: boolean;
  /**
   * Paths whose differences are ignored: as printed (any level; see Difference.path), or fnmatch globs of entry
   * paths (see withoutIgnored).
   */
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

/** A layer one side does not hold (an archive kept without layers): its entries were not compared. */
export interface NotCompared {
  layer: number;
  side: 'a' | 'b';
  label: string;
  digest: string;
}

export interface DiffReport {
  /** The root digests. */
  a: string;
  b: string;
  same: boolean;
  /** Platform manifests compared when an index was involved. */
  manifests: { a: string; b: string };
  /** The manifests themselves, for a second pass over the layers (report directories). */
  parsed?: { a: Manifest; b: Manifest };
  /** In the order of LEVELS; entries by layer, then by path (bytes). */
  differences: Difference[];
  notCompared: NotCompared[];
  /** Entries of a side's index that are no platform's image (attestation manifests): named, not compared. */
  skipped?: { side: 'a' | 'b'; index: string; manifests: SkippedManifest[] }[];
  summary: DiffSummary;
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

/** What one comparison collects, and how. */
interface Comparison {
  options: DiffOptions;
  diffs: Difference[];
  notCompared: NotCompared[];
}

/** Annotations publishers add or rewrite without changing the image (docker-library, BuildKit). */
const NOISY_ANNOTATIONS = /^(org\.opencontainers\.image\.(created|revision|source|url|version|ref\.name|base\.name|base\.digest)|com\.docker\.official-images\..*|vnd\.docker\.reference\..*)$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A copy of a JSON object without the noisy annotations (`--semantic`), so that they count neither as values nor as keys. */
function withoutNoisyAnnotations<T>(value: T): T {
  if (!isObject(value) || !isObject(value['annotations'])) return value;
  const annotations = Object.fromEntries(Object.entries(value['annotations']).filter(([key]) => !NOISY_ANNOTATIONS.test(key)));
  return { ...value, annotations };
}

/** The index as `--semantic` compares it: its own and its manifest descriptors' annotations without the noise. */
function semanticIndex(index: unknown): unknown {
  const top = withoutNoisyAnnotations(index);
  if (!isObject(top) || !Array.isArray(top['manifests'])) return top;
  return { ...top, manifests: top['manifests'].map(withoutNoisyAnnotations) };
}

/** The config as `--semantic` compares it: without its creation time and its history's. */
function semanticConfig(config: ImageConfig): unknown {
  const rest: Record<string, unknown> = { ...config };
  delete rest['created'];
  if (!Array.isArray(rest['history'])) return rest;
  return { ...rest, history: (rest['history'] as unknown[]).map((h) => (isObject(h) ? Object.fromEntries(Object.entries(h).filter(([key]) => key !== 'created')) : h)) };
}

const ENTRY_FIELDS = ['type', 'mode', 'uid', 'gid', 'size', 'mtime', 'linkTarget', 'devMajor', 'devMinor', 'xattrs', 'sha256'] as const;
type EntryField = (typeof ENTRY_FIELDS)[number];

/** An entry field's value as a difference holds it: link targets printed as paths are, so that any bytes survive JSON. */
function entryValue(entry: EntrySummary, field: EntryField): unknown {
  const value = entry[field];
  return field === 'linkTarget' && value !== undefined ? displayName(value as string) : value;
}

function entryFields(entry: EntrySummary): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of ENTRY_FIELDS) if (entry[field] !== undefined) out[field] = entryValue(entry, field);
  return out;
}

/** pacman's view of one side: each package's version, and the package owning each path. */
interface PacmanView {
  versions: Map<string, string>;
  owners: Map<string, string>;
  /** Directory of var/lib/pacman/local → the package whose entry it is. */
  dbDirs: Map<string, string>;
}

const LOCAL_DB = /^var\/lib\/pacman\/local\/([^/]+)(?:\/(desc|files))?/;

/** Paths owned by each package, from pacman's local database in a layer. */
function pacmanView(db: Map<string, Buffer>): PacmanView {
  const view: PacmanView = { versions: new Map(), owners: new Map(), dbDirs: new Map() };
  const files: [string, string[]][] = [];
  for (const [path, content] of db) {
    const m = /^var\/lib\/pacman\/local\/([^/]+)\/(desc|files)$/.exec(path);
    if (!m) continue;
    let blocks: Map<string, string[]>;
    try {
      // pacman writes names and values as bytes, UTF-8 or not; decoded as the layer's own names are.
      blocks = parseDesc(decodeName(content), path);
    } catch {
      continue; // a damaged database entry is itself an entry difference
    }
    if (m[2] === 'desc') {
      const name = blocks.get('NAME')?.[0];
      const version = blocks.get('VERSION')?.[0];
      if (name) view.dbDirs.set(m[1]!, name);
      if (name && version) view.versions.set(name, version);
    } else {
      files.push([m[1]!, blocks.get('FILES') ?? []]);
    }
  }
  for (const [dir, list] of files) {
    const name = view.dbDirs.get(dir) ?? dir.replace(/-[^-]+-[^-]+$/, '');
    for (const file of list) view.owners.set(file.replace(/\/$/, ''), name);
  }
  return view;
}

/** The package owning a path: by its file list, or — for its own entry in pacman's database — by that entry's desc. */
function ownerIn(view: PacmanView, path: string): string | undefined {
  const owner = view.owners.get(path);
  if (owner !== undefined) return owner;
  const dir = LOCAL_DB.exec(path)?.[1];
  return dir === undefined ? undefined : view.dbDirs.get(dir);
}

function withOwner(owner: string | undefined): { package?: string } {
  return owner === undefined ? {} : { package: displayName(owner) };
}

function compareEntries(a: LayerIndex, b: LayerIndex, layer: number | 'merged', views: { a: PacmanView; b: PacmanView }, cmp: Comparison, checkOrder: boolean): void {
  const paths = [...new Set([...a.entries.keys(), ...b.entries.keys()])].sort(byteOrder);
  for (const path of paths) {
    const ea = a.entries.get(path);
    const eb = b.entries.get(path);
    const base = { level: 'entry' as const, path: printedEntryPath(path), layer };
    if (!ea) {
      cmp.diffs.push({ kind: 'added', ...base, after: entryFields(eb!), ...withOwner(ownerIn(views.b, path)) });
    } else if (!eb) {
      cmp.diffs.push({ kind: 'removed', ...base, before: entryFields(ea), ...withOwner(ownerIn(views.a, path)) });
    } else {
      const before: Record<string, unknown> = {};
      const after: Record<string, unknown> = {};
      for (const field of ENTRY_FIELDS) {
        if (cmp.options.semantic && field === 'mtime') continue;
        const va = entryValue(ea, field);
        const vb = entryValue(eb, field);
        if (isDeepStrictEqual(va, vb)) continue;
        before[field] = va ?? null;
        after[field] = vb ?? null;
      }
      if (Object.keys(before).length) cmp.diffs.push({ kind: 'changed', ...base, before, after, ...withOwner(ownerIn(views.b, path) ?? ownerIn(views.a, path)) });
    }
  }
  if (!cmp.options.semantic && checkOrder) {
    const common = a.order.filter((p) => b.entries.has(p));
    const commonB = b.order.filter((p) => a.entries.has(p));
    const firstMoved = common.findIndex((p, i) => commonB[i] !== p);
    if (firstMoved !== -1) {
      cmp.diffs.push({ kind: 'changed', level: 'layer', path: `layers[${layer}]`, layer, before: { entryOrder: printedEntryPath(common[firstMoved]!) }, after: { entryOrder: printedEntryPath(commonB[firstMoved]!) } });
    }
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
  const cmp: Comparison = { options, diffs: [], notCompared: [] };
  const report: Omit<DiffReport, 'summary'> = { a: rootA.descriptor.digest, b: rootB.descriptor.digest, same: false, manifests: { a: rootA.descriptor.digest, b: rootB.descriptor.digest }, differences: [], notCompared: cmp.notCompared };
  const finish = (): DiffReport => {
    const kept = withoutIgnored(cmp.diffs, options.ignore ?? []);
    report.differences = LEVELS.flatMap((level) => kept.filter((d) => d.level === level));
    report.same = report.differences.length === 0;
    return Object.assign(report, { summary: summarizeDiff(report) });
  };
  if (rootA.descriptor.digest === rootB.descriptor.digest) return finish();

  const a = await resolvePlatformManifest(sideA.source, options.platform, sideA.label);
  const b = await resolvePlatformManifest(sideB.source, options.platform, sideB.label);
  report.manifests = { a: a.descriptor.digest, b: b.descriptor.digest };
  const skipped = (['a', 'b'] as const).flatMap((side) => {
    const index = (side === 'a' ? a : b).index;
    return index?.skipped.length ? [{ side, index: index.digest, manifests: index.skipped }] : [];
  });
  if (skipped.length) report.skipped = skipped;
  report.parsed = { a: a.manifest, b: b.manifest };
  if (a.index || b.index) {
    // Index-level differences are reported apart: publishers rewrite indexes; the manifest is what is verified.
    const index = (side: typeof a): unknown => side.index?.value ?? { manifest: side.descriptor };
    const semantic = options.semantic === true;
    compareJson('index', semantic ? semanticIndex(index(a)) : index(a), semantic ? semanticIndex(index(b)) : index(b), '', cmp.diffs);
  }
  if (a.descriptor.digest === b.descriptor.digest) return finish();

  const manifest = (m: Manifest): unknown => (options.semantic ? withoutNoisyAnnotations(m) : m);
  compareJson('manifest', manifest(a.manifest), manifest(b.manifest), '', cmp.diffs);

  const configA = checkConfig(await readJsonBlob(sideA.source, a.manifest.config, 'config'), `${sideA.label} config`).value;
  const configB = checkConfig(await readJsonBlob(sideB.source, b.manifest.config, 'config'), `${sideB.label} config`).value;
  const config = (c: ImageConfig): unknown => (options.semantic ? semanticConfig(c) : c);
  compareJson('config', config(configA), config(configB), '', cmp.diffs);

  await compareLayers(sideA, sideB, a.manifest, b.manifest, configA, configB, cmp);
  return finish();
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
async function indexIfPresent(side: OpenSide, which: 'a' | 'b', layer: Descriptor, diffId: Digest, i: number, cmp: Comparison): Promise<LayerIndex | undefined> {
  const what = `${side.label}: layer ${i} ${layer.digest}`;
  try {
    const index = await readLayer(side.source, layer, diffId, what, (content) => indexLayer(content, what));
    side.checked.addLayer(layer.digest, diffId);
    return index;
  } catch (err) {
    if (cmp.options.verifyBlobs === true || !isMissingBlob(err, layer.digest)) throw err;
    cmp.notCompared.push({ layer: i, side: which, label: side.label, digest: layer.digest });
    return undefined;
  }
}

async function compareLayers(sideA: OpenSide, sideB: OpenSide, ma: Manifest, mb: Manifest, ca: ImageConfig, cb: ImageConfig, cmp: Comparison): Promise<void> {
  const diffIdsA = layerDiffIds(ma, ca, `${sideA.label} manifest`);
  const diffIdsB = layerDiffIds(mb, cb, `${sideB.label} manifest`);
  const count = Math.max(ma.layers.length, mb.layers.length);
  // With more than one layer, every layer is read: the merged view needs them all.
  const multi = count > 1;
  const indexesA: LayerIndex[] = [];
  const indexesB: LayerIndex[] = [];
  const pending: { layer: number; ia: LayerIndex; ib: LayerIndex }[] = [];
  for (let i = 0; i < count; i++) {
    const la = ma.layers[i];
    const lb = mb.layers[i];
    const same = la && lb && diffIdsA[i] === diffIdsB[i];
    if (!la) cmp.diffs.push({ kind: 'added', level: 'layer', path: `layers[${i}]`, layer: i, after: { digest: lb!.digest, diffId: diffIdsB[i], size: lb!.size } });
    if (!lb) cmp.diffs.push({ kind: 'removed', level: 'layer', path: `layers[${i}]`, layer: i, before: { digest: la!.digest, diffId: diffIdsA[i], size: la!.size } });
    if (same && !multi) continue;
    const ia = la ? await indexIfPresent(sideA, 'a', la, diffIdsA[i]!, i, cmp) : undefined;
    const ib = lb ? (same ? ia : await indexIfPresent(sideB, 'b', lb, diffIdsB[i]!, i, cmp)) : undefined;
    if (ia) indexesA.push(ia);
    if (ib) indexesB.push(ib);
    if (ia && ib && !same) pending.push({ layer: i, ia, ib });
  }
  const mergedA = mergeLayers(indexesA);
  const mergedB = mergeLayers(indexesB);
  const views = { a: pacmanView(mergedA.pacmanDb), b: pacmanView(mergedB.pacmanDb) };
  for (const { layer, ia, ib } of pending) compareEntries(ia, ib, layer, views, cmp, true);
  if (multi) compareEntries(mergedA, mergedB, 'merged', views, cmp, false);
  for (const name of [...new Set([...views.a.versions.keys(), ...views.b.versions.keys()])].sort(byteOrder)) {
    const va = views.a.versions.get(name);
    const vb = views.b.versions.get(name);
    if (va === vb) continue;
    const kind: DifferenceKind = !va ? 'added' : !vb ? 'removed' : 'changed';
    const printed = displayName(name);
    cmp.diffs.push({ kind, level: 'package' as Level, path: printed, ...(va ? { before: displayName(va) } : {}), ...(vb ? { after: displayName(vb) } : {}), package: printed });
  }
}
