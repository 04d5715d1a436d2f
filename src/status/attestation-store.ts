import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { ensureDir } from '../util/fs.js';
import { writeNewFile } from '../util/new-file.js';
import { MAX_ATTESTATION_BYTES, type AttestationKey, type ExpectedProduct } from './attestation.js';
import type { HttpCache } from './http-cache.js';
import type { AttestationCheck } from './model.js';

/**
 * A rebuilder's attestations kept in the cache as ONE entry (an HttpCache entry: checked in full, written to a
 * partial file and renamed into place), not one file per attestation: a warm run reads one file per rebuilder
 * instead of thousands. Attestations do not change once made, so a kept one is used without asking the server.
 *
 * The cache is not trusted (another process or user may write it). A kept body is self-authenticating: it is
 * verified with the rebuilder's keys like a fetched one. Verifying thousands of ed25519 signatures on every run is
 * most of a warm run, so a verified attestation may carry a **seal**: an HMAC-SHA256, under a key only this user
 * can read (`attestation-seal.key` in the state directory, where the pinned keys are), over the body, the key
 * fingerprints it was checked with, the package it was checked for and the result. A seal that checks is the
 * earlier verification of these very bytes with these very keys for this very package; anything else (no key,
 * another user's seal, any byte changed) falls back to the full verification. Whoever can write the cache
 * cannot make a seal without the key; whoever can read the key can already replace the pinned keys.
 *
 * Several processes may share the store: each writes the whole entry anew (what it used first, then what it
 * found there, up to MAX_STORE_BYTES) and the last rename wins; a lost addition is fetched again next time.
 */

/** The most a rebuilder's kept attestations take: about 40,000 of rebuilderd's. */
const MAX_STORE_BYTES = 64 * 1024 * 1024;
/** And the most entries: a store of tiny forged ones is refused before it makes a map of millions. */
const MAX_STORE_ENTRIES = 100_000;
const FORMAT = 'repro-oci-attestations-1';
/** Bump when verifyAttestation's rules change: seals made under other rules then no longer check. */
const SEAL_FORMAT = 'repro-oci-attestation-seal-1';
const SEAL_KEY_BYTES = 32;
const SEAL_KEY_FILE = 'attestation-seal.key';

type Verified = Extract<AttestationCheck, { state: 'verified' }>;
/** What a seal vouches for, besides the body: a verified check without its URL (the current run's is used). */
type SealedResult = Omit<Verified, 'state' | 'url'>;

interface Kept {
  url: string;
  body: Buffer;
  sealed?: { result: SealedResult; mac: string };
}

/** The HMAC key of this user's seals; undefined (no seals) when it cannot be made or is not private. */
export class Seal {
  private constructor(private readonly key: Buffer) {}

  static async open(stateDir: string, log: (message: string) => void = () => {}): Promise<Seal | undefined> {
    const path = join(stateDir, SEAL_KEY_FILE);
    let key = await readPrivateKey(path, log);
    if (key === null) {
      try {
        await ensureDir(stateDir);
        await writeNewFile(path, randomBytes(SEAL_KEY_BYTES), 0o600);
      } catch {
        // Another process made it first, or the state directory cannot be written: read what is there, if anything.
      }
      key = await readPrivateKey(path, log);
    }
    return key ? new Seal(key) : undefined;
  }

  mac(body: Buffer, keys: readonly AttestationKey[], expected: ExpectedProduct, result: SealedResult): string {
    const fingerprints = keys.map((k) => k.fingerprint).sort();
    const what = [SEAL_FORMAT, fingerprints, expected.name, expected.version, expected.arch, expected.fileName ?? null, expected.sha256 ?? null, result.digest, result.productFile, result.productSha256, result.bound, result.signedBy];
    return createHmac('sha256', this.key).update(JSON.stringify(what)).update('\n').update(body).digest('hex');
  }

  check(body: Buffer, keys: readonly AttestationKey[], expected: ExpectedProduct, result: SealedResult, mac: string): boolean {
    return timingSafeEqual(Buffer.from(this.mac(body, keys, expected, result), 'hex'), Buffer.from(mac, 'hex'));
  }
}

/**
 * The seal key at `path` when it is a regular file of this user that nobody else may read, of the right length:
 * null when there is none yet, undefined (and one line to `log`) when it is unusable.
 */
async function readPrivateKey(path: string, log: (message: string) => void): Promise<Buffer | null | undefined> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    log(`${path}: ${code ?? String(err)}: attestations are verified in full`);
    return undefined;
  }
  try {
    const info = await handle.stat();
    const uid = process.getuid?.();
    if (!info.isFile() || info.size !== SEAL_KEY_BYTES || (uid !== undefined && info.uid !== uid) || (info.mode & 0o077) !== 0) {
      log(`${path}: not a private ${SEAL_KEY_BYTES}-byte file of this user: attestations are verified in full (remove it to make a new one)`);
      return undefined;
    }
    const key = Buffer.alloc(SEAL_KEY_BYTES);
    const { bytesRead } = await handle.read(key, 0, SEAL_KEY_BYTES, 0);
    return bytesRead === SEAL_KEY_BYTES ? key : undefined;
  } finally {
    await handle.close();
  }
}

const isHex64 = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);

/** A kept entry's seal as written, or why it is not one. */
function sealOf(value: unknown): Kept['sealed'] | string {
  if (typeof value !== 'object' || value === null) return 'a seal that is not an object';
  const { result, mac } = value as { result?: Partial<SealedResult>; mac?: unknown };
  if (!isHex64(mac) || typeof result !== 'object' || result === null) return 'a seal without its MAC';
  const { digest, productFile, productSha256, bound, signedBy } = result;
  const strings = [digest, productFile, productSha256].every((s) => typeof s === 'string' && s.length <= 4096);
  if (!strings || typeof bound !== 'boolean' || !Array.isArray(signedBy) || !signedBy.every((s) => typeof s === 'string' && s.length <= 200)) return 'a seal of another shape';
  return { result: { digest: digest!, productFile: productFile!, productSha256: productSha256!, bound, signedBy: signedBy as string[] }, mac };
}

