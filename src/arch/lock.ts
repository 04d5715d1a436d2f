import { readFile } from 'node:fs/promises';
import { UserError } from '../errors.js';
import { canonicalJsonPretty } from '../oci/canonical-json.js';
import { sha256, type Digest } from '../oci/digest.js';
import { fetchBytes } from '../fetch/download.js';
import { readSyncDb } from './syncdb.js';
import { repoPackage, resolve, type Repository } from './resolve.js';
import { archivePackageUrl, repositorySources, resolveLocation, specArchitecture, type LoadedSpec } from './spec.js';
import { resolve as resolvePath } from 'node:path';
import { Readable } from 'node:stream';
import { keyringIdentity, loadKeyringFromDirectory, type Keyring, type KeyringIdentity } from './keyring.js';
import { parseSigLevel } from './siglevel.js';
import { byteOrder } from '../util/order.js';

/**
 * The lock: everything a build needs to fetch and verify, and nothing that changes afterwards. Written as
 * canonical JSON (sorted keys, fixed indentation), so the same inputs give the same bytes on any machine.
 */
export const LOCK_VERSION = 1;

export interface LockedPackage {
  name: string;
  version: string;
  arch: string;
  repository: string;
  filename: string;
  /** Where to fetch it, in order of preference (repository servers, then the archive's stable location). */
  urls: string[];
  sha256: string;
  csize: number;
  isize: number;
  /** BUILDDATE from the repository database (seconds). */
  builddate: number;
  /** Base64 OpenPGP signature from the repository database, when it carries one. */
  signature?: string;
  reason: 'explicit' | 'dependency';
}

export interface LockedRepository {
  name: string;
  servers: string[];
  /** Digest of the database the resolution was made from. */
  database: Digest;
}

export interface Lock {
  lockVersion: number;
  specDigest: Digest;
  architecture: string;
  archive?: { url: string; date: string };
  repositories: LockedRepository[];
  targets: string[];
  /** pacman SigLevel for packages, as the spec gave it (default Required). */
  sigLevel: string;
  /** The keyring packages must verify against, pinned by its keys' digest and fingerprints. */
  keyring?: KeyringIdentity & { name: string };
  /** In install order. */
  packages: LockedPackage[];
}

/** Sync databases are small next to packages; anything beyond this is refused as hostile. */
const MAX_DB_BYTES = 256 * 1024 * 1024;

