import { UserError } from '../errors.js';
import { canonicalJsonPretty } from '../oci/canonical-json.js';
import { sha256, type Digest } from '../oci/digest.js';
import { fetchBytes } from '../fetch/download.js';
import { NotFoundError } from '../errors.js';
import { readSyncDb } from '../pacman/syncdb.js';
import { repoPackage, resolve, type Repository } from './resolve.js';
import { archivePackageUrl, loadSpec, locationOfFile, repositorySources, resolveLocation, specArchitecture, type LoadedSpec } from './spec.js';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { keyringIdentity, loadKeyringFromDirectory, type Keyring, type KeyringIdentity } from '../pacman/keyring.js';
import { parseSigLevel, parseSigLevelSetting, repositorySigLevel } from '../pacman/siglevel.js';
import { checkPackageSignature, DEFAULT_KEY_EXPIRY, parseKeyExpiry, signaturePolicy, type KeyExpiry, type SignaturePolicy } from '../pacman/signature.js';
import { byteOrder } from '../util/order.js';
import { exists, readUserFile, writeFileAtomic } from '../util/fs.js';
import { parseJsonText } from '../util/json-text.js';
import { schemaChecker } from '../util/yaml-schema.js';
import { checkWritableFile } from '../util/writable.js';
import { checkImageSettings } from '../image/image-settings.js';
import { checkPackageFilename, checkPackageName, checkPackageVersion } from '../pacman/names.js';

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
  /** The repository's own SigLevel as the spec gave it, over the lock's `sigLevel` (pacman.conf's `[repo]` SigLevel). */
  sigLevel?: string;
  /** Digest of the database the resolution was made from. */
  database: Digest;
}

/**
 * The one repository of a lock made from an image (`lock --from-image`): pacman's local database records no
 * repository, and the packages come from the archive's `packages/` tree, which has none either.
 */
export const IMAGE_REPOSITORY = 'archive';

/** A repository the lock cannot name: the image lock's, which has no servers (a spec's repository always has some). */
export function isUnknownRepository(repository: LockedRepository): boolean {
  return repository.name === IMAGE_REPOSITORY && repository.servers.length === 0;
}

export interface Lock {
  lockVersion: number;
  specDigest: Digest;
  architecture: string;
  archive?: { url: string; date: string };
  repositories: LockedRepository[];
  targets: string[];
  /** pacman SigLevel as the spec gave it (default `Required DatabaseOptional`): its package side applies to builds, its database side was checked at lock time. */
  sigLevel: string;
  /** The keyring packages must verify against, pinned by its keys' digest and fingerprints. */
  keyring?: KeyringIdentity & { name: string };
  /** In install order. */
  packages: LockedPackage[];
}

/** Sync databases are small next to packages; anything beyond this is refused as hostile. */
const MAX_DB_BYTES = 256 * 1024 * 1024;
/** A detached signature is a few hundred bytes. */
const MAX_DB_SIG_BYTES = 64 * 1024;

/** How one repository's database is checked at lock time: the database side of its SigLevel, and the keyring it needs. */
export interface DatabaseSignatures {
  policy: SignaturePolicy;
  /** Present whenever the policy is not never. */
  keyring?: Keyring;
  /** Default at-signature. */
  keyExpiry?: KeyExpiry;
}

/**
 * The database side of a repository's SigLevel: the spec's `sigLevel` with the repository's own (`own`) over it. A
 * check other than Never needs the spec's keyring, even when it is Optional: this is judged before anything is
 * fetched, so that whether a spec can be locked does not depend on what a server holds.
 */
export function databaseSignatures(sigLevel: string, own: { name: string; sigLevel?: string } | undefined, keyring: Keyring | undefined): DatabaseSignatures {
  const policy = signaturePolicy(repositorySigLevel(sigLevel, own?.sigLevel).database);
  if (policy.level !== 'never' && !keyring) {
    const named = own?.sigLevel === undefined ? `sigLevel ${JSON.stringify(sigLevel)}` : `repository ${own.name} sigLevel ${JSON.stringify(own.sigLevel)}`;
    throw new UserError(`${named} checks repository database signatures (${policy.level}): give a keyring (keyring.dir in the spec), or add DatabaseNever`);
  }
  return keyring ? { policy, keyring } : { policy };
}

/**
 * pacman's check of a sync database against `<db>.sig` from the server the database came from. Never does not
 * look for a signature; Optional accepts a database whose signature does not exist (HTTP 404, no such file) but
 * not one whose signature fails; Required demands one. Any other failure to fetch the signature (a server error
 * after the retries) fails: a signature that could not be read is not an absent one.
 */
