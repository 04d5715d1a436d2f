import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { EntrySummary, LayerIndex, OnFile } from '../compare/layer-index.js';
import { ContentCache } from '../fetch/cache.js';
import { defaultSourceDateEpoch } from '../image/build-spec.js';
import { installPackages, type InstalledTree, type PackageToInstall, type TreeNode } from '../install/installer.js';
import { LOCAL_DB_DIR } from '../install/local-db.js';
import { imageLockContext, installedEntries, verifyInstalledEntries, type LockFromImageOptions, type VerifiedPackage } from '../lock/from-image.js';
import type { Digest } from '../oci/digest.js';
import { discard } from '../oci/digest.js';
import { checkConfig } from '../oci/raw-json.js';
import { DEFAULT_KEY_EXPIRY, describeKeyExpiry, type KeyExpiry } from '../pacman/signature.js';
import type { SandboxLimits } from '../setup/limits.js';
import { readNodeContent } from '../setup/setup.js';
import { readJsonBlob } from '../transports/layout.js';
import { openSource, type TransportOptions } from '../transports/open.js';
import { describeSkipped, resolvePlatformManifest, type SkippedManifest } from '../transports/platform-manifest.js';
import type { ImageSource } from '../transports/types.js';
import { makeScratchDir, readSmall } from '../util/fs.js';
import { Spool } from '../util/spool.js';
import { displayName } from '../util/raw-name.js';
import { compareContent, describeField, neededRegenerators, type ContentInputs, type ContentReport, type InstalledFacts, type PathFacts } from './content-compare.js';
import { generatedRule } from './generated.js';
import { readForeignLayers } from './layer-pass.js';
import { describeLayerVerdict } from './layer-reproduction.js';
import { checkLayers, type LayerCheck } from './layers.js';
import { regenerate } from './regenerate.js';

/**
 * `rebuild REF` for an image repro-oci did not build: the lock made from its pacman database (`lock --from-image`:
 * every package fetched from the archive, its signature verified, its metadata equal to the database's), those
 * packages installed by repro-oci's installer, and every path of the image compared with the result
 * (content-compare.ts), well-known generated files regenerated in the sandbox (regenerate.ts). Then the layer levels
 * (layers.ts). Verdict: the content has no unexplained difference, or it has.
 */

export interface ForeignRebuildOptions extends Omit<LockFromImageOptions, 'platform' | 'transport'> {
  /** The platform manifest to check when the reference names an index (default: the only image, else linux/amd64). */
  platform?: string;
  /** Limits for the regenerating commands (default DEFAULT_LIMITS). */
  limits?: SandboxLimits;
  /** Run nothing from the image's packages: generated files are then not regenerated (--no-commands). */
  noCommands?: boolean;
}

export interface ForeignRebuildResult {
  /** The platform manifest checked. */
  manifest: Digest;
  index?: { digest: string; platform: string; skipped: SkippedManifest[] };
  /** Packages in the image's database, each locked from the archive. */
  packages: number;
  archive: string;
  /** SOURCE_DATE_EPOCH the packages were installed and the generated files regenerated with (the newest BUILDDATE). */
  sourceDateEpoch: number;
  content: ContentReport;
  layers: LayerCheck[];
  signatures: { verified: number; keyExpiry: KeyExpiry };
}

/** Small files whose content a check reads (generated.ts), besides pacman's database, which the index keeps. */
const KEPT_IMAGE_FILES = new Set(['etc/os-release', 'etc/locale.conf']);
const MAX_KEPT_BYTES = 64 * 1024;
const OS_RELEASE = 'usr/lib/os-release';

function hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Keeps the last layer's copy of KEPT_IMAGE_FILES; the merged index decides which copy (if any) is the image's. */
function keepImageFiles(kept: Map<string, Buffer>): (layer: number) => OnFile {
  return () => async (path, content, size) => {
    if (KEPT_IMAGE_FILES.has(path) && size <= MAX_KEPT_BYTES) kept.set(path, await readSmall(content, MAX_KEPT_BYTES, path));
    else await discard(content);
  };
}

/** The same for files the first pass spools: their chunks gathered as they go by. */
function keepSpooledImageFiles(kept: Map<string, Buffer>): (layer: number, path: string, size: number) => ((chunk: Buffer) => void) | undefined {
  return (_layer, path, size) => {
    if (!KEPT_IMAGE_FILES.has(path) || size > MAX_KEPT_BYTES) return undefined;
    const chunks: Buffer[] = [];
    kept.set(path, Buffer.alloc(0));
    return (chunk) => {
      chunks.push(chunk);
      kept.set(path, Buffer.concat(chunks));
    };
  };
}

