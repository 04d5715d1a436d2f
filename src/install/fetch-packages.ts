import { keyringIdentity, loadKeyringFromDirectory, type Keyring } from '../pacman/keyring.js';
import { repositorySigLevel } from '../pacman/siglevel.js';
import { canonicalJson } from '../oci/canonical-json.js';
import type { Lock, LockedPackage } from '../lock/lock.js';
import { locationOfFile, resolveLocation } from '../lock/spec.js';
import { checkPackageSignature, DEFAULT_KEY_EXPIRY, parseKeyExpiry, describeKeyExpiry, signaturePolicy, type KeyExpiry, type SignaturePolicy, type VerifiedSignature } from '../pacman/signature.js';
import { NotFoundError, UserError } from '../errors.js';
import type { ContentCache } from '../fetch/cache.js';
import { downloadToCache, fetchBytes } from '../fetch/download.js';
import { VerifiedFile } from '../fetch/verified-file.js';
import type { Digest } from '../oci/digest.js';
import { Progress } from '../util/progress.js';
import type { PackageToInstall } from './installer.js';
import type { Validation } from './local-db.js';

export interface FetchOptions {
  cache: ContentCache;
  /**
   * Flat mirrors holding packages by file name, tried before the lock's URLs: URLs, or directories (a relative one
   * is relative to the current directory, as a command-line path is).
   */
  mirrors?: string[];
  /** Directory that relative URLs in the lock are relative to (the spec's, or the lock file's). */
  baseDir: string;
  /** Package signature policies (pacman SigLevel, package side) and the keyring they need. */
  signatures?: PackageSignatures;
  log?: (message: string) => void;
}

/** How packages are checked: each by the package side of its repository's SigLevel. */
export interface PackageSignatures {
  /** By repository name; a repository not listed is never checked. */
  policies: ReadonlyMap<string, SignaturePolicy>;
  /** Present whenever a policy is not never. */
  keyring?: Keyring;
  /** Default at-signature. */
  keyExpiry?: KeyExpiry;
}

/**
 * The lock's package signature policy for each repository (its own SigLevel over the lock's, as pacman.conf's
 * `[repo]` over `[options]`) and, when one of them checks signatures, the keyring from `keyringDir` — which must be
 * the keyring the lock pins (same key file digest, trusted and revoked fingerprints).
 */
export async function lockSignatures(lock: Lock, keyringDir: string | undefined, expiry: KeyExpiry = DEFAULT_KEY_EXPIRY): Promise<PackageSignatures> {
  const keyExpiry = parseKeyExpiry(expiry, 'keyExpiry'); // a library caller's value is checked too
  const policies = new Map(lock.repositories.map((r) => [r.name, signaturePolicy(repositorySigLevel(lock.sigLevel, r.sigLevel, 'lock sigLevel').package)]));
  const checking = lock.repositories.filter((r) => policies.get(r.name)!.level !== 'never' && lock.packages.some((p) => p.repository === r.name));
  if (checking.length === 0) return { policies, keyExpiry };
  if (!keyringDir) {
    const named = checking.map((r) => (r.sigLevel === undefined ? `SigLevel ${lock.sigLevel}` : `repository ${r.name} SigLevel ${r.sigLevel}`));
    throw new UserError(`the lock requires package signatures (${[...new Set(named)].join(', ')}): give a keyring (--keyring DIR, or keyring.dir in the spec)`);
  }
  const name = lock.keyring?.name ?? 'archlinux';
  const keyring = await loadKeyringFromDirectory(keyringDir, name);
  if (lock.keyring && canonicalJson({ name, ...keyringIdentity(keyring) }) !== canonicalJson(lock.keyring)) {
    throw new UserError(`keyring ${keyringDir} is not the one the lock pins (${lock.keyring.keys})`);
  }
  return { policies, keyring, keyExpiry };
}