export async function loadRepositories(sources: { name: string; servers: string[] }[], baseDir: string, log: (msg: string) => void): Promise<{ repos: Repository[]; locked: LockedRepository[] }> {
  const repos: Repository[] = [];
  const locked: LockedRepository[] = [];
  for (const source of sources) {
    let bytes: Buffer | undefined;
    const failures: string[] = [];
    for (const server of source.servers) {
      try {
        bytes = await fetchBytes(resolveLocation(`${server}/${source.name}.db`, baseDir), `repository ${source.name} database`, MAX_DB_BYTES);
        break;
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
    if (!bytes) throw new UserError(failures.join('; '));
    const db = await readSyncDb(Readable.from([bytes]), `repository ${source.name} database`);
    db.warnings.forEach((w) => log(`warning: ${w}`));
    repos.push({ name: source.name, packages: db.packages.map((p) => repoPackage(source.name, p.desc)) });
    locked.push({ name: source.name, servers: source.servers, database: sha256(bytes) });
  }
  return { repos, locked };
}

export interface LockOptions {
  /** Resolve against another archive snapshot than the spec names (lock --update). */
  archiveDate?: string;
  log?: (msg: string) => void;
}

export const DEFAULT_SIGLEVEL = 'Required';

/** The keyring a spec names, resolved against the spec's directory. */
export async function specKeyring(loaded: LoadedSpec): Promise<{ name: string; keyring: Keyring } | undefined> {
  const k = loaded.spec.keyring;
  if (!k) return undefined;
  const name = k.name ?? 'archlinux';
  return { name, keyring: await loadKeyringFromDirectory(resolvePath(loaded.baseDir, k.dir), name) };
}

export async function createLock(loaded: LoadedSpec, options: LockOptions = {}): Promise<Lock> {
  const { spec } = loaded;
  const log = options.log ?? (() => {});
  parseSigLevel(spec.sigLevel ?? DEFAULT_SIGLEVEL, 'sigLevel');
  const keyring = await specKeyring(loaded);
  const sources = repositorySources(spec, options.archiveDate);
  const { repos, locked } = await loadRepositories(sources, loaded.baseDir, log);
  const resolution = resolve(repos, spec.packages);
  resolution.warnings.forEach((w) => log(`warning: ${w}`));
  const archive = spec.archive && { url: spec.archive.url, date: options.archiveDate ?? spec.archive.date };
  const packages: LockedPackage[] = resolution.packages.map(({ pkg, reason }) => {
    const d = pkg.desc;
    if (!d.sha256sum || !/^[0-9a-f]{64}$/.test(d.sha256sum)) throw new UserError(`repository ${pkg.repo}: package ${d.name} has no SHA256SUM; it cannot be locked`);
    const servers = locked.find((r) => r.name === pkg.repo)!.servers;
    // A relative server is a path: the file name goes in as it is; in a URL it is percent-encoded.
    const urls = servers.map((s) => (/^[a-z][a-z0-9+.-]*:/i.test(s) ? `${s}/${encodeURIComponent(d.filename)}` : `${s}/${d.filename}`));
    if (archive) urls.push(archivePackageUrl(archive.url, d.name, d.filename));
    return {
      name: d.name,
      version: d.version,
      arch: d.arch ?? 'any',
      repository: pkg.repo,
      filename: d.filename,
      urls: [...new Set(urls)],
      sha256: d.sha256sum,
      csize: d.csize ?? 0,
      builddate: d.builddate ?? 0,
      isize: d.isize ?? 0,
      ...(d.pgpsig ? { signature: d.pgpsig } : {}),
      reason,
    };
  });
  return {
    lockVersion: LOCK_VERSION,
    specDigest: loaded.digest,
    architecture: specArchitecture(spec),
    ...(archive ? { archive } : {}),
    repositories: locked,
    targets: spec.packages,
    sigLevel: spec.sigLevel ?? DEFAULT_SIGLEVEL,
    ...(keyring ? { keyring: { name: keyring.name, ...keyringIdentity(keyring.keyring) } } : {}),
    packages,
  };
}

export function serializeLock(lock: Lock): string {
  return canonicalJsonPretty(lock);
}

export async function readLock(path: string): Promise<Lock> {
  const text = await readFile(path, 'utf8').catch(() => {
    throw new UserError(`lock ${path}: cannot be read`);
  });
  let lock: Lock;
  try {
    lock = JSON.parse(text) as Lock;
  } catch {
    throw new UserError(`lock ${path}: not valid JSON`);
  }
  if (lock?.lockVersion !== LOCK_VERSION) throw new UserError(`lock ${path}: unsupported lockVersion ${JSON.stringify(lock?.lockVersion)} (this repro-oci reads ${LOCK_VERSION})`);
  if (!Array.isArray(lock.packages) || lock.packages.some((p) => typeof p?.name !== 'string' || !/^[0-9a-f]{64}$/.test(p?.sha256 ?? '') || !Array.isArray(p.urls))) {
    throw new UserError(`lock ${path}: malformed packages list`);
  }
  return lock;
}

/** What moved between two locks, for `lock --update`: added, removed, and `name old → new`. */
export function diffLocks(before: Lock, after: Lock): string[] {
  const old = new Map(before.packages.map((p) => [p.name, p]));
  const now = new Map(after.packages.map((p) => [p.name, p]));
  const lines: string[] = [];
  const names = [...new Set([...old.keys(), ...now.keys()])].sort(byteOrder);
  for (const name of names) {
    const a = old.get(name);
    const b = now.get(name);
    if (!a) lines.push(`+ ${name} ${b!.version}`);
    else if (!b) lines.push(`- ${name} ${a.version}`);
    else if (a.version !== b.version) lines.push(`  ${name} ${a.version} → ${b.version}`);
    else if (a.sha256 !== b.sha256) lines.push(`  ${name} ${a.version} (rebuilt: new sha256)`);
  }
  return lines;
}
