import type { Lock, LockedPackage } from '../arch/lock.js';
import { ContentCache } from '../fetch/cache.js';
import { downloadToCache } from '../fetch/download.js';
import type { Digest } from '../oci/digest.js';
import type { PackageToInstall } from './installer.js';
import type { Validation } from './local-db.js';

export interface FetchOptions {
  cache: ContentCache;
  /** Base URLs tried before the lock's own, each holding packages by file name (a flat mirror). */
  mirrors?: string[];
  /**
   * Checks a downloaded package (its signature) before it is used; returns how it was validated beyond the
   * sha256 that every download is checked against.
   */
  verify?: (pkg: LockedPackage, file: string) => Promise<Validation[]>;
  log?: (message: string) => void;
}

/** Brings every locked package into the cache, each checked against the lock's sha256, in install order. */
export async function fetchLockedPackages(lock: Lock, options: FetchOptions): Promise<PackageToInstall[]> {
  const out: PackageToInstall[] = [];
  for (const pkg of lock.packages) {
    const urls = [...(options.mirrors ?? []).map((m) => `${m.replace(/\/+$/, '')}/${encodeURIComponent(pkg.filename)}`), ...pkg.urls];
    const digest = `sha256:${pkg.sha256}` as Digest;
    const cached = await options.cache.has(digest);
    const file = await downloadToCache(options.cache, urls, digest, pkg.csize || undefined, `package ${pkg.name} ${pkg.version}`);
    if (!cached) options.log?.(`fetched ${pkg.filename}`);
    const extra = options.verify ? await options.verify(pkg, file) : [];
    out.push({
      name: pkg.name,
      version: pkg.version,
      file,
      reason: pkg.reason,
      validation: extra.includes('pgp') ? extra : ['sha256', ...extra],
      isize: pkg.isize,
    });
  }
  return out;
}