/**
 * Files whose image copy a layer rebuild may keep, spooled by the first pass: generated files, pacman's desc files,
 * and etc/, where packages' %BACKUP% files are. Any other kept file has its layer read again.
 */
function mayBeKept(path: string): boolean {
  return path.startsWith('etc/') || (path.startsWith(`${LOCAL_DB_DIR}/`) && path.endsWith('/desc')) || generatedRule(path) !== undefined;
}
const MAX_SPOOLED_BYTES = 256 * 1024 * 1024;

function strippedLink(target: string): string {
  return target.replace(/^(\.\/|\/)+/, '');
}

/** The image's paths as compared: hardlinks resolved to the entry they share. */
function imageFacts(merged: LayerIndex): Map<string, PathFacts> {
  const facts = new Map<string, PathFacts>();
  const of = (e: EntrySummary): PathFacts => ({
    type: e.type,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    size: e.size,
    ...(e.sha256 !== undefined ? { sha256: e.sha256 } : {}),
    ...(e.linkTarget !== undefined ? { linkTarget: e.linkTarget } : {}),
    ...(e.devMajor !== undefined ? { devMajor: e.devMajor, devMinor: e.devMinor ?? 0 } : {}),
    ...(e.xattrs ? { xattrs: e.xattrs } : {}),
  });
  for (const [path, entry] of merged.entries) {
    const target = entry.type === 'hardlink' ? merged.entries.get(strippedLink(entry.linkTarget ?? '')) : undefined;
    facts.set(path, target?.type === 'file' ? of(target) : of(entry));
  }
  return facts;
}

/**
 * The installed tree's paths as compared: each file's sha256 as the installer hashed it while extracting, or, for
 * what it wrote itself (pacman's database) and a file whose content a hardlink's sort moved, hashed from the spool.
 */
async function installedFacts(tree: InstalledTree): Promise<Map<string, InstalledFacts>> {
  const nodes = new Map(tree.entries.map((n) => [n.path, n]));
  const hashes = new Map<string, string>();
  for (const node of tree.entries) {
    if (node.type !== 'file') continue;
    const known = tree.fileDigests.get(node.path);
    if (known !== undefined) {
      hashes.set(node.path, known);
      continue;
    }
    const hash = createHash('sha256');
    if (node.open) for await (const chunk of await node.open()) hash.update(chunk as Buffer);
    hashes.set(node.path, hash.digest('hex'));
  }
  const facts = new Map<string, InstalledFacts>();
  for (const node of tree.entries) {
    const shared = node.type === 'hardlink' ? nodes.get(node.linkTarget!) : undefined;
    const n: TreeNode = shared ?? node;
    const xattrs = n.xattrs && Object.keys(n.xattrs).length ? Object.fromEntries(Object.entries(n.xattrs).map(([k, v]) => [k, v.toString('hex')])) : undefined;
    facts.set(node.path, {
      type: n.type,
      mode: n.mode,
      uid: n.uid,
      gid: n.gid,
      size: n.size,
      owner: node.owner,
      ...(hashes.has(n.path) ? { sha256: hashes.get(n.path)! } : {}),
      ...(n.linkTarget !== undefined && n.type !== 'hardlink' ? { linkTarget: n.linkTarget } : {}),
      ...(n.devMajor !== undefined ? { devMajor: n.devMajor, devMinor: n.devMinor ?? 0 } : {}),
      ...(xattrs ? { xattrs } : {}),
    });
  }
  return facts;
}

async function installedContents(tree: InstalledTree): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const node of tree.entries) {
    const wanted = node.path === OS_RELEASE || (node.path.startsWith(`${LOCAL_DB_DIR}/`) && node.path.endsWith('/desc'));
    if (wanted && node.type === 'file') out.set(node.path, await readNodeContent(node));
  }
  return out;
}

/**
 * A locked package as the installer takes it: the cached file locking verified (every byte against the lock's
 * sha256, which the installer checks again as it reads, and the archive's signature over them), validated as
 * fetchLockedPackages would validate it (a lock-held signature stands for the checksum, as pacman has it).
 */
function toInstall({ locked, file, signer }: VerifiedPackage): PackageToInstall {
  return {
    name: locked.name,
    version: locked.version,
    file,
    sha256: locked.sha256,
    ...(locked.csize ? { csize: locked.csize } : {}),
    reason: locked.reason,
    validation: signer ? ['pgp'] : ['sha256'],
    isize: locked.isize,
    ...(signer ? { signer: { fingerprint: signer.fingerprint, ...(signer.signerUserId ? { userId: signer.signerUserId } : {}) } } : {}),
  };
}

