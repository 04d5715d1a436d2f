import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { InstalledTree, TreeNode } from '../install/installer.js';
import { LOCAL_DB_DIR } from '../install/local-db.js';
import { discard, type Digest } from '../oci/digest.js';
import type { ImageConfig, Manifest } from '../oci/types.js';
import { normalizeMemberPath } from '../tar/entry.js';
import { readTar } from '../tar/reader.js';
import type { ImageSource } from '../transports/types.js';
import { layerDiffIds, readLayer } from '../transports/verify.js';
import { makeScratchDir } from '../util/fs.js';
import { Spool } from '../util/spool.js';
import { byteOrder } from '../util/order.js';
import type { ContentReport, InstalledFacts } from './content-compare.js';
import { reproduceLayer, type LayerVerdict } from './layer-reproduction.js';
import { memberEntry, type LayerMember, type LayerPass } from './layer-pass.js';
import type { ForeignTarEntry } from './tar-convention.js';

/**
 * The layer and digest levels of checking a foreign image: each layer written again, in the conventions of the
 * tool that wrote it (tar-convention.ts), from what the content level verified, and its diffID compared (and, where
 * the compressor is one repro-oci can run byte for byte, its digest: layer-reproduction.ts).
 *
 * What a rebuilt layer is made of, member by member of the original:
 * - a package's path: the package's content (or symlink target) and mode and owner, from repro-oci's install;
 * - a path the content level explained but cannot rebuild (a regenerated file equal to its regeneration, a file no
 *   rerun can make the same, an edited %BACKUP% file, pacman's `desc` with its install date): the image's bytes;
 * - a path not explained: the package's content when a package installs it, else left out — the diffID then
 *   differs at that member, as the content level already says;
 * - timestamps, owner names, PAX times and ACLs: as the layer records them (nothing to rebuild them from).
 * - a whiteout: as the layer has it (the merged view applied it; the content level judged the result).
 * So an identical diffID means the layer holds nothing besides what the content level verified or named: no
 * hidden member, record or byte, including in files a later layer hides.
 * The same walk attributes each layer's members (LayerContents): to the package that installs the path, or, when
 * the rebuild had to replace or leave the member out, as unexplained — charged to the layer whose member it is.
 */

export interface LayerSources {
  /** Members whose content (or link target) and metadata come from the packages. */
  packages: number;
  /** Explained members kept as the image has them (see the module comment). */
  image: number;
  /** Unexplained members given the package's content instead. */
  replaced: number;
  /** Unexplained members that no package installs: left out. */
  omitted: number;
}

/** What one layer adds and deletes, attributed (item 3 of derived images: `FROM archlinux` plus RUN layers). */
export interface LayerContents {
  /**
   * Packages whose files this layer adds or rewrites, by the installed tree's owner (pacman's database entry
   * counted with its package), with how many of this layer's members each; sorted by name. Directories are left
   * out: every layer that writes under one carries it.
   */
  packages: Array<{ name: string; members: number }>;
  /**
   * This layer's members no package explains: paths the content level counts as unexplained, and hidden members a
   * later layer covers that the rebuild had to replace or leave out. Sorted.
   */
  unexplained: Array<{ path: string; rebuilt: 'package' | 'left-out' }>;
  /** Paths this layer deletes (whiteouts; an opaque directory as `DIR/*`), sorted. */
  deleted: string[];
}

export interface LayerCheck {
  /** 1-based position in the manifest, as the CLI prints it. */
  layer: number;
  digest: Digest;
  diffId: Digest;
  /** The diffID level: identical or differs, unknown-writer (conventions not known here), or not checked (why in detail). */
  verdict: 'identical' | 'differs' | 'unknown-writer' | 'not-checked';
  /** One line: the tar writer detected and how the layer was rebuilt, or why it was not. */
  detail?: string;
  sources?: LayerSources;
  /** What the layer adds and deletes, attributed to packages, or listed as unexplained. */
  contents?: LayerContents;
  /** reproduceLayer's verdict: the convention, the diffID and the digest levels. */
  reproduction?: LayerVerdict;
}

