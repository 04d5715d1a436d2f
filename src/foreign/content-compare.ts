import type { EntryType } from '../tar/entry.js';
import { LOCAL_DB_DIR } from '../install/local-db.js';
import { byteOrder } from '../util/order.js';
import { generatedRule, isEditedOsRelease, OS_RELEASE_TARGETS, REGENERATORS, type GeneratedRule, type Regenerator } from './generated.js';

/**
 * The content level of checking a foreign image, as pure code: every path of the image's merged filesystem against
 * what repro-oci's installer makes of the same packages. Each path lands in exactly one category — equal; differs
 * (a %BACKUP% file edited is named as such, as `pacman -Qkk` does); generated (a well-known file the build made
 * after pacman, checked as generated.ts says); not from any package — and each path the packages install that the
 * image lacks is in a missing group, with the NoExtract-style glob that covers it.
 */

/** What is compared of one path; hardlinks are resolved to the file they share. */
export interface PathFacts {
  type: EntryType;
  /** Permission bits including setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  sha256?: string;
  linkTarget?: string;
  devMajor?: number;
  devMinor?: number;
  /** xattr name → hex value. */
  xattrs?: Record<string, string>;
}

export interface InstalledFacts extends PathFacts {
  /** The package that installed it; '' for directories and database files the installer made. */
  owner: string;
}

/** What a regenerator made in the sandbox, or why it could not run. */
export type Regeneration = { ok: true; files: Map<string, PathFacts> } | { ok: false; reason: string };

export interface ContentInputs {
  image: Map<string, PathFacts>;
  installed: Map<string, InstalledFacts>;
  /** The %BACKUP% paths of every package. */
  backup: Set<string>;
  /** Contents kept for the checks that read them: the image's (pacman database files, etc/os-release)… */
  imageContent: Map<string, Buffer>;
  /** …and the installed tree's (database desc files, usr/lib/os-release). */
  installedContent: Map<string, Buffer>;
  packages: number;
}

export interface FieldDifference {
  field: 'type' | 'mode' | 'uid' | 'gid' | 'size' | 'sha256' | 'link' | 'device' | 'xattrs' | 'desc';
  image: string | number | null;
  installed: string | number | null;
}

export interface DifferingPath {
  path: string;
  package: string;
  fields: FieldDifference[];
  /** A %BACKUP% file whose content was edited (as `pacman -Qkk` names it): not counted as unexplained. */
  backup: boolean;
  /** The image's copy has a setuid or setgid bit the package's has not. */
  setidAdded: boolean;
  note?: string;
}

export interface MissingGroup {
  /** The smallest NoExtract-style pattern covering the group (`*` crosses `/`). */
  glob: string;
  /** Paths directly under the glob's directory that the image does keep. */
  except: string[];
  paths: number;
  bytes: number;
  packages: string[];
}

export interface UnownedPath {
  path: string;
  type: EntryType;
  mode: number;
  size: number;
  setid: boolean;
}

export interface GeneratedPath {
  path: string;
  by: string;
  /**
   * identical: as generated.ts expects or as its regeneration made it; differs: not so; not-regenerated: no rerun can
   * give the same bytes (reason says why) — explained; unverified: a regeneration that could check it did not run
   * (reason) — counted as unexplained, as nothing shows where it came from.
   */
  status: 'identical' | 'differs' | 'not-regenerated' | 'unverified';
  reason?: string;
  /** The package whose file it replaces, when a package installs the same path. */
  package?: string;
}

export interface ContentReport {
  verdict: 'identical' | 'differs';
  packages: number;
  /** Paths (of every type) equal to what the packages install. */
  equal: number;
  /** Paths explained as generated (identical, or not regenerable by design). */
  generated: number;
  /** differs (not %BACKUP%) + generated that differ from (or could not be checked by) their regeneration + not from any package. */
  unexplained: number;
  differs: DifferingPath[];
  generatedPaths: GeneratedPath[];
  notFromPackage: UnownedPath[];
  missing: MissingGroup[];
  /** pacman's local database entries compared (their desc but for %INSTALLDATE% and %VALIDATION%). */
  databaseEntries: number;
}

const SETID = 0o6000;
const DB_PREFIX = `${LOCAL_DB_DIR}/`;

const octal = (mode: number): string => mode.toString(8).padStart(4, '0');

function fieldDifferences(image: PathFacts, installed: PathFacts): FieldDifference[] {
  const out: FieldDifference[] = [];
  const add = (field: FieldDifference['field'], a: string | number | undefined, b: string | number | undefined): void => {
    if (a !== b) out.push({ field, image: a ?? null, installed: b ?? null });
  };
  add('type', image.type, installed.type);
  add('mode', octal(image.mode), octal(installed.mode));
  add('uid', image.uid, installed.uid);
  add('gid', image.gid, installed.gid);
  if (image.type === installed.type) {
    add('size', image.size, installed.size);
    add('sha256', image.sha256, installed.sha256);
    add('link', image.linkTarget, installed.linkTarget);
    const device = (f: PathFacts): string | undefined => (f.devMajor === undefined && f.devMinor === undefined ? undefined : `${f.devMajor ?? 0},${f.devMinor ?? 0}`);
    add('device', device(image), device(installed));
  }
  const xattrs = (f: PathFacts): string | undefined => (f.xattrs && Object.keys(f.xattrs).length ? JSON.stringify(Object.fromEntries(Object.entries(f.xattrs).sort(([a], [b]) => byteOrder(a, b)))) : undefined);
  add('xattrs', xattrs(image), xattrs(installed));
  return out;
}