/** Checks an open image (see the module comment). The source stays open; the caller closes it. */
export async function verifyForeignImage(source: ImageSource, label: string, options: ForeignRebuildOptions): Promise<ForeignRebuildResult> {
  const scratch = await makeScratchDir('foreign-layers');
  const spool = new Spool(join(scratch.path, 'spool'));
  try {
    return await verifySpooling(source, label, options, spool);
  } finally {
    spool.close();
    await scratch.cleanup();
  }
}

/** verifyForeignImage, with `spool` for the image's files a layer rebuild may keep. */
async function verifySpooling(source: ImageSource, label: string, options: ForeignRebuildOptions, spool: Spool): Promise<ForeignRebuildResult> {
  const log = options.log ?? (() => {});
  const cache = options.cache ?? ContentCache.at();
  const context = await imageLockContext({ ...options, cache, log });
  const { descriptor, manifest, index } = await resolvePlatformManifest(source, options.platform, label);
  const config = checkConfig(await readJsonBlob(source, manifest.config, 'config'), `${label} config`).value;
  const kept = new Map<string, Buffer>();
  const { merged, layers: passes } = await readForeignLayers(source, descriptor, manifest, config, label, { spoolable: mayBeKept, spool, maxSpooledBytes: MAX_SPOOLED_BYTES, onFile: keepImageFiles(kept), onSpooled: keepSpooledImageFiles(kept) });
  const { lock, files } = await verifyInstalledEntries({ entries: installedEntries(merged), manifestDigest: descriptor.digest, architecture: config.architecture }, context);
  log(`locked ${lock.packages.length} packages from the image's database; installing them`);

  const keyExpiry = options.keyExpiry ?? DEFAULT_KEY_EXPIRY;
  const packages = files.map(toInstall);
  log(`verified ${packages.filter((p) => p.validation.includes('pgp')).length} package signature(s); ${describeKeyExpiry(keyExpiry)}`);
  const sourceDateEpoch = defaultSourceDateEpoch(lock);
  const tree = await installPackages(packages, { sourceDateEpoch, warn: (m) => log(`warning: ${m}`) });
  try {
    const image = imageFacts(merged);
    const imageContent = new Map(merged.pacmanDb);
    for (const [path, bytes] of kept) if (image.get(path)?.sha256 === hex(bytes)) imageContent.set(path, bytes);
    const installed = await installedFacts(tree);
    const inputs: ContentInputs = {
      image,
      installed,
      backup: new Set(tree.packages.flatMap((p) => p.backup.map(([path]) => path))),
      imageContent,
      installedContent: await installedContents(tree),
      packages: lock.packages.length,
    };
    const regenerators = neededRegenerators(inputs);
    const regenerated = options.noCommands
      ? new Map(regenerators.map((r) => [r.id, { ok: false as const, reason: `--no-commands: ${r.command.join(' ')} is not run` }]))
      : await regenerate(tree.entries, regenerators, sourceDateEpoch, options.limits, log);
    const content = compareContent(inputs, regenerated);
    const layers = await checkLayers({ source, label, manifest, config, tree, installed, content, log, passes });
    return {
      manifest: descriptor.digest,
      ...(index ? { index: { digest: index.digest, platform: index.platform, skipped: index.skipped } } : {}),
      packages: lock.packages.length,
      archive: context.archive,
      sourceDateEpoch,
      content,
      layers,
      signatures: { verified: packages.filter((p) => p.validation.includes('pgp')).length, keyExpiry },
    };
  } finally {
    await tree.cleanup();
  }
}

export interface ForeignRebuildReferenceOptions extends ForeignRebuildOptions {
  transport?: TransportOptions;
}

/** `rebuild REF` for an image without a recipe (or `--from-pacman-db`): opens it and checks it (verifyForeignImage). */
export async function verifyForeignReference(reference: string, options: ForeignRebuildReferenceOptions): Promise<ForeignRebuildResult> {
  const { transport, ...rest } = options;
  const source = await openSource(reference, transport ?? {});
  try {
    return await verifyForeignImage(source, reference, rest);
  } finally {
    await source.close();
  }
}

/** Whether the content check found nothing unexplained (exit 0). */
export function foreignContentPasses(result: ForeignRebuildResult): boolean {
  return result.content.unexplained === 0;
}