export interface LayerCheckInput {
  source: ImageSource;
  label: string;
  manifest: Manifest;
  config: ImageConfig;
  /** repro-oci's install of the image's packages (alive until the check returns), and its facts as compared. */
  tree: InstalledTree;
  installed: ReadonlyMap<string, InstalledFacts>;
  content: ContentReport;
  log: (message: string) => void;
  /** What the first pass over each layer found (layer-pass.ts); without it, each layer is read again here. */
  passes?: readonly LayerPass[];
}

/** The most of the image's own bytes one layer's rebuild keeps on disk (explained files are small: logs, keyrings). */
const MAX_KEPT_BYTES = 1024 ** 3;

/** Paths whose explained content cannot come from the packages, with why. */
function keptFromImage(content: ContentReport, installed: ReadonlyMap<string, InstalledFacts>): Set<string> {
  const kept = new Set<string>();
  for (const g of content.generatedPaths) if (g.status === 'identical' || g.status === 'not-regenerated') kept.add(g.path);
  for (const d of content.differs) if (d.backup) kept.add(d.path);
  // pacman's desc files that the content level found equal but for the install date: the image's.
  const differing = new Set(content.differs.map((d) => d.path));
  for (const path of installed.keys()) if (path.startsWith(`${LOCAL_DB_DIR}/`) && path.endsWith('/desc') && !differing.has(path)) kept.add(path);
  return kept;
}

/** The file node that holds a tree path's content (itself, or the file a hardlink shares). */
function contentNode(nodes: ReadonlyMap<string, TreeNode>, path: string): TreeNode | undefined {
  const node = nodes.get(path);
  const shared = node?.type === 'hardlink' ? nodes.get(node.linkTarget!) : node;
  return shared?.type === 'file' ? shared : undefined;
}


/**
 * A layer's members as read, read again: explained files' contents spooled to `scratch`, every other file's hashed.
 * For a layer whose kept files the first pass (layer-pass.ts) did not spool.
 */
async function rereadMembers(input: LayerCheckInput, index: number, diffId: Digest, spool: Spool, kept: ReadonlySet<string>): Promise<LayerMember[]> {
  const layer = input.manifest.layers[index]!;
  const what = `${input.label} layer ${index + 1}`;
  const members: LayerMember[] = [];
  let keptBytes = 0;
  await readLayer(input.source, layer, diffId, what, async (content) => {
    for await (const read of readTar(content, { what })) {
      const path = normalizeMemberPath(read.name);
      if (!path) {
        // The root (`./`) is written from the convention's record of it; a hostile name was refused when the image was merged.
        await discard(read.content());
        continue;
      }
      const member: LayerMember = { entry: memberEntry(read, path) };
      if (read.type === 'file' && kept.has(path)) {
        if ((keptBytes += read.size) > MAX_KEPT_BYTES) throw new LayerTooLarge(tooLarge);
        member.kept = (await spool.store(read.content())).open;
      } else if (read.type === 'file') member.sha256 = await sha256Of(read.content());
      else await discard(read.content());
      members.push(member);
    }
  });
  return members;
}

async function sha256Of(content: AsyncIterable<Buffer>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of content) hash.update(chunk);
  return hash.digest('hex');
}

const tooLarge = `more than ${MAX_KEPT_BYTES / 1024 ** 3} GiB of explained files to keep from the image`;

/** An explained file whose content the first pass did not spool: the layer is read again (rereadMembers). */
class NotSpooled extends Error {}