async function checkDatabaseSignature(name: string, dbUrl: string, bytes: Buffer, signatures: DatabaseSignatures): Promise<void> {
  if (signatures.policy.level === 'never') return;
  const what = `repository ${name} database`;
  let signature: Buffer | undefined;
  try {
    signature = await fetchBytes(`${dbUrl}.sig`, `${what} signature`, MAX_DB_SIG_BYTES);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
  await checkPackageSignature(signatures.policy, signature, { data: bytes, keyring: signatures.keyring as Keyring, what, keyExpiry: signatures.keyExpiry ?? DEFAULT_KEY_EXPIRY });
}

/**
 * Fetches each repository's database from the first server that has it, checks its signature as its
 * `signatures` say (before reading it), and parses it.
 */
export async function loadRepositories(
  sources: { name: string; servers: string[]; sigLevel?: string; signatures: DatabaseSignatures }[],
  baseDir: string,
  log: (msg: string) => void,
): Promise<{ repos: Repository[]; locked: LockedRepository[] }> {
  const repos: Repository[] = [];
  const locked: LockedRepository[] = [];
  for (const source of sources) {
    let fetched: { url: string; bytes: Buffer } | undefined;
    const failures: string[] = [];
    for (const server of source.servers) {
      const url = resolveLocation(`${server}/${source.name}.db`, baseDir);
      try {
        fetched = { url, bytes: await fetchBytes(url, `repository ${source.name} database`, MAX_DB_BYTES) };
        break;
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
    if (!fetched) throw new UserError(failures.join('; '));
    const { bytes } = fetched;
    await checkDatabaseSignature(source.name, fetched.url, bytes, source.signatures);
    const db = await readSyncDb(Readable.from([bytes]), `repository ${source.name} database`);
    db.warnings.forEach((w) => log(`warning: ${w}`));
    repos.push({ name: source.name, packages: db.packages.map((p) => repoPackage(source.name, p.desc)) });
    locked.push({ name: source.name, servers: source.servers, ...(source.sigLevel !== undefined ? { sigLevel: source.sigLevel } : {}), database: sha256(bytes) });
  }
  return { repos, locked };
}

export interface LockOptions {
  /** Resolve against another archive snapshot than the spec names (lock --update). */
  archiveDate?: string;
  /** When database signing keys' expiry is judged (default at-signature). */
  keyExpiry?: KeyExpiry;
  log?: (msg: string) => void;
}

/**
 * What Arch Linux's pacman.conf sets: packages must be signed; databases may be (Arch does not sign its
 * databases, so plain `Required` — which covers databases too — would refuse every Arch repository).
 */
export const DEFAULT_SIGLEVEL = 'Required DatabaseOptional';

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
  const sigLevel = spec.sigLevel ?? DEFAULT_SIGLEVEL;
  parseSigLevel(sigLevel, 'sigLevel');
  const keyring = await specKeyring(loaded);
  const keyExpiry = parseKeyExpiry(options.keyExpiry ?? DEFAULT_KEY_EXPIRY, 'keyExpiry');
  const sources = repositorySources(spec, options.archiveDate).map((source) => ({ ...source, signatures: { ...databaseSignatures(sigLevel, source, keyring?.keyring), keyExpiry } }));
  const { repos, locked } = await loadRepositories(sources, loaded.baseDir, log);
  const resolution = resolve(repos, spec.packages);
  resolution.warnings.forEach((w) => log(`warning: ${w}`));
  const archive = spec.archive && { url: spec.archive.url, date: options.archiveDate ?? spec.archive.date };
  const packages: LockedPackage[] = resolution.packages.map(({ pkg, reason }) => {
    const d = pkg.desc;
    if (!d.sha256sum || !/^[0-9a-f]{64}$/.test(d.sha256sum)) throw new UserError(`repository ${pkg.repo}: package ${d.name} has no SHA256SUM; it cannot be locked`);
    const servers = locked.find((r) => r.name === pkg.repo)!.servers;
    const urls = servers.map((s) => locationOfFile(s, d.filename));
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
    sigLevel,
    ...(keyring ? { keyring: { name: keyring.name, ...keyringIdentity(keyring.keyring) } } : {}),
    packages,
  };
}

export function serializeLock(lock: Lock): string {
  return canonicalJsonPretty(lock);
}

export async function readLock(path: string): Promise<Lock> {
  return parseLock(await readUserFile(path, 'lock'), `lock ${path}`);
}

/**
 * Where the lock at `path` stands for a spec, without resolving anything: missing, made for another package
 * selection (its specDigest is not the spec's resolution digest; image settings do not count), or current.
 */
export type LockState = { state: 'missing' } | { state: 'stale'; lock: Lock } | { state: 'current'; lock: Lock };

export async function lockState(loaded: LoadedSpec, path: string): Promise<LockState> {
  if (!(await exists(path))) return { state: 'missing' };
  const lock = await readLock(path);
  return lock.specDigest === loaded.digest ? { state: 'current', lock } : { state: 'stale', lock };
}

/** The message for a lock that does not match its spec (shared by build, build --frozen and lock --check). */
export function staleLockMessage(path: string): string {
  return `lock ${path} was made for a different package selection; run repro-oci lock again`;
}

/**
 * The lock at `path`, which must exist and match the spec: never resolved, never written (build --frozen, or an
 * explicit --lock). `option` names what demanded it, for the message.
 */
export async function existingLock(loaded: LoadedSpec, path: string, option: string): Promise<Lock> {
  const found = await lockState(loaded, path);
  if (found.state === 'missing') throw new UserError(`${option}: no lock at ${path} (make it with repro-oci lock SPEC -o ${path})`);
  if (found.state === 'stale') throw new UserError(staleLockMessage(path));
  return found.lock;
}

/** Whether two locks are the same document (what lock --update's exit status reports). */
export function sameLock(a: Lock, b: Lock): boolean {
  return serializeLock(a) === serializeLock(b);
}

const checkLockSchema = schemaChecker<Lock>('lock.schema.json');

/**
 * A lock from outside (a file, or the recipe inside an image): JSON, then lock.schema.json (types, integer ranges,
 * name, version and file name patterns), then what a schema cannot say. Every failure is one line naming the key.
 */
export function parseLock(text: string, what: string): Lock {
  const value = parseJsonText(text, what);
  const version = (value as { lockVersion?: unknown } | null)?.lockVersion;
  if (version !== LOCK_VERSION) throw new UserError(`${what}: unsupported lockVersion ${JSON.stringify(version) ?? 'undefined'} (this repro-oci reads ${LOCK_VERSION})`);
  return checkLock(value, what);
}

/** Checks a parsed lock (see parseLock). */
export function checkLock(value: unknown, what: string): Lock {
  const lock = checkLockSchema(value, what);
  const seen = new Set<string>();
  lock.packages.forEach((p, i) => {
    const at = `${what}: /packages/${i}`;
    checkPackageName(p.name, at);
    checkPackageVersion(p.version, at);
    checkPackageFilename(p.filename, at);
    if (seen.has(p.name)) throw new UserError(`${at}: package ${p.name} is listed twice`);
    seen.add(p.name);
  });
  lock.packages.forEach((p, i) => p.urls.forEach((u, j) => checkLocation(u, `${what}: /packages/${i}/urls/${j}`)));
  lock.repositories.forEach((r, i) => r.servers.forEach((s, j) => checkLocation(s, `${what}: /repositories/${i}/servers/${j}`)));
  if (lock.archive) checkLocation(lock.archive.url, `${what}: /archive/url`);
  parseSigLevel(lock.sigLevel, `${what}: sigLevel`);
  const repositories = new Set(lock.repositories.map((r) => r.name));
  lock.repositories.forEach((r, i) => {
    if (r.sigLevel !== undefined) parseSigLevelSetting(r.sigLevel, `${what}: /repositories/${i}/sigLevel`);
  });
  // Each package is checked with its repository's SigLevel: one from no listed repository has none to go by.
  lock.packages.forEach((p, i) => {
    if (!repositories.has(p.repository)) throw new UserError(`${what}: /packages/${i}: repository ${p.repository} is not among the lock's repositories`);
  });
  return lock;
}

/** A location as a lock holds it: a path relative to the lock, or a URL that parses (a file: URL local and decodable). */
function checkLocation(location: string, what: string): void {
  if (!/^[a-z][a-z0-9+.-]*:/i.test(location)) return;
  try {
    const url = new URL(location);
    if (url.protocol === 'file:') fileURLToPath(url);
  } catch {
    throw new UserError(`${what}: ${JSON.stringify(location)} is not a URL that can be fetched`);
  }
}

/** One package that moved between two locks: `before`/`after` are its versions (`rebuilt`: same version, new sha256). */
export interface LockChange {
  kind: 'added' | 'removed' | 'changed' | 'rebuilt';
  name: string;
  before?: string;
  after?: string;
}

/** What moved between two locks, for `lock --update`, by package name (byte order). */
export function lockChanges(before: Lock, after: Lock): LockChange[] {
  const old = new Map(before.packages.map((p) => [p.name, p]));
  const now = new Map(after.packages.map((p) => [p.name, p]));
  const changes: LockChange[] = [];
  for (const name of [...new Set([...old.keys(), ...now.keys()])].sort(byteOrder)) {
    const a = old.get(name);
    const b = now.get(name);
    if (!a) changes.push({ kind: 'added', name, after: b!.version });
    else if (!b) changes.push({ kind: 'removed', name, before: a.version });
    else if (a.version !== b.version) changes.push({ kind: 'changed', name, before: a.version, after: b.version });
    else if (a.sha256 !== b.sha256) changes.push({ kind: 'rebuilt', name, before: a.version, after: b.version });
  }
  return changes;
}

/** lockChanges as the lines `lock --update` prints: `+ name 1.0-1`, `- name 1.0-1`, `  name 1.0-1 → 1.1-1`. */
export function diffLocks(before: Lock, after: Lock): string[] {
  return lockChanges(before, after).map((c) =>
    c.kind === 'added' ? `+ ${c.name} ${c.after}` : c.kind === 'removed' ? `- ${c.name} ${c.before}` : c.kind === 'changed' ? `  ${c.name} ${c.before} → ${c.after}` : `  ${c.name} ${c.before} (rebuilt: new sha256)`,
  );
}

/** The default lock path: next to the spec, `NAME.lock.json` for `NAME.yaml`. */
export function defaultLockPath(specPath: string): string {
  return join(dirname(specPath), `${basename(specPath).replace(/\.(ya?ml|json)$/, '')}.lock.json`);
}

export interface LockSpecOptions {
  /** Lock file to write (default: defaultLockPath(spec)). */
  output?: string;
  /** Compare with the lock already at `output` (which must exist) and report what changed. */
  update?: boolean;
  /** Resolve against this archive snapshot (YYYY-MM-DD) instead of the spec's. */
  snapshot?: string;
  /** When database signing keys' expiry is judged (default at-signature). */
  keyExpiry?: KeyExpiry;
  log?: (message: string) => void;
}

export interface LockSpecResult {
  lock: Lock;
  /** Where the lock is. */
  path: string;
  /** With `update`: the lock that was there, what moved (diffLocks lines), and whether the lock changed at all. */
  previous?: Lock;
  changes?: string[];
  /** With `update`: the same changes as objects. */
  packageChanges?: LockChange[];
  /** With `update`: false when the new lock is the same document, which is then left untouched. */
  changed?: boolean;
}

/** A spec as lock and build read it: all of it is checked, its image section too, before anything is fetched. */
export async function loadLockableSpec(specPath: string): Promise<LoadedSpec> {
  const loaded = await loadSpec(specPath);
  checkImageSettings(loaded.spec.image ?? {}, 'spec image');
  return loaded;
}

/** `lock`: resolves a spec file into a lock written atomically beside it (or at `output`). */
export async function lockSpecFile(specPath: string, options: LockSpecOptions = {}): Promise<LockSpecResult> {
  const output = options.output ?? defaultLockPath(specPath);
  const loaded = await loadLockableSpec(specPath);
  if (options.snapshot !== undefined) {
    if (!loaded.spec.archive) throw new UserError('--snapshot needs a spec with an archive');
    if (!/^\d{4}-\d{2}-\d{2}$/.test(options.snapshot)) throw new UserError(`--snapshot ${options.snapshot}: expected YYYY-MM-DD`);
  }
  if (options.update && !(await exists(output))) throw new UserError(`--update: no lock at ${output}`);
  const previous = options.update ? await readLock(output) : undefined;
  await checkWritableFile(output, `lock ${output}`); // before resolving, not after
  const lock = await createLock(loaded, { ...(options.snapshot ? { archiveDate: options.snapshot } : {}), ...(options.keyExpiry ? { keyExpiry: options.keyExpiry } : {}), ...(options.log ? { log: options.log } : {}) });
  const changed = !previous || !sameLock(previous, lock);
  if (changed) await writeFileAtomic(output, serializeLock(lock));
  return { lock, path: output, ...(previous ? { previous, changes: diffLocks(previous, lock), packageChanges: lockChanges(previous, lock), changed } : {}) };
}

/** `lock --check`: where the lock at `output` (default beside the spec) stands, resolving nothing. */
export async function checkLockFile(specPath: string, output?: string): Promise<{ path: string; state: LockState['state'] }> {
  const path = output ?? defaultLockPath(specPath);
  return { path, state: (await lockState(await loadLockableSpec(specPath), path)).state };
}