/** A desc without the two fields the installer decides itself: the install time and how the package was validated. */
function descWithoutInstallFields(desc: Buffer): string {
  return desc.toString('latin1').replace(/%(INSTALLDATE|VALIDATION)%\n(?:[^\n]+\n)*\n/g, '');
}

/** The regenerators the image's paths call for (generated.ts), in their run order. */
export function neededRegenerators(inputs: ContentInputs): Regenerator[] {
  const ids = new Set<string>();
  for (const [path, facts] of inputs.image) {
    const installed = inputs.installed.get(path);
    if (installed && fieldDifferences(facts, installed).length === 0) continue;
    const rule = generatedRule(path);
    if (rule?.check.kind === 'regenerate') ids.add(rule.check.regenerator);
  }
  return REGENERATORS.filter((r) => ids.has(r.id));
}

/** How a path a rule explains compares: identical, differs (why), or not regenerated (why). */
function checkGenerated(path: string, rule: GeneratedRule, image: PathFacts, inputs: ContentInputs, regenerated: ReadonlyMap<string, Regeneration>): { status: GeneratedPath['status']; reason?: string } {
  const check = rule.check;
  switch (check.kind) {
    case 'none':
      return { status: 'not-regenerated', reason: check.reason };
    case 'overlay-file': {
      const ok = image.type === 'file' && image.mode === 0o644 && image.uid === 0 && image.gid === 0 && image.size === Buffer.byteLength(check.content) && inputs.imageContent.get(path)?.toString('utf8') === check.content;
      return ok ? { status: 'identical' } : { status: 'differs', reason: `not the overlay's file (${JSON.stringify(check.content)}, 0644, root)` };
    }
    case 'os-release': {
      if (image.type === 'symlink') return OS_RELEASE_TARGETS.includes(image.linkTarget ?? '') ? { status: 'identical' } : { status: 'differs', reason: `a link to ${JSON.stringify(image.linkTarget)}, not to /usr/lib/os-release` };
      const own = inputs.imageContent.get(path);
      const pkg = inputs.installedContent.get('usr/lib/os-release');
      if (image.type === 'file' && own && pkg && isEditedOsRelease(own, pkg)) return { status: 'identical', reason: 'usr/lib/os-release with IMAGE_ID/IMAGE_VERSION set' };
      return { status: 'differs', reason: 'neither a link to /usr/lib/os-release nor a copy of it with only IMAGE_ID/IMAGE_VERSION set' };
    }
    case 'regenerate': {
      const result = regenerated.get(check.regenerator);
      if (!result) return { status: 'unverified', reason: `${check.regenerator} was not run` };
      if (!result.ok) return { status: 'unverified', reason: result.reason };
      const made = result.files.get(path);
      if (!made) return { status: 'differs', reason: `${check.regenerator} does not make it from the image's packages` };
      const fields = fieldDifferences(image, made);
      return fields.length === 0 ? { status: 'identical' } : { status: 'differs', reason: `not what ${check.regenerator} makes from the image's packages: ${fields.map(describeField).join(', ')}` };
    }
  }
}

export function describeField(f: FieldDifference): string {
  if (f.field === 'sha256') return 'content';
  if (f.field === 'desc') return 'desc (beyond %INSTALLDATE%/%VALIDATION%)';
  return `${f.field} ${f.image ?? 'none'} in the image, ${f.installed ?? 'none'} from the package`;
}