/** The detached signature of a package: from the lock (the database's %PGPSIG%), else `<url>.sig`. */
async function signatureOf(pkg: LockedPackage, urls: string[]): Promise<Buffer | undefined> {
  if (pkg.signature) return Buffer.from(pkg.signature, 'base64');
  for (const url of urls) {
    try {
      return await fetchBytes(`${url}.sig`, `package ${pkg.name} signature`, 64 * 1024, { attempts: 2, baseDelayMs: 100, maxDelayMs: 1000 });
    } catch (err) {
      // Absent here: try the next location; a missing signature is judged by the policy below. Any other failure
      // (a server that keeps failing) must not pass for "unsigned".
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
  return undefined;
}

/**
 * Brings every locked package into the cache, in install order. Each is hashed in full against the lock's sha256
 * and size and then, as the signature policy says, its OpenPGP signature is checked — before it enters the
 * cache, and again when it is taken from the cache — so that nothing unverified is ever installed or cached.
 * (The installer hashes the file once more as it reads it: it may have changed since.)
 */
export async function fetchLockedPackages(lock: Lock, options: FetchOptions): Promise<PackageToInstall[]> {
  const out: PackageToInstall[] = [];
  const never: SignaturePolicy = { level: 'never', trust: 'trustedOnly' };
  const keyExpiry = options.signatures?.keyExpiry ?? DEFAULT_KEY_EXPIRY;
  let verifiedCount = 0;
  const progress = new Progress('fetch', { unit: 'packages' }).start(lock.packages.length);
  try {
    for (const pkg of lock.packages) {
      const policy = options.signatures?.policies.get(pkg.repository) ?? never;
      if (policy.level !== 'never' && !options.signatures?.keyring) throw new UserError(`signature level ${policy.level} needs a keyring`);
      const what = `package ${pkg.name} ${pkg.version}`;
      const urls = [
        ...(options.mirrors ?? []).map((m) => resolveLocation(locationOfFile(m, pkg.filename), process.cwd())),
        ...pkg.urls.map((u) => resolveLocation(u, options.baseDir)),
      ];
      const digest = `sha256:${pkg.sha256}` as Digest;
      let validation: Validation[] = ['sha256'];
      let signer: PackageToInstall['signer'];
      const check = async (file: string): Promise<void> => {
        const signature = policy.level === 'never' ? undefined : await signatureOf(pkg, urls);
        if (signature === undefined && policy.level !== 'required') return;
        // The signature is judged on bytes that are hashed as it reads them, and only stands once all of them matched.
        const bytes = await VerifiedFile.open(file, digest, pkg.csize || undefined);
        let verified: VerifiedSignature | undefined;
        try {
          verified = await checkPackageSignature(policy, signature, { data: bytes.chunks(), keyring: options.signatures?.keyring as Keyring, what, keyExpiry });
        } finally {
          await bytes.verify(`${what} (${file})`);
        }
        // As pacman (_alpm_pkg_validate_internal): a signature from the database stands in for the checksum (`pgp`
        // alone); with a detached `.sig` it compares the sha256 as well (`sha256`, `pgp`); without one, the sha256.
        validation = verified ? (pkg.signature ? ['pgp'] : ['sha256', 'pgp']) : ['sha256'];
        signer = verified ? { fingerprint: verified.fingerprint, ...(verified.signerUserId ? { userId: verified.signerUserId } : {}) } : undefined;
      };
      const { path: file, fetched } = await downloadToCache(options.cache, urls, digest, pkg.csize || undefined, what, { check, ...(options.log ? { log: options.log } : {}) });
      if (fetched) options.log?.(`fetched ${pkg.filename}`);
      if (validation.includes('pgp')) verifiedCount++;
      out.push({ name: pkg.name, version: pkg.version, file, sha256: pkg.sha256, ...(pkg.csize ? { csize: pkg.csize } : {}), reason: pkg.reason, validation, isize: pkg.isize, ...(signer ? { signer } : {}) });
      progress.advance();
    }
  } finally {
    progress.stop();
  }
  if (verifiedCount > 0) options.log?.(`verified ${verifiedCount} package signature(s); ${describeKeyExpiry(keyExpiry)}`);
  return out;
}