/** What `rebuild --json` prints for an image checked against its pacman database (docs/json-output.md). */
export function foreignRebuildJson(result: ForeignRebuildResult): Record<string, unknown> {
  return { from: 'pacman-db', passed: foreignContentPasses(result), ...result };
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
const mode = (m: number): string => m.toString(8).padStart(4, '0');

/** A layer's diffID and digest levels, one line each. */
function layerLines(layer: LayerCheck): string[] {
  if (!layer.reproduction) return [`layer ${layer.layer} diffID: not checked${layer.detail ? ` (${layer.detail})` : ''}`];
  const { diffID, digest } = describeLayerVerdict(layer.reproduction);
  return [`layer ${layer.layer} diffID: ${diffID} (${layer.detail})`, `layer ${layer.layer} digest: ${digest}`];
}

/** The levels first, then the details, at most `limit` lines per category. */
export function formatForeignRebuild(result: ForeignRebuildResult, limit = 40): string {
  const { content } = result;
  const lines: string[] = [];
  const notRegenerated = content.generatedPaths.filter((g) => g.status === 'not-regenerated').length;
  const head = `${plural(content.equal, 'file')} from ${plural(content.packages, 'package')}, ${content.generated} generated${notRegenerated ? ` (${notRegenerated} not regenerated)` : ''}, ${content.unexplained} unexplained`;
  lines.push(`content: ${content.verdict === 'identical' ? 'identical' : 'DIFFERS'} (${head})`);
  for (const layer of result.layers) lines.push(...layerLines(layer));
  if (result.index) lines.push(`index ${result.index.digest}: checked its ${result.index.platform} manifest ${result.manifest}`);
  else lines.push(`manifest ${result.manifest}`);
  const skipped = result.index && describeSkipped(result.index.digest, result.index.skipped);
  if (skipped) lines.push(skipped);
  const section = <T>(title: string, items: T[], line: (item: T) => string): void => {
    if (items.length === 0) return;
    lines.push(`${title}:`);
    for (const item of items.slice(0, limit)) lines.push(`  ${line(item)}`);
    if (items.length > limit) lines.push(`  … and ${items.length - limit} more (--json lists all)`);
  };
  const unexplainedDiffers = content.differs.filter((d) => !d.backup);
  section('differs from its package (unexplained)', unexplainedDiffers, (d) => `/${displayName(d.path)} (${d.package || "pacman's database"}): ${d.setidAdded ? 'SETUID/SETGID ADDED; ' : ''}${d.fields.map(describeField).join(', ')}`);
  section('not from any package (unexplained)', content.notFromPackage, (u) => `/${displayName(u.path)} (${u.type}, ${mode(u.mode)}${u.type === 'file' ? `, ${plural(u.size, 'byte')}` : ''})${u.setid ? ' SETUID/SETGID' : ''}`);
  const failedGenerated = content.generatedPaths.filter((g) => g.status === 'differs' || g.status === 'unverified');
  section('generated, but not as its generator makes it, or not checked (unexplained)', failedGenerated, (g) => `/${displayName(g.path)}: by ${g.by}: ${g.status === 'unverified' ? `not verified: ${g.reason}` : g.reason ?? 'differs'}`);
  section('modified %BACKUP% files (as pacman -Qkk reports them)', content.differs.filter((d) => d.backup), (d) => `/${displayName(d.path)} (${d.package})${d.note ? `: ${d.note}` : ''}`);
  section('missing from the image (the packages install them; NoExtract-style globs)', content.missing, (g) => `${g.glob}${g.except.length ? ` except ${g.except.join(', ')}` : ''}: ${plural(g.paths, 'path')}, ${plural(g.bytes, 'byte')} (${g.packages.join(', ') || "pacman's database"})`);
  section('generated', content.generatedPaths.filter((g) => g.status === 'identical' || g.status === 'not-regenerated'), (g) => `/${displayName(g.path)}: by ${g.by}, ${g.status === 'identical' ? `identical${g.reason ? ` (${g.reason})` : ''}` : `not regenerated: ${g.reason}`}`);
  for (const { layer, contents } of result.layers) {
    if (!contents) continue;
    const files = contents.packages.map((p) => `${p.name} (${p.members.toLocaleString('en-US')})`).join(', ');
    lines.push(`layer ${layer} adds files of: ${files || 'no package'}`);
    section(`layer ${layer} deletes`, contents.deleted, (path) => `/${displayName(path)}`);
    section(`layer ${layer} not explained by any package`, contents.unexplained, (u) => `/${displayName(u.path)} (${u.rebuilt === 'package' ? "rebuilt as its package has it" : 'left out of the rebuild'})`);
  }
  if (content.databaseEntries) lines.push(`pacman database: ${plural(content.databaseEntries, 'entry', 'entries')} locked from ${result.archive} and compared (desc but for %INSTALLDATE% and %VALIDATION%)`);
  const { verified, keyExpiry } = result.signatures;
  lines.push(`signatures: ${verified} package signature(s) verified; ${describeKeyExpiry(keyExpiry)}`);
  return `${lines.join('\n')}\n`;
}
