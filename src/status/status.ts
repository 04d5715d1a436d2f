import { defaultLockPath, parseLock, readLock, type Lock } from '../lock/lock.js';
import { loadSpec } from '../lock/spec.js';
import { UserError } from '../errors.js';
import { openSource, type TransportOptions } from '../transports/open.js';
import { TRANSPORTS } from '../transports/reference.js';
import { exists, readUserFile } from '../util/fs.js';
import { checkAttestation, mapLimited } from './attestation-check.js';
import { defaultStateDir, keysFor, type RebuilderKeys } from './keys.js';
import type { Cell, PackageSet, Policy, RebuilderAnswer, StatusReport } from './model.js';
import { AttestationStore, Seal } from './attestation-store.js';
import type { HttpCache } from './http-cache.js';
import { packagesFromImage, packagesFromLock } from './packages.js';
import { DEFAULT_QUERY, queryRebuilder } from './rebuilderd.js';
import { selectRebuilders } from './rebuilders.js';
import { cellFor, statusReport } from './verdict.js';

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
  /** Base URLs of rebuilderd instances, each optionally `URL=KEYFILE`. */
  rebuilders?: string[];
  /** A YAML file listing rebuilders, their keys and a policy (schemas/rebuilders.schema.json); with neither, the default file if it exists. */
  rebuildersFile?: string;
  /** Overrides the file's policy field by field. Defaults: 1 verified GOOD per package, any BAD fails. */
  policy?: Partial<Policy>;
  /** Time limit of each request to a rebuilder, in milliseconds (default 30 s). */
  timeoutMs?: number;
  /** Where keys are pinned (default `defaultStateDir()`). */
  stateDir?: string;
  /** Platform manifest to read when an image reference names an index. */
  platform?: string;
  transport?: TransportOptions;
  /** Rebuilder answers kept on disk and revalidated with If-Modified-Since (the CLI's: HttpCache.at(--cache)); none: always fetched. */
  cache?: HttpCache;
}

/** The file's policy under the caller's: rules given by the caller come first, so they win. */
function mergePolicy(file: Partial<Policy>, given: Partial<Policy> = {}): Policy {
  return {
    require: given.require ?? file.require ?? 1,
    rules: [...(given.rules ?? []), ...(file.rules ?? [])],
    failOnBad: given.failOnBad ?? file.failOnBad ?? true,
    attestations: given.attestations ?? file.attestations ?? 'required',
  };
}

/**
 * Each GOOD cell gets its attestation checked with the rebuilder's keys. Keys are looked up only for rebuilders
 * that answered; a changed pinned key throws here, before any verdict.
 */
async function checkAttestations(set: PackageSet, answers: readonly RebuilderAnswer[], cells: Cell[][], options: StatusOptions): Promise<Map<string, RebuilderKeys>> {
  const keys = new Map<string, RebuilderKeys>();
  const timeoutMs = options.timeoutMs ?? DEFAULT_QUERY.timeoutMs;
  const stateDir = options.stateDir ?? defaultStateDir();
  const { cache } = options;
  // The seal key is looked for (made on first use) only when some rebuilder has attestations to keep.
  let sealing: Promise<Seal | undefined> | undefined;
  const seal = (log: (message: string) => void): Promise<Seal | undefined> => (sealing ??= Seal.open(stateDir, log));
  await Promise.all(answers.map(async (answer, r) => {
    if ('error' in answer) return;
    const goods = set.packages.map((pkg, p) => ({ pkg, cell: cells[p]![r]! })).filter(({ cell }) => cell.state === 'GOOD');
    const found = goods.length > 0 || answer.rebuilder.keys?.length ? await keysFor(answer.rebuilder, answer.api, { stateDir, timeoutMs }) : { source: 'none' as const, keys: [], note: null };
    keys.set(answer.rebuilder.name, found);
    const store = cache && goods.length > 0 && found.keys.length > 0 ? await AttestationStore.open(cache, answer.rebuilder.url, await seal(cache.log)) : undefined;
    await mapLimited(goods, DEFAULT_QUERY.concurrency, async ({ pkg, cell }) => {
      cell.attestation = await checkAttestation(pkg, cell.links?.attestation, found.keys, answer.rebuilder, { timeoutMs, ...(store ? { store } : {}) });
    });
    await store?.save();
  }));
  return keys;
}

/** `status INPUT`: asks each rebuilder about every package of INPUT, checks the attestations behind each GOOD, and judges by the policy. */
export async function checkStatus(input: string, options: StatusOptions = {}): Promise<StatusReport> {
  const config = await selectRebuilders(options.rebuilders ?? [], options.rebuildersFile);
  const { rebuilders } = config;
  const policy = mergePolicy(config.policy, options.policy);
  for (const need of [policy.require, ...policy.rules.map((r) => r.require)]) {
    if (need > rebuilders.length) throw new UserError(`a policy that needs ${need} GOOD answers cannot be met by ${rebuilders.length} rebuilder(s)`);
  }
  const set = await packagesOf(input, options.transport, options.platform);
  const names = set.packages.map((p) => p.name);
  const timeoutMs = options.timeoutMs ?? DEFAULT_QUERY.timeoutMs;
  const answers = await Promise.all(rebuilders.map((r) => queryRebuilder(r, names, { ...DEFAULT_QUERY, timeoutMs, ...(options.cache ? { cache: options.cache } : {}) })));
  const cells = set.packages.map((pkg) => answers.map((answer) => cellFor(pkg, answer)));
  const keys = await checkAttestations(set, answers, cells, options);
  return statusReport(set, answers, cells, policy, keys);
}