/** The rebuilt layer's members (see the module comment), from the original's members as read, in their order. */
function rebuiltMembers(members: readonly LayerMember[], input: LayerCheckInput, known: KnownPaths): { entries: ForeignTarEntry[]; sources: LayerSources; contents: LayerContents } {
  const { kept, nodes } = known;
  const attribution = new LayerAttribution(known, input.installed);
  const sources: LayerSources = { packages: 0, image: 0, replaced: 0, omitted: 0 };
  const entries: ForeignTarEntry[] = [];
  let keptBytes = 0;
  for (const member of members) {
    const entry: ForeignTarEntry = { ...member.entry };
    const { path, type, size } = entry;
    if (attribution.member(path, type) && size === 0) {
      // A whiteout (an empty file by the OCI spec) is kept as the layer has it: the merged view applies it, checked there.
      if (type === 'file') entry.open = () => Readable.from([]);
      sources.image++;
      entries.push(entry);
      continue;
    }
    const facts = input.installed.get(path);
    const explained = kept.has(path);
    const fromPackage = !explained && facts !== undefined && facts.type === type && type !== 'hardlink';
    if (fromPackage && (type === 'symlink' ? entry.linkTarget !== facts.linkTarget : entry.mode !== facts.mode || entry.uid !== facts.uid || entry.gid !== facts.gid)) {
      attribution.unexplainedMember(path, 'package'); // the package's metadata goes into the rebuild
    }
    if (type === 'file') {
      if (explained) {
        if ((keptBytes += size) > MAX_KEPT_BYTES) throw new LayerTooLarge(tooLarge);
        if (!member.kept) throw new NotSpooled();
        entry.open = member.kept;
        sources.image++;
      } else {
        const node = contentNode(nodes, path);
        if (!node?.open) {
          sources.omitted++;
          attribution.unexplainedMember(path, 'left-out');
          continue;
        }
        entry.open = node.open;
        entry.size = node.size;
        if (fromPackage && facts.sha256 === member.sha256) sources.packages++;
        else {
          sources.replaced++;
          attribution.unexplainedMember(path, 'package');
        }
      }
    } else if (type === 'hardlink') {
      // A hardlink's content is its target's member's.
    } else if (fromPackage) {
      if (type === 'symlink') entry.linkTarget = nodes.get(path)!.linkTarget!;
      sources.packages++;
    } else if (explained) {
      sources.image++;
    } else if (facts !== undefined) {
      sources.replaced++; // another type than the package's: kept, the diffID differs only if the bytes do
      attribution.unexplainedMember(path, 'package');
    } else {
      sources.omitted++;
      attribution.unexplainedMember(path, 'left-out');
      continue;
    }
    if (fromPackage && type !== 'symlink') Object.assign(entry, { mode: facts.mode, uid: facts.uid, gid: facts.gid });
    entries.push(entry);
  }
  return { entries, sources, contents: attribution.contents() };
}

class LayerTooLarge extends Error {}

/** What every layer's rebuild and attribution look paths up in. */
interface KnownPaths {
  /** Explained paths kept as the image has them. */
  kept: ReadonlySet<string>;
  nodes: ReadonlyMap<string, TreeNode>;
  /** pacman's database entry directory (`var/lib/pacman/local/NAME-VERSION`) → the package's name. */
  databaseEntries: ReadonlyMap<string, string>;
}

function knownPaths(input: LayerCheckInput): KnownPaths {
  const databaseEntries = new Map(input.tree.packages.map((p) => [`${LOCAL_DB_DIR}/${p.pkginfo.pkgname}-${p.pkginfo.pkgver}`, p.pkginfo.pkgname]));
  return { kept: keptFromImage(input.content, input.installed), nodes: new Map(input.tree.entries.map((n) => [n.path, n])), databaseEntries };
}

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/**
 * One layer's LayerContents, member by member: each member is a deletion, or counted for the package that
 * installs its path, unless the rebuild finds it unexplained (then listed instead). Judged on the layer's own
 * member, so an edit is charged to the layer that made it, not to the one whose copy it hides.
 */
class LayerAttribution {
  private readonly packages = new Map<string, number>();
  private readonly unexplained = new Map<string, 'package' | 'left-out'>();
  private readonly deleted = new Set<string>();
  private counted: { path: string; owner: string } | undefined;

  constructor(private readonly known: KnownPaths, private readonly installed: ReadonlyMap<string, InstalledFacts>) {}

  /** Every member, first; `true` for a whiteout (nothing more to attribute). */
  member(path: string, type: string): boolean {
    this.counted = undefined;
    const slash = path.lastIndexOf('/');
    const name = path.slice(slash + 1);
    if (name.startsWith(WHITEOUT)) {
      const dir = path.slice(0, slash + 1);
      this.deleted.add(name === OPAQUE ? `${dir}*` : `${dir}${name.slice(WHITEOUT.length)}`);
      return true;
    }
    if (type === 'dir') return false; // every layer that writes under a directory carries it
    const owner = this.installed.get(path)?.owner || this.databaseOwner(path);
    if (owner) {
      this.packages.set(owner, (this.packages.get(owner) ?? 0) + 1);
      this.counted = { path, owner };
    }
    return false;
  }