export function compareContent(inputs: ContentInputs, regenerated: ReadonlyMap<string, Regeneration> = new Map()): ContentReport {
  const differs: DifferingPath[] = [];
  const generatedPaths: GeneratedPath[] = [];
  const notFromPackage: UnownedPath[] = [];
  let equal = 0;
  let databaseEntries = 0;
  for (const path of [...inputs.image.keys()].sort(byteOrder)) {
    const image = inputs.image.get(path)!;
    const installed = inputs.installed.get(path);
    let fields = installed ? fieldDifferences(image, installed) : [];
    if (installed && path.startsWith(DB_PREFIX) && path.endsWith('/desc')) {
      databaseEntries++;
      // The desc is compared as text without the installer's own fields; everything else of it must be equal.
      const a = inputs.imageContent.get(path);
      const b = inputs.installedContent.get(path);
      const same = a !== undefined && b !== undefined && descWithoutInstallFields(a) === descWithoutInstallFields(b);
      fields = fields.filter((f) => f.field !== 'sha256' && f.field !== 'size');
      if (!same) fields.push({ field: 'desc', image: null, installed: null });
    }
    if (installed && fields.length === 0) {
      equal++;
      continue;
    }
    const rule = generatedRule(path);
    const setidAdded = (image.mode & SETID & ~(installed?.mode ?? 0)) !== 0 && image.type !== 'dir';
    if (rule && !setidAdded) {
      const { status, reason } = checkGenerated(path, rule, image, inputs, regenerated);
      const isBackup = installed !== undefined && inputs.backup.has(path);
      if ((status !== 'differs' && status !== 'unverified') || !isBackup) {
        generatedPaths.push({ path, by: rule.by, status, ...(reason ? { reason } : {}), ...(installed?.owner ? { package: installed.owner } : {}) });
        continue;
      }
    }
    if (!installed) {
      notFromPackage.push({ path, type: image.type, mode: image.mode, size: image.size, setid: (image.mode & SETID) !== 0 && image.type !== 'dir' });
      continue;
    }
    const contentOnly = fields.every((f) => f.field === 'sha256' || f.field === 'size');
    const backup = contentOnly && inputs.backup.has(path);
    const note = backup && rule ? `not what ${rule.by} makes either` : undefined;
    differs.push({ path, package: installed.owner, fields, backup, setidAdded, ...(note ? { note } : {}) });
  }
  const missing = missingGroups(inputs);
  const generated = generatedPaths.filter((g) => g.status === 'identical' || g.status === 'not-regenerated').length;
  const unexplained = differs.filter((d) => !d.backup).length + generatedPaths.filter((g) => g.status === 'differs' || g.status === 'unverified').length + notFromPackage.length;
  return { verdict: unexplained === 0 ? 'identical' : 'differs', packages: inputs.packages, equal, generated, unexplained, differs, generatedPaths, notFromPackage, missing, databaseEntries };
}

function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash === -1 ? '' : path.slice(0, slash);
}

/** A path as a literal fnmatch pattern. */
function globLiteral(path: string): string {
  return path.replace(/[*?[\\]/g, (c) => `\\${c}`);
}

/**
 * The installed paths the image lacks, grouped: the wholly missing subtrees under one directory the image has are
 * one `dir/*` when they are all its children, or many of them beside a few the image keeps (the exceptions, as
 * NoExtract's `!` lines); otherwise each subtree is its own group (`sub/*`, or the file's own path).
 */
export function missingGroups(inputs: ContentInputs): MissingGroup[] {
  const children = new Map<string, string[]>();
  for (const path of inputs.installed.keys()) {
    const parent = parentOf(path);
    const list = children.get(parent);
    if (list) list.push(path);
    else children.set(parent, [path]);
  }
  const wholly = new Map<string, boolean>();
  const whollyMissing = (path: string): boolean => {
    let known = wholly.get(path);
    if (known === undefined) {
      known = !inputs.image.has(path) && (children.get(path) ?? []).every(whollyMissing);
      wholly.set(path, known);
    }
    return known;
  };
  const subtree = (path: string): string[] => [path, ...(children.get(path) ?? []).flatMap(subtree)];
  // Group roots: wholly missing, under a parent that is not (the root directory '' always counts as present).
  const rootsByParent = new Map<string, string[]>();
  for (const path of inputs.installed.keys()) {
    if (!whollyMissing(path)) continue;
    const parent = parentOf(path);
    if (parent !== '' && whollyMissing(parent)) continue;
    const list = rootsByParent.get(parent);
    if (list) list.push(path);
    else rootsByParent.set(parent, [path]);
  }
  const group = (glob: string, members: string[], except: string[]): MissingGroup => {
    const all = members.flatMap(subtree);
    const facts = all.map((p) => inputs.installed.get(p)!);
    return {
      glob,
      except: except.sort(byteOrder),
      paths: all.length,
      bytes: facts.reduce((sum, f) => sum + (f.type === 'file' ? f.size : 0), 0),
      packages: [...new Set(facts.map((f) => f.owner).filter((o) => o !== ''))].sort(byteOrder),
    };
  };
  const groups: MissingGroup[] = [];
  for (const [parent, roots] of rootsByParent) {
    const rootSet = new Set(roots);
    const kept = (children.get(parent) ?? []).filter((c) => !rootSet.has(c));
    // One `parent/*` when it covers the roots alone, or with a few exceptions (NoExtract's `!` lines) for many roots.
    if (parent !== '' && (kept.length === 0 || roots.length > 2 * (kept.length + 1))) {
      groups.push(group(`${globLiteral(parent)}/*`, roots, kept.map(globLiteral)));
      continue;
    }
    for (const root of roots) {
      const isDir = (children.get(root) ?? []).length > 0;
      groups.push(group(isDir ? `${globLiteral(root)}/*` : globLiteral(root), [root], []));
    }
  }
  return groups.sort((a, b) => byteOrder(a.glob, b.glob));
}