/** The entries of a store's body (a JSON line `{url, size, sealed?}` then `size` bytes, repeated), or what is wrong. */
function parseStore(bytes: Buffer, prefix: string): Map<string, Kept> | string {
  const kept = new Map<string, Kept>();
  let at = 0;
  while (at < bytes.length) {
    if (kept.size >= MAX_STORE_ENTRIES) return `more than ${MAX_STORE_ENTRIES} entries`;
    const newline = bytes.indexOf(0x0a, at);
    if (newline < 0 || newline - at > 64 * 1024) return `no entry line at byte ${at}`;
    let line: { url?: unknown; size?: unknown; sealed?: unknown };
    try {
      line = JSON.parse(bytes.subarray(at, newline).toString('utf8')) as typeof line;
    } catch {
      return `an entry line that is not JSON at byte ${at}`;
    }
    const { url, size } = line;
    if (typeof line !== 'object' || line === null || typeof url !== 'string' || !url.startsWith(prefix)) return `an entry for another server at byte ${at}`;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0 || size > MAX_ATTESTATION_BYTES || newline + 1 + size > bytes.length) return `an entry of a wrong size at byte ${at}`;
    const sealed = line.sealed === undefined ? undefined : sealOf(line.sealed);
    if (typeof sealed === 'string') return `${sealed} at byte ${at}`;
    const body = bytes.subarray(newline + 1, newline + 1 + size);
    kept.set(url, { url, body, ...(sealed ? { sealed } : {}) });
    at = newline + 1 + size;
  }
  return kept;
}

/** One rebuilder's kept attestations, read once; `save` writes them back when this run changed anything. */
export class AttestationStore {
  private readonly used = new Set<string>();
  private changed = false;

  private constructor(
    private readonly cache: HttpCache,
    private readonly key: string,
    private readonly kept: Map<string, Kept>,
    private readonly seal: Seal | undefined,
  ) {}

  /** The store of the rebuilder at `base` (its URL); an entry that is not a store of its attestations is evicted. */
  static async open(cache: HttpCache, base: string, seal: Seal | undefined): Promise<AttestationStore> {
    const key = `attestations ${base}`;
    const bytes = await cache.stored(key, MAX_STORE_BYTES);
    let kept = new Map<string, Kept>();
    if (bytes) {
      const parsed = bytes.subarray(0, FORMAT.length + 1).toString('latin1') === `${FORMAT}\n` ? parseStore(bytes.subarray(FORMAT.length + 1), `${base}/`) : 'not a store of this format';
      if (typeof parsed === 'string') await cache.evict(key, parsed);
      else kept = parsed;
    }
    return new AttestationStore(cache, key, kept, seal);
  }

  /** The kept body for `url`, if any. */
  body(url: string): Buffer | undefined {
    const entry = this.kept.get(url);
    if (entry) this.used.add(url);
    return entry?.body;
  }

  /** The verified check a valid seal vouches for (the kept body, these keys, this package), or undefined. */
  sealed(url: string, keys: readonly AttestationKey[], expected: ExpectedProduct): Verified | undefined {
    const entry = this.kept.get(url);
    if (!entry?.sealed || !this.seal?.check(entry.body, keys, expected, entry.sealed.result, entry.sealed.mac)) return undefined;
    this.used.add(url);
    return { state: 'verified', url, ...entry.sealed.result };
  }

  /** Keeps a fetched body (replacing a kept one), unsealed. */
  put(url: string, body: Buffer): void {
    if (body.length === 0 || body.length > MAX_ATTESTATION_BYTES) return;
    this.kept.set(url, { url, body });
    this.used.add(url);
    this.changed = true;
  }

  /** Seals the kept body of `url`, which `check` found verified for `expected` with `keys`. */
  remember(url: string, keys: readonly AttestationKey[], expected: ExpectedProduct, check: Verified): void {
    const entry = this.kept.get(url);
    if (!entry || !this.seal) return;
    const result: SealedResult = { digest: check.digest, productFile: check.productFile, productSha256: check.productSha256, bound: check.bound, signedBy: check.signedBy };
    const mac = this.seal.mac(entry.body, keys, expected, result);
    if (entry.sealed?.mac === mac) return;
    entry.sealed = { result, mac };
    this.changed = true;
  }

  /** Forgets a kept body that did not verify: the next `put` (a fresh copy) replaces it. */
  drop(url: string): void {
    if (this.kept.delete(url)) this.changed = true;
  }

  /** Writes the store when this run changed it: what this run used first, then the rest while it fits. */
  async save(): Promise<void> {
    if (!this.changed) return;
    const entries = [...this.kept.values()];
    const order = [...entries.filter((e) => this.used.has(e.url)), ...entries.filter((e) => !this.used.has(e.url))];
    const parts: Buffer[] = [Buffer.from(`${FORMAT}\n`)];
    let size = parts[0]!.length;
    for (const entry of order.slice(0, MAX_STORE_ENTRIES)) {
      const line = Buffer.from(`${JSON.stringify({ url: entry.url, size: entry.body.length, ...(entry.sealed ? { sealed: entry.sealed } : {}) })}\n`);
      if (size + line.length + entry.body.length > MAX_STORE_BYTES) break;
      parts.push(line, entry.body);
      size += line.length + entry.body.length;
    }
    await this.cache.keep(this.key, Buffer.concat(parts));
    this.changed = false;
  }
}
