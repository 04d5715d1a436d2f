import { dirname, resolve } from 'node:path';
import { readLock } from '../lock/lock.js';
import { resolveSourceDateEpoch } from '../image/image-settings.js';
import { ContentCache } from '../fetch/cache.js';
import { defaultSourceDateEpoch } from '../image/build-spec.js';
import { fetchLockedPackages, lockSignatures } from './fetch-packages.js';
import type { KeyExpiry } from '../pacman/signature.js';
import { installPackages, type InstalledTree, type TreeNode } from './installer.js';
import { materialize, type MaterializeReport } from './materialize.js';

export interface TreeFromLockOptions {
  /** Package cache (default: ContentCache.at(): $REPRO_OCI_CACHE, else ~/.cache/repro-oci). */
  cache?: ContentCache;
  /** Keyring directory (NAME.gpg, NAME-trusted, NAME-revoked) matching the lock's keyring. */
  keyringDir?: string;
  /** When signing keys' expiry is judged (default at-signature; docs/trust-model.md). */
  keyExpiry?: KeyExpiry;
  /** Flat mirrors holding packages by file name, tried before the lock's URLs. */
  mirrors?: string[];
  /** pacman.conf NoExtract patterns. */
  noExtract?: string[];
  /** Accept device nodes in packages. */
  allowDevices?: boolean;
  /**
   * mtime of created directories and database files, and pacman's %INSTALLDATE%, over `sourceDateEpochEnv`
   * (default: the lock's archive date, else its newest package build date).
   */
  sourceDateEpoch?: string;
  /** The environment's $SOURCE_DATE_EPOCH, when the caller wants it to count (the library never reads it itself). */
  sourceDateEpochEnv?: string;
  log?: (message: string) => void;
}

/** Fetches (verified) and installs a lock into a tree model; shared by `install`, `ls`. The caller cleans it up. */
export async function treeFromLock(lockPath: string, options: TreeFromLockOptions = {}): Promise<InstalledTree> {
  const lock = await readLock(lockPath);
  const log = options.log ?? (() => {});
  const signatures = await lockSignatures(lock, options.keyringDir, options.keyExpiry);
  const packages = await fetchLockedPackages(lock, { baseDir: dirname(resolve(lockPath)), cache: options.cache ?? ContentCache.at(), mirrors: options.mirrors ?? [], signatures, log });
  // As `build`: the option, else the environment's value, else the lock's own date — never the clock, never 0.
  const env = options.sourceDateEpochEnv;
  const sde = options.sourceDateEpoch !== undefined || env ? resolveSourceDateEpoch(options.sourceDateEpoch, env, {}) : defaultSourceDateEpoch(lock);
  return installPackages(packages, { sourceDateEpoch: sde, noExtract: options.noExtract ?? [], allowDevices: options.allowDevices ?? false, warn: (m) => log(`warning: ${m}`) });
}

export interface InstallLockResult extends MaterializeReport {
  /** How many packages were installed. */
  packages: number;
}

/** `install LOCK --root DIR`: writes the tree a lock installs into an empty or new directory. */
export async function installLock(lockPath: string, root: string, options: TreeFromLockOptions = {}): Promise<InstallLockResult> {
  const tree = await treeFromLock(lockPath, options);
  try {
    return { ...(await materialize(tree.entries, root)), packages: tree.packages.length };
  } finally {
    await tree.cleanup();
  }
}

/** An entry of the installed tree, without its content (which is gone once the tree is cleaned up). */
export type ListedEntry = Omit<TreeNode, 'open'>;

/** `ls LOCK`: the entries a lock installs (path, type, mode, owner ids, size, owning package), in tree order. */
export async function listLock(lockPath: string, options: TreeFromLockOptions = {}): Promise<ListedEntry[]> {
  const tree = await treeFromLock(lockPath, options);
  try {
    return tree.entries.map(({ open: _content, ...entry }) => entry);
  } finally {
    await tree.cleanup();
  }
}