  /** The member just seen is unexplained: rebuilt from its package, or left out of the rebuild. */
  unexplainedMember(path: string, rebuilt: 'package' | 'left-out'): void {
    if (this.counted?.path === path) {
      const left = this.packages.get(this.counted.owner)! - 1;
      if (left) this.packages.set(this.counted.owner, left);
      else this.packages.delete(this.counted.owner);
      this.counted = undefined;
    }
    this.unexplained.set(path, rebuilt);
  }

  private databaseOwner(path: string): string | undefined {
    if (!path.startsWith(`${LOCAL_DB_DIR}/`)) return undefined;
    return this.known.databaseEntries.get(path.split('/').slice(0, 5).join('/'));
  }

  contents(): LayerContents {
    return {
      packages: [...this.packages].sort(([a], [b]) => byteOrder(a, b)).map(([name, members]) => ({ name, members })),
      unexplained: [...this.unexplained].sort(([a], [b]) => byteOrder(a, b)).map(([path, rebuilt]) => ({ path, rebuilt })),
      deleted: [...this.deleted].sort(byteOrder),
    };
  }
}

function describeSources(s: LayerSources): string {
  const parts = [`${s.packages.toLocaleString('en-US')} members from the packages`, `${s.image.toLocaleString('en-US')} explained kept as the image has them`];
  if (s.replaced) parts.push(`${s.replaced.toLocaleString('en-US')} unexplained given the package's content`);
  if (s.omitted) parts.push(`${s.omitted.toLocaleString('en-US')} unexplained left out`);
  return `${parts.join(', ')}; timestamps and owner names as the layer records them`;
}

export async function checkLayers(input: LayerCheckInput): Promise<LayerCheck[]> {
  const diffIds = layerDiffIds(input.manifest, input.config, `${input.label} manifest`);
  const known = knownPaths(input);
  const checks: LayerCheck[] = [];
  for (const [i, layer] of input.manifest.layers.entries()) {
    const check: LayerCheck = { layer: i + 1, digest: layer.digest, diffId: diffIds[i]!, verdict: 'not-checked' };
    checks.push(check);
    const scratch = await makeScratchDir('layer-check');
    const spool = new Spool(join(scratch.path, 'kept'));
    try {
      input.log(`rebuilding layer ${i + 1} (${layer.digest}) in its writer's conventions`);
      const pass = input.passes?.[i];
      const reread = async (): Promise<LayerMember[]> => rereadMembers(input, i, diffIds[i]!, spool, known.kept);
      let rebuilt: ReturnType<typeof rebuiltMembers>;
      try {
        rebuilt = rebuiltMembers(pass?.members ?? (await reread()), input, known);
      } catch (err) {
        if (!(err instanceof NotSpooled)) throw err;
        input.log(`reading layer ${i + 1} again for the files it keeps as the image has them`);
        rebuilt = rebuiltMembers(await reread(), input, known);
      }
      const { entries, sources, contents } = rebuilt;
      check.contents = contents;
      const detected = pass?.detected;
      if (detected && 'error' in detected) throw detected.error;
      const blob = { digest: layer.digest, size: layer.size, mediaType: layer.mediaType, open: async function* () { yield* await input.source.openBlob(layer); } };
      const reproduction = await reproduceLayer(entries, blob, diffIds[i]!, { what: `${input.label} layer ${i + 1}`, ...(detected ? { detected } : {}) });
      const verdict = reproduction.diffID.verdict;
      Object.assign(check, {
        verdict: verdict === 'unknown writer' ? 'unknown-writer' : verdict,
        detail: `${reproduction.convention.summary}; ${describeSources(sources)}`,
        sources,
        reproduction,
      });
    } catch (err) {
      if (!(err instanceof LayerTooLarge)) throw err;
      check.detail = err.message;
    } finally {
      spool.close();
      await scratch.cleanup();
    }
  }
  return checks;
}
