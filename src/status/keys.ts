import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { errorMessage, NotFoundError, UserError } from '../errors.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../fetch/download.js';
import { getBytes } from './http-get.js';
import { ensureDir } from '../util/fs.js';
import { writeNewFile } from '../util/new-file.js';
import { parseRebuilderKeys, publicKeyPem, type AttestationKey } from './attestation.js';
import type { ApiGeneration, KeySource, Rebuilder } from './model.js';

/**
 * The keys a rebuilder's attestations are checked with. Keys the user gave are used as given. Otherwise the
 * rebuilder's published keys (`/api/v1/meta/public-keys`, or v0's `/api/v0/public-keys`) are pinned on first use
 * in the state directory, and from then on a published key that differs from the pinned one stops the whole
 * command, as SSH does for a changed host key: a swapped key is exactly what an attacker who controls the
 * server, or the path to it, would serve.
 */

export interface RebuilderKeys {
  source: KeySource;
  keys: AttestationKey[];
  /** Said in the output: a key pinned now, or why there is no key. */
  note: string | null;
}

/** Where pinned keys live: $REPRO_OCI_STATE, else $XDG_STATE_HOME/repro-oci, else ~/.local/state/repro-oci. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.REPRO_OCI_STATE || join(env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'repro-oci');
}

/** One file per rebuilder base URL, named by its hash: no URL can name a path of its choosing. */
export function pinFile(stateDir: string, url: string): string {
  return join(stateDir, 'rebuilder-keys', `${createHash('sha256').update(url).digest('hex').slice(0, 32)}.json`);
}

const MAX_KEYS_RESPONSE = 64 * 1024;

function uniqueKeys(keys: AttestationKey[]): AttestationKey[] {
  const seen = new Map<string, AttestationKey>();
  for (const key of keys) if (!seen.has(key.fingerprint)) seen.set(key.fingerprint, key);
  return [...seen.values()].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : 0));
}

const fingerprints = (keys: readonly AttestationKey[]): string[] => keys.map((k) => k.fingerprint);

interface PinDocument {
  url: string;
  keys: string[];
}

/** A pinned file as written: its URL must be this rebuilder's, its keys must load. Anything else is loud. */
async function readPin(path: string, url: string): Promise<AttestationKey[] | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`pinned keys ${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`);
  }
  const broken = (why: string): UserError => new UserError(`pinned keys ${path} for ${url}: ${why}; it is never re-pinned silently: check the rebuilder's key out of band, then remove the file to pin again`);
  let doc: PinDocument;
  try {
    doc = JSON.parse(text) as PinDocument;
  } catch {
    throw broken('not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null || doc.url !== url || !Array.isArray(doc.keys) || doc.keys.length === 0 || doc.keys.some((k) => typeof k !== 'string')) {
    throw broken('not a pin of this rebuilder');
  }
  try {
    return uniqueKeys(doc.keys.flatMap((pem, i) => parseRebuilderKeys(pem, `key ${i}`)));
  } catch (err) {
    throw broken(errorMessage(err));
  }
}

/**
 * Pins `keys` unless another process pinned first: the file is created only where none exists (writeNewFile), so
 * two first uses never overwrite each other. Returns what is pinned now.
 */
async function pin(path: string, url: string, keys: AttestationKey[]): Promise<AttestationKey[]> {
  await ensureDir(join(path, '..'));
  const doc: PinDocument = { url, keys: keys.map((k) => publicKeyPem(k.key)) };
  try {
    await writeNewFile(path, `${JSON.stringify(doc, null, 2)}\n`, 0o644);
    return keys;
  } catch (err) {
    const existing = await readPin(path, url);
    if (existing) return existing;
    throw err;
  }
}

export interface KeyOptions {
  stateDir: string;
  timeoutMs: number;
  retry?: RetryPolicy;
}

/** Fetches the keys a rebuilder publishes: undefined when it has no such endpoint (older rebuilderd). */
async function fetchPublishedKeys(rebuilder: Rebuilder, api: ApiGeneration, options: KeyOptions): Promise<AttestationKey[] | undefined> {
  const paths = api === 'v1' ? ['/api/v1/meta/public-keys', '/api/v0/public-keys'] : ['/api/v0/public-keys'];
  for (const path of paths) {
    const url = `${rebuilder.url}${path}`;
    try {
      const bytes = await getBytes(url, `rebuilder ${rebuilder.name}`, MAX_KEYS_RESPONSE, options.retry ?? DEFAULT_RETRY, options.timeoutMs);
      // The body as the daemon's code serves it, `{ "current": [PEM, …] }`, is read by the key parser itself.
      return uniqueKeys(parseRebuilderKeys(bytes.toString('utf8'), `rebuilder ${rebuilder.name}: ${url}`));
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
  return undefined;
}

/**
 * The keys to check a rebuilder's attestations with. Throws (exit 2) when the rebuilder now publishes keys other
 * than the pinned ones; a rebuilder whose keys cannot be fetched is checked with its pinned keys, if any.
 */
export async function keysFor(rebuilder: Rebuilder, api: ApiGeneration, options: KeyOptions): Promise<RebuilderKeys> {
  if (rebuilder.keys?.length) return { source: 'given', keys: uniqueKeys(rebuilder.keys), note: null };
  const path = pinFile(options.stateDir, rebuilder.url);
  const pinned = await readPin(path, rebuilder.url);
  let published: AttestationKey[] | undefined;
  try {
    published = await fetchPublishedKeys(rebuilder, api, options);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    const why = errorMessage(err).replace(`rebuilder ${rebuilder.name}: `, '');
    if (pinned) return { source: 'pinned', keys: pinned, note: `its keys could not be fetched (${why}); checked with the pinned ones` };
    return { source: 'none', keys: [], note: `its keys could not be fetched (${why}): its GOODs cannot be verified` };
  }
  if (pinned) {
    if (published?.length && fingerprints(published).join() !== fingerprints(pinned).join()) {
      throw new UserError(
        `rebuilder ${rebuilder.name} (${rebuilder.url}) now publishes key ${fingerprints(published).join(', ')}, but ${fingerprints(pinned).join(', ')} is pinned in ${path}: ` +
          'if the rebuilder rotated its key, check the new one out of band, then remove that file (or give --rebuilder URL=KEYFILE)',
      );
    }
    return { source: 'pinned', keys: pinned, note: null };
  }
  if (!published?.length) return { source: 'none', keys: [], note: 'it publishes no key: its GOODs cannot be verified (give --rebuilder URL=KEYFILE)' };
  const now = await pin(path, rebuilder.url, published);
  if (fingerprints(now).join() !== fingerprints(published).join()) {
    throw new UserError(`rebuilder ${rebuilder.name} (${rebuilder.url}): another process pinned key ${fingerprints(now).join(', ')} in ${path} while this one was served ${fingerprints(published).join(', ')}`);
  }
  return { source: 'pinned now', keys: now, note: `pinned on first use in ${path}` };
}
