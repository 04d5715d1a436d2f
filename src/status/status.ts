import { defaultLockPath, parseLock, readLock, type Lock } from '../arch/lock.js';
import { loadSpec } from '../arch/spec.js';
import { UserError } from '../errors.js';
import { openSource, type TransportOptions } from '../transports/open.js';
import { TRANSPORTS } from '../transports/reference.js';
import { exists, readUserFile } from '../util/fs.js';
import type { HttpCache } from './http-cache.js';
import type { PackageSet, Policy, StatusReport } from './model.js';
import { packagesFromImage, packagesFromLock } from './packages.js';
import { DEFAULT_QUERY, queryRebuilder } from './rebuilderd.js';
import { selectRebuilders } from './rebuilders.js';
import { statusReport } from './verdict.js';

function isImageReference(input: string): boolean {
  return TRANSPORTS.some((t) => input.startsWith(`${t}:`));
}

/** A lock file as it is; a spec through the lock beside it, which must have been made for it. */
async function lockFromFile(path: string): Promise<Lock> {
  const text = await readUserFile(path, 'input');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: a YAML spec
  }
  if (typeof parsed === 'object' && parsed !== null && 'lockVersion' in parsed) return parseLock(text, `lock ${path}`);
  const loaded = await loadSpec(path);
  const lockPath = defaultLockPath(path);
  if (!(await exists(lockPath))) throw new UserError(`spec ${path} has no lock beside it (${lockPath}): run repro-oci lock ${path}`);
  const lock = await readLock(lockPath);
  if (lock.specDigest !== loaded.digest) throw new UserError(`lock ${lockPath} was made for a different package selection; run repro-oci lock again`);
  return lock;
}

/** The packages of a lock, a spec (its lock beside it) or an image reference. */
export async function packagesOf(input: string, transport: TransportOptions = {}, platform?: string): Promise<PackageSet> {
  if (!isImageReference(input)) return packagesFromLock(await lockFromFile(input), 'lock');
  const source = await openSource(input, transport);
  try {
    return await packagesFromImage(source, input, platform);
  } finally {
    await source.close();
  }
}

export interface StatusOptions {
  /** Base URLs of rebuilderd instances. */
  rebuilders?: string[];
  /** A YAML file listing rebuilders (schemas/rebuilders.schema.json); with neither, the default file if it exists. */
  rebuildersFile?: string;
  /** GOOD answers each package needs, from different rebuilders (default 1), and whether a BAD fails it (default true). */
  policy?: Partial<Policy>;
  /** Time limit of each request to a rebuilder, in milliseconds (default 30 s). */
  timeoutMs?: number;
  /** Platform manifest to read when an image reference names an index. */
  platform?: string;
  transport?: TransportOptions;
  /** Rebuilder answers kept on disk and revalidated with If-Modified-Since (the CLI's: HttpCache.at(--cache)); none: always fetched. */
  cache?: HttpCache;
}

/** `status INPUT`: asks each rebuilder about every package of INPUT and judges them by the policy. */
export async function checkStatus(input: string, options: StatusOptions = {}): Promise<StatusReport> {
  const policy: Policy = { require: options.policy?.require ?? 1, failOnBad: options.policy?.failOnBad ?? true };
  const rebuilders = await selectRebuilders(options.rebuilders ?? [], options.rebuildersFile);
  if (policy.require > rebuilders.length) throw new UserError(`--require ${policy.require} cannot be met by ${rebuilders.length} rebuilder(s)`);
  const set = await packagesOf(input, options.transport, options.platform);
  const names = set.packages.map((p) => p.name);
  const answers = await Promise.all(rebuilders.map((r) => queryRebuilder(r, names, { ...DEFAULT_QUERY, timeoutMs: options.timeoutMs ?? DEFAULT_QUERY.timeoutMs, ...(options.cache ? { cache: options.cache } : {}) })));
  return statusReport(set, answers, policy);
}
