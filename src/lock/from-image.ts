import { copyFile, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { decompressAuto } from '../compress/index.js';
import { mergedImage } from '../status/packages.js';
import type { LayerIndex } from '../compare/layer-index.js';
import { NotFoundError, UserError, errorMessage } from '../errors.js';
import { ContentCache } from '../fetch/cache.js';
import { downloadUnverified, fetchBytes, MAX_UNSIZED_DOWNLOAD } from '../fetch/download.js';
import { VerifiedFile } from '../fetch/verified-file.js';
import { LOCAL_DB_DIR } from '../install/local-db.js';
import { canonicalJson } from '../oci/canonical-json.js';
import { fileDigest, isDigest, sha256, type Digest } from '../oci/digest.js';
import { checkConfig } from '../oci/raw-json.js';
import { parseDesc, type DescBlocks } from '../pacman/desc.js';
import { packageSatisfies, parseDependency, type Dependency } from '../pacman/depend.js';
import { keyringIdentity, loadKeyringFromDirectory, type Keyring } from '../pacman/keyring.js';
import { parseMtree, type MtreeEntry } from '../pacman/mtree.js';
import { checkPackageFilename, checkPackageName, checkPackageVersion } from '../pacman/names.js';
import { parsePkgInfo } from '../pacman/pkginfo.js';
import { checkPackageSignature, DEFAULT_KEY_EXPIRY, parseKeyExpiry, type KeyExpiry, type VerifiedSignature } from '../pacman/signature.js';
import { readTar } from '../tar/reader.js';
import { openSource, type TransportOptions } from '../transports/open.js';
import { readJsonBlob } from '../transports/layout.js';
import { resolvePlatformManifest } from '../transports/platform-manifest.js';
import { consumeTogether } from '../util/consume-together.js';
import { ensureDir, readSmall, writeFileAtomic } from '../util/fs.js';
import { byteOrder } from '../util/order.js';
import { decodeName, displayName } from '../util/raw-name.js';
import { checkWritableFile } from '../util/writable.js';
import { checkLock, IMAGE_REPOSITORY, LOCK_VERSION, serializeLock, type Lock, type LockedPackage } from './lock.js';
import { archivePackageUrl } from './spec.js';

/**
 * `lock --from-image`: a lock for an image that something else built, from the record every Arch image carries —
 * pacman's local database — and the Arch Linux Archive, which keeps every package version ever published with its
 * signature. Nothing the image says is taken on trust: each package is fetched from the archive by name and
 * version, hashed in full, its signature verified against the keyring, and its own `.PKGINFO` and `.MTREE` must
 * agree with the database entry, or the package is refused by name.
 */

export const DEFAULT_ARCHIVE_URL = 'https://archive.archlinux.org/';

/** Package signatures are required (each was checked here); there is no repository database to check. */
const IMAGE_LOCK_SIGLEVEL = 'Required DatabaseNever';

/** Newer packages first: the archive has `.pkg.tar.xz` for those built before zstd became the default (2020). */
const PACKAGE_EXTENSIONS = ['.pkg.tar.zst', '.pkg.tar.xz'];

const MAX_SIGNATURE_BYTES = 64 * 1024;
/** Largest `.PKGINFO` or `.MTREE` read from a package (as the installer). */
const MAX_META_BYTES = 64 * 1024 * 1024;

export interface LockFromImageOptions {
  /** Keyring directory (NAME.gpg, NAME-trusted, NAME-revoked): every package signature must verify against it. */
  keyringDir: string;
  /** Keyring name (default archlinux). */
  keyringName?: string;
  /** Arch Linux Archive root (default https://archive.archlinux.org/). */
  archive?: string;
  /** Where fetched packages are kept (default ContentCache.at()). */
  cache?: ContentCache;
  /** The platform manifest to read when the reference names an index (default: the only image, else linux/amd64). */
  platform?: string;
  transport?: TransportOptions;
  /** When signing keys' expiry is judged (default at-signature). */
  keyExpiry?: KeyExpiry;
  log?: (message: string) => void;
}

/** One package as the image's local database records it. */
export interface InstalledEntry {
  /** `var/lib/pacman/local/<name>-<version>`. */
  dir: string;
  name: string;
  version: string;
  arch: string;
  builddate: number;
  packager: string | undefined;
  /** Installed size (%SIZE%). */
  size: number;
  reason: 'explicit' | 'dependency';
  /** %DEPENDS% and %PROVIDES%, for the install order. */
  depends: Dependency[];
  provides: Dependency[];
  /** The desc as the image holds it. */
  desc: Buffer;
  /** The database's copy of the package's `.MTREE`, when the image has one. */
  mtree: Buffer | undefined;
}

function onlyValue(blocks: DescBlocks, key: string, what: string): string {
  const values = blocks.get(key);
  if (values?.length !== 1) throw new UserError(`${what}: %${key}% must have exactly one value`);
  return values[0]!;
}

function optionalCount(blocks: DescBlocks, key: string, what: string): number | undefined {
  if (!blocks.has(key)) return undefined;
  const value = onlyValue(blocks, key, what);
  if (!/^[0-9]{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) throw new UserError(`${what}: %${key}% ${JSON.stringify(value)} is not a plausible non-negative integer`);
  return Number(value);
}

const LOCAL_DESC = new RegExp(`^${LOCAL_DB_DIR}/([^/]+)/desc$`);

/**
 * Every package entry of the local database in a merged image, by name: its desc read and checked (name, version
 * and arch become URLs and file names; the entry's directory must be `<name>-<version>`, as pacman names it).
 */
export function installedEntries(merged: LayerIndex): InstalledEntry[] {
  const entries: InstalledEntry[] = [];
  const seen = new Set<string>();
  for (const path of [...merged.pacmanDb.keys()].sort(byteOrder)) {
    const dirName = LOCAL_DESC.exec(path)?.[1];
    if (dirName === undefined) continue;
    const dir = `${LOCAL_DB_DIR}/${dirName}`;
    const what = `image ${displayName(path)}`;
    const desc = merged.pacmanDb.get(path)!;
    const blocks = parseDesc(desc, what);
    const name = checkPackageName(onlyValue(blocks, 'NAME', what), what);
    const version = checkPackageVersion(onlyValue(blocks, 'VERSION', what), what);
    const arch = onlyValue(blocks, 'ARCH', what);
    if (!/^[A-Za-z0-9_]+$/.test(arch)) throw new UserError(`${what}: %ARCH% ${JSON.stringify(arch)} is not an architecture name`);
    if (dirName !== `${name}-${version}`) throw new UserError(`${what}: package ${name} ${version} is recorded under ${displayName(dirName)}, not ${name}-${version}`);
    if (seen.has(name)) throw new UserError(`${what}: package ${name} is installed twice`);
    seen.add(name);
    const reason = optionalCount(blocks, 'REASON', what) ?? 0;
    if (reason > 1) throw new UserError(`${what}: %REASON% ${reason} is neither 0 (explicit) nor 1 (dependency)`);
    entries.push({
      dir,
      name,
      version,
      arch,
      builddate: optionalCount(blocks, 'BUILDDATE', what) ?? 0,
      packager: blocks.has('PACKAGER') ? onlyValue(blocks, 'PACKAGER', what) : undefined,
      size: optionalCount(blocks, 'SIZE', what) ?? 0,
      reason: reason === 1 ? 'dependency' : 'explicit',
      depends: (blocks.get('DEPENDS') ?? []).map(parseDependency),
      provides: (blocks.get('PROVIDES') ?? []).map(parseDependency),
      desc,
      mtree: merged.pacmanDb.get(`${dir}/mtree`),
    });
  }
  if (entries.length === 0) throw new UserError(`the image has no pacman database (${LOCAL_DB_DIR}/*/desc): nothing to lock`);
  return installOrder(entries.sort((a, b) => byteOrder(a.name, b.name)));
}

/**
 * The local database keeps no install order: dependencies before the packages that need them (depth first, post
 * order, as libalpm sorts a transaction), ties by name, so the lock installs as a pacman transaction would.
 */
function installOrder(byName: InstalledEntry[]): InstalledEntry[] {
  const done = new Set<InstalledEntry>();
  const open = new Set<InstalledEntry>();
  const out: InstalledEntry[] = [];
  const visit = (entry: InstalledEntry): void => {
    open.add(entry);
    for (const dep of entry.depends) {
      const found = byName.find((other) => other !== entry && packageSatisfies(dep, other));
      if (found && !done.has(found) && !open.has(found)) visit(found); // a cycle is broken where it is met
    }
    open.delete(entry);
    done.add(entry);
    out.push(entry);
  };
  for (const entry of byName) if (!done.has(entry)) visit(entry);
  return out;
}

/** A package's `.PKGINFO` and `.MTREE`, read from the leading members (metadata sorts first) of its bytes. */
async function packageMetadata(bytes: AsyncIterable<Buffer>, what: string): Promise<PackageMetadata> {
  let pkginfo: Buffer | undefined;
  let mtree: Buffer | undefined;
  for await (const entry of readTar(decompressAuto(bytes, what), { what })) {
    const path = entry.name.replace(/^\.\//, '');
    if (!path.startsWith('.')) break;
    if (entry.type !== 'file') continue;
    if (path === '.PKGINFO') pkginfo = await readSmall(entry.content(), MAX_META_BYTES, `${what}: .PKGINFO`);
    else if (path === '.MTREE') mtree = await readSmall(entry.content(), MAX_META_BYTES, `${what}: .MTREE`);
  }
  if (!pkginfo) throw new UserError(`${what}: the archive's package has no .PKGINFO`);
  return { pkginfo, mtree };
}

interface PackageMetadata {
  pkginfo: Buffer;
  mtree: Buffer | undefined;
}

/** The metadata read, or what stopped reading it (given out once the file's signature and digest stood). */
type MetadataRead = { value: PackageMetadata } | { error: unknown };

function metadataOf(read: MetadataRead): PackageMetadata {
  if ('error' in read) throw read.error;
  return read.value;
}

/**
 * One read of a package file for both its signature and its metadata: the signature is judged on every byte and
 * the file matched against `bytes`' digest (either failing is thrown, whatever the metadata reader met); the
 * metadata is read from the same bytes meanwhile and only returned, not yet used.
 */
async function verifyPackageFile(bytes: VerifiedFile, signature: Buffer | undefined, context: ArchiveContext, what: string): Promise<{ signer: VerifiedSignature | undefined; metadata: MetadataRead }> {
  try {
    const [signer, metadata] = await consumeTogether(
      bytes.chunks(),
      (data) => checkPackageSignature({ level: 'required', trust: 'trustedOnly' }, signature, { data, keyring: context.keyring, what, keyExpiry: context.keyExpiry }),
      (data) => packageMetadata(data, what).then((value) => ({ value }), (error: unknown) => ({ error })),
    );
    return { signer, metadata };
  } finally {
    await bytes.verify(what);
  }
}

/** The first difference between two mtree entries in what reaches the filesystem, or undefined. */
function entryDifference(image: MtreeEntry, pkg: MtreeEntry): string | undefined {
  const fields: Array<[string, unknown, unknown]> = [
    ['type', image.type, pkg.type],
    ['mode', image.mode, pkg.mode],
    ['uid', image.uid, pkg.uid],
    ['gid', image.gid, pkg.gid],
    ['size', image.size, pkg.size],
    ['sha256digest', image.sha256, pkg.sha256],
    ['link', image.link, pkg.link],
    ['time', image.time && `${image.time.sec}.${image.time.nsec}`, pkg.time && `${pkg.time.sec}.${pkg.time.nsec}`],
  ];
  const diff = fields.find(([, a, b]) => a !== b);
  if (!diff) return undefined;
  const show = (v: unknown): string => (v === undefined ? 'none' : typeof v === 'number' && diff[0] === 'mode' ? v.toString(8) : String(v));
  return `${diff[0]} ${show(diff[1])} in the image, ${show(diff[2])} in the package`;
}

/**
 * pacman copies a package's `.MTREE` into the database as `mtree`: every entry must be the package's own. Names
 * the first path that differs, is missing or was added.
 */
export function compareMtrees(imageMtree: Buffer, packageMtree: Buffer, what: string): void {
  const image = parseMtree(imageMtree, `${what}: image database mtree`);
  // pacman copies the file as it is: the same bytes parse the same (the usual case, and half the work).
  const pkg = new Map((imageMtree.equals(packageMtree) ? image : parseMtree(packageMtree, `${what}: .MTREE`)).map((e) => [e.path, e]));
  const seen = new Set<string>();
  for (const entry of image) {
    const theirs = pkg.get(entry.path);
    if (!theirs) throw new UserError(`${what}: the image's database mtree lists ${displayName(entry.path)}, which the package does not have`);
    const why = entryDifference(entry, theirs);
    if (why) throw new UserError(`${what}: the image's database mtree differs from the package's .MTREE at ${displayName(entry.path)}: ${why}`);
    seen.add(entry.path);
  }
  const missing = [...pkg.keys()].find((path) => !seen.has(path));
  if (missing !== undefined) throw new UserError(`${what}: the image's database mtree leaves out ${displayName(missing)}, which the package has`);
}

/** `.PKGINFO` fields the local database copies from it: each must be what the image's desc says. */
function comparePkgInfo(entry: InstalledEntry, pkginfoBytes: Buffer, what: string): void {
  const info = parsePkgInfo(decodeName(pkginfoBytes), `${what}: .PKGINFO`);
  const pairs: Array<[string, string | number | undefined, string | number | undefined]> = [
    ['name', entry.name, info.pkgname],
    ['version', entry.version, info.pkgver],
    ['arch', entry.arch, info.arch],
    ['builddate', entry.builddate, info.builddate ?? 0],
    ['packager', entry.packager, info.packager],
    ['size', entry.size, info.size ?? 0],
  ];
  for (const [field, image, pkg] of pairs) {
    if (image !== pkg) throw new UserError(`${what}: the image's database says ${field} ${JSON.stringify(image ?? null)}, the package's .PKGINFO ${JSON.stringify(pkg ?? null)}`);
  }
}

/**
 * Which cached blob an archive URL gave last time (`<cache>/archive-urls/<sha256 of the URL>`), so that locking
 * an image again does not download its packages again. Only a hint: the blob is hashed in full as it is looked up,
 * and then checked exactly as a download is (the archive's signature over all of it, its metadata).
 */
function urlHintPath(context: ArchiveContext, url: string): string {
  return join(context.cache.root, 'archive-urls', sha256(url).slice('sha256:'.length));
}

async function cachedDownload(context: ArchiveContext, url: string): Promise<string | undefined> {
  const hint = await readFile(urlHintPath(context, url), 'latin1').catch(() => undefined);
  if (hint === undefined || !isDigest(hint)) return undefined;
  return context.cache.lookup(hint, undefined, context.log);
}

async function rememberDownload(context: ArchiveContext, url: string, digest: Digest): Promise<void> {
  const path = urlHintPath(context, url);
  await ensureDir(dirname(path));
  await writeFileAtomic(path, digest);
}

interface ArchiveContext {
  archive: string;
  cache: ContentCache;
  keyring: Keyring;
  keyExpiry: KeyExpiry;
  log: (message: string) => void;
}

/** A package locked from the archive: its lock entry, the cached file it was verified in, and who signed it. */
export interface VerifiedPackage {
  locked: LockedPackage;
  /** The file in the cache whose every byte matched the lock's sha256 and carried the signature. */
  file: string;
  signer: VerifiedSignature | undefined;
}

/** A verified package file checked against its database entry (.PKGINFO fields, every mtree entry), as locked. */
function checkedPackage(entry: InstalledEntry, metadata: PackageMetadata, file: { filename: string; url: string; digest: Digest; size: number; signature: Buffer }, what: string): LockedPackage {
  comparePkgInfo(entry, metadata.pkginfo, what);
  if (!entry.mtree) throw new UserError(`${what}: the image's database has no mtree for it (${displayName(`${entry.dir}/mtree`)})`);
  if (!metadata.mtree) throw new UserError(`${what}: the archive's package has no .MTREE to check the image's database against`);
  compareMtrees(entry.mtree, metadata.mtree, what);
  return {
    name: entry.name,
    version: entry.version,
    arch: entry.arch,
    repository: IMAGE_REPOSITORY,
    filename: file.filename,
    urls: [file.url],
    sha256: file.digest.slice('sha256:'.length),
    csize: file.size,
    isize: entry.size,
    builddate: entry.builddate,
    signature: file.signature.toString('base64'),
    reason: entry.reason,
  };
}

async function fetchSignature(url: string, what: string): Promise<Buffer | undefined> {
  try {
    return await fetchBytes(`${url}.sig`, `${what} signature`, MAX_SIGNATURE_BYTES);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
    return undefined;
  }
}

/**
 * The package an archive URL gave last time, read once from the cache for its digest, signature and metadata. Not
 * there, or not what its hint names: undefined (the download path looks it up, and evicts a corrupt copy). Its
 * signature failing: `download`, to judge the archive's file instead.
 */
async function lockCachedPackage(entry: InstalledEntry, context: ArchiveContext, url: string, filename: string, what: string): Promise<VerifiedPackage | 'download' | undefined> {
  const hint = await readFile(urlHintPath(context, url), 'latin1').catch(() => undefined);
  if (hint === undefined || !isDigest(hint)) return undefined;
  const file = context.cache.path(hint);
  const size = await stat(file).then((info) => info.size, () => undefined);
  if (size === undefined) return undefined;
  const bytes = await VerifiedFile.open(file, hint, size).catch(() => undefined);
  if (!bytes) return undefined;
  const signature = await fetchSignature(url, what);
  let verified: Awaited<ReturnType<typeof verifyPackageFile>>;
  try {
    verified = await verifyPackageFile(bytes, signature, context, what);
  } catch (err) {
    if (await bytes.mismatch()) return undefined;
    if (signature !== undefined) return 'download';
    throw err;
  }
  const locked = checkedPackage(entry, metadataOf(verified.metadata), { filename, url, digest: hint as Digest, size, signature: signature! }, what);
  return { locked, file, signer: verified.signer };
}

/**
 * Fetches one installed package from the archive (`.pkg.tar.zst`, else `.pkg.tar.xz`), verifies its signature
 * over the whole file, keeps it in the cache by digest, and checks it against the database entry.
 */
async function lockInstalledPackage(entry: InstalledEntry, context: ArchiveContext, useCache = true): Promise<VerifiedPackage> {
  const what = `package ${entry.name} ${entry.version}`;
  const tried: string[] = [];
  for (const extension of PACKAGE_EXTENSIONS) {
    const filename = checkPackageFilename(`${entry.name}-${entry.version}-${entry.arch}${extension}`, what);
    const url = archivePackageUrl(context.archive, entry.name, filename);
    if (useCache) {
      const hit = await lockCachedPackage(entry, context, url, filename, what);
      if (hit === 'download') return lockInstalledPackage(entry, context, false);
      if (hit) return hit;
    }
    const cached = useCache ? await cachedDownload(context, url) : undefined;
    const partial = await context.cache.partial(sha256(url), { resume: false });
    try {
      if (cached) await copyFile(cached, partial);
      else await downloadUnverified(url, partial, MAX_UNSIZED_DOWNLOAD, what);
    } catch (err) {
      await rm(partial, { force: true });
      if (!(err instanceof NotFoundError)) throw err;
      tried.push(filename);
      continue;
    }
    try {
      const signature = await fetchSignature(url, what);
      const [digest, { size }] = await Promise.all([fileDigest(partial), stat(partial)]);
      // The signature is judged on bytes hashed as they are read, and stands only once all of them matched.
      const bytes = await VerifiedFile.open(partial, digest, size);
      let verified: Awaited<ReturnType<typeof verifyPackageFile>>;
      try {
        verified = await verifyPackageFile(bytes, signature, context, what);
      } catch (err) {
        // A cached copy the archive's signature does not cover (a stale or altered hint): judge the download instead.
        if (cached && signature !== undefined) return await lockInstalledPackage(entry, context, false);
        throw err;
      }
      const file = context.cache.path(digest);
      await context.cache.place(partial, file);
      await rememberDownload(context, url, digest);
      if (!cached) context.log(`fetched ${filename}`);
      return { locked: checkedPackage(entry, metadataOf(verified.metadata), { filename, url, digest, size, signature: signature! }, what), file, signer: verified.signer };
    } finally {
      await rm(partial, { force: true });
    }
  }
  throw new UserError(`${what}: not in the archive ${context.archive} (no ${tried.join(' nor ')})`);
}

/** OCI architecture names as pacman names them. */
const PACMAN_ARCH: Record<string, string> = { amd64: 'x86_64', arm64: 'aarch64', '386': 'i686', riscv64: 'riscv64' };

/** The lock's architecture: the one its architecture-specific packages share, else the image's. */
function lockArchitecture(entries: InstalledEntry[], imageArch: string): string {
  const arches = [...new Set(entries.map((e) => e.arch).filter((a) => a !== 'any'))].sort(byteOrder);
  if (arches.length > 1) throw new UserError(`the image's packages are for several architectures (${arches.join(', ')}): one lock cannot hold them`);
  const arch = (arches[0] ?? PACMAN_ARCH[imageArch] ?? imageArch).toLowerCase();
  if (!/^[a-z0-9_]+$/.test(arch)) throw new UserError(`image architecture ${JSON.stringify(imageArch)} has no pacman name`);
  return arch;
}

/**
 * A lock for the packages an image's pacman database lists, each fetched from the archive and checked (see the
 * module comment). Refusals are gathered and reported together, one line naming every refused package.
 */
export async function createImageLock(reference: string, options: LockFromImageOptions): Promise<Lock> {
  const context = await imageLockContext(options);
  const source = await openSource(reference, options.transport ?? {});
  let image: LockedImage;
  try {
    const { descriptor, manifest } = await resolvePlatformManifest(source, options.platform, reference);
    const config = checkConfig(await readJsonBlob(source, manifest.config, 'config'), `${reference} config`).value;
    image = { entries: installedEntries(await mergedImage(source, descriptor, manifest, config, reference)), manifestDigest: descriptor.digest, architecture: config.architecture };
  } finally {
    await source.close();
  }
  return lockInstalledEntries(image, context);
}

/** What a lock is made from: an image's database entries, its platform manifest's digest and OCI architecture. */
export interface LockedImage {
  entries: InstalledEntry[];
  manifestDigest: Digest;
  architecture: string;
}

/** Where packages come from and how they are judged: checked (and the keyring loaded) before any image is read. */
export interface ImageLockContext extends ArchiveContext {
  keyringName: string;
}

export async function imageLockContext(options: Omit<LockFromImageOptions, 'platform' | 'transport'>): Promise<ImageLockContext> {
  const archive = options.archive ?? DEFAULT_ARCHIVE_URL;
  if (!/^(https?|file):\/\/[^\p{Cc}\s]+$/u.test(archive)) throw new UserError(`--archive ${JSON.stringify(archive)}: expected an http(s):// or file:// URL`);
  const keyExpiry = parseKeyExpiry(options.keyExpiry ?? DEFAULT_KEY_EXPIRY, 'keyExpiry');
  const keyringName = options.keyringName ?? 'archlinux';
  const keyring = await loadKeyringFromDirectory(options.keyringDir, keyringName);
  return { archive, cache: options.cache ?? ContentCache.at(), keyring, keyringName, keyExpiry, log: options.log ?? (() => {}) };
}

/**
 * The lock for database entries already read from an image (createImageLock reads them; a caller holding the
 * merged image gives them here): every package fetched from the archive and checked, or all refusals named.
 */
export async function lockInstalledEntries(image: LockedImage, context: ImageLockContext): Promise<Lock> {
  return (await verifyInstalledEntries(image, context)).lock;
}

/** lockInstalledEntries, with each package's verified file (for installing them without verifying them again). */
export async function verifyInstalledEntries(image: LockedImage, context: ImageLockContext): Promise<{ lock: Lock; files: VerifiedPackage[] }> {
  const { entries } = image;
  const architecture = lockArchitecture(entries, image.architecture);
  const files: VerifiedPackage[] = [];
  const refused: string[] = [];
  for (const entry of entries) {
    try {
      files.push(await lockInstalledPackage(entry, context));
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      refused.push(errorMessage(err));
    }
  }
  if (refused.length > 0) throw new UserError(`refused ${refused.length} of ${entries.length} packages: ${refused.join('; ')}`);
  // The database the lock was made from: each entry's desc and mtree digests, by directory, as the image holds them.
  const database = sha256(canonicalJson([...entries].sort((a, b) => byteOrder(a.dir, b.dir)).map((e) => ({ dir: e.dir, desc: sha256(e.desc), mtree: e.mtree ? sha256(e.mtree) : null }))));
  const packages = files.map((f) => f.locked);
  const lock: Lock = {
    lockVersion: LOCK_VERSION,
    specDigest: image.manifestDigest,
    architecture,
    repositories: [{ name: IMAGE_REPOSITORY, servers: [], database }],
    targets: packages.filter((p) => p.reason === 'explicit').map((p) => p.name),
    sigLevel: IMAGE_LOCK_SIGLEVEL,
    keyring: { name: context.keyringName, ...keyringIdentity(context.keyring) },
    packages,
  };
  return { lock: checkLock(lock, 'lock from image'), files };
}

export interface LockFromImageResult {
  lock: Lock;
  path: string;
}

/** `lock --from-image REF -o LOCK`: the lock written atomically, only once every package passed. */
export async function lockFromImage(reference: string, output: string, options: LockFromImageOptions): Promise<LockFromImageResult> {
  await checkWritableFile(output, `lock ${output}`);
  const lock = await createImageLock(reference, options);
  await writeFileAtomic(output, serializeLock(lock));
  return { lock, path: output };
}
