import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { enums, PublicKey, SignaturePacket, Subkey, User } from 'openpgp';
import { loadOpenpgp, openpgp } from './openpgp.js';
import { UserError, errorMessage } from '../errors.js';

/**
 * A pacman keyring in archlinux-keyring's format, and a simplified, documented version of the web of trust that
 * `pacman-key --populate` sets up:
 *
 * - `<name>.gpg`: public keys, binary or ASCII-armored (one or more armor blocks).
 * - `<name>-trusted`: `FINGERPRINT:LEVEL:` lines. pacman-key local-signs these keys with a generated master key and
 *   gives them marginal owner trust (level 4); we skip the generated key and treat every listed key as a trusted
 *   master key.
 * - `<name>-revoked`: one fingerprint per line; such keys are never valid.
 *
 * As `pacman-key --populate`, only `<name>.gpg` must exist: a missing (or empty) `-trusted` file trusts no key, and
 * a missing `-revoked` file revokes none. Real third-party keyring packages often ship `<name>.gpg` alone; their keys
 * are then in the keyring but not valid, so signatures by them pass only under TrustAll (pacman-key leaves them
 * without local signature or owner trust, and pacman's TrustedOnly refuses them the same way).
 *
 * A key is valid when it is itself a trusted master key, or when at least `requiredCertifications` distinct trusted
 * master keys (3 in archlinux-keyring's marginal model, as gpg's default marginals-needed) hold a valid
 * certification on one of its valid user IDs. Master keys in the revoked list or carrying a revocation signature
 * certify nothing. Trust is not transitive beyond the masters: a certification from another valid key counts for
 * nothing, as in pacman's setup where only the masters have owner trust.
 *
 * Time: keys are judged as of a given moment (a data signature's creation time), using the self-signature that was
 * in force then. archlinux.gpg is minimized — a key often keeps only its newest self-signature — so when no
 * self-signature is that old, the oldest one known stands in for it. A certification counts when its issuer was a
 * valid master when it was made, even if it was made after the moment being judged (a refreshed certification in a
 * newer keyring still vouches for the key); it must not have expired by that moment, and the master's newest
 * revocation of it must not be newer than it. A revocation signature on a key voids it at any time.
 */

export interface Keyring {
  /** Every key of the key file, by upper-case primary-key fingerprint. */
  readonly keys: ReadonlyMap<string, PublicKey>;
  /** Upper-case fingerprints from `<name>-trusted`. */
  readonly trusted: ReadonlySet<string>;
  /** Upper-case fingerprints from `<name>-revoked`. */
  readonly revoked: ReadonlySet<string>;
  /** sha256 (hex) of the key file's bytes as read. */
  readonly keyFileSha256: string;
  /** How many distinct trusted master keys must certify a key that is not itself trusted. */
  readonly requiredCertifications: number;
}

export interface KeyringOptions {
  /** Default 3, archlinux-keyring's marginal trust model. */
  requiredCertifications?: number;
}

export interface KeyringFiles {
  /** Contents of `<name>.gpg`. */
  keys: Uint8Array;
  /** Contents of `<name>-trusted`; absent means none (no key trusted). */
  trusted?: string | Uint8Array;
  /** Contents of `<name>-revoked`; absent means none. */
  revoked?: string | Uint8Array;
  /** Names the keyring in error messages (e.g. a path prefix). */
  what?: string;
}

/** What a lock file records to pin the keyring: sorted fingerprints and the key file's digest. */
export interface KeyringIdentity {
  trusted: string[];
  revoked: string[];
  keys: string;
}

export const DEFAULT_REQUIRED_CERTIFICATIONS = 3;

const FINGERPRINT = /^(?:[0-9A-F]{40}|[0-9A-F]{64})$/;

/** Reads `<dir>/<name>.gpg` and, when present, `<dir>/<name>-trusted` and `<dir>/<name>-revoked`, as pacman-key does. */
export async function loadKeyringFromDirectory(dir: string, name = 'archlinux', options: KeyringOptions = {}): Promise<Keyring> {
  const base = join(dir, name);
  const read = async (path: string, optional: boolean): Promise<Buffer | undefined> => {
    try {
      return await readFile(path);
    } catch (err) {
      if (optional && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new UserError(`keyring: cannot read ${path}: ${errorMessage(err)}`);
    }
  };
  const keys = (await read(`${base}.gpg`, false)) as Buffer;
  const trusted = await read(`${base}-trusted`, true);
  const revoked = await read(`${base}-revoked`, true);
  return loadKeyring({ keys, trusted, revoked, what: base }, options);
}

/** Builds a keyring from the three files' contents. */
export async function loadKeyring(files: KeyringFiles, options: KeyringOptions = {}): Promise<Keyring> {
  const what = files.what ?? 'keyring';
  const requiredCertifications = options.requiredCertifications ?? DEFAULT_REQUIRED_CERTIFICATIONS;
  if (!Number.isInteger(requiredCertifications) || requiredCertifications < 1) {
    throw new UserError(`${what}: required certifications must be a positive integer, not ${requiredCertifications}`);
  }
  const keys = new Map<string, PublicKey>();
  for (const key of await readKeyFile(files.keys, `${what}.gpg`)) {
    const fingerprint = fingerprintOf(key);
    if (keys.has(fingerprint)) throw new UserError(`${what}.gpg: key ${fingerprint} appears twice`);
    keys.set(fingerprint, key);
  }
  const trusted = new Set(files.trusted === undefined ? [] : parseTrusted(files.trusted, `${what}-trusted`));
  const revoked = new Set(files.revoked === undefined ? [] : parseRevoked(files.revoked, `${what}-revoked`));
  const keyFileSha256 = createHash('sha256').update(files.keys).digest('hex');
  return { keys, trusted, revoked, keyFileSha256, requiredCertifications };
}

/** Stable across loads and independent of file order: sorted fingerprints and the key file's sha256. */
export function keyringIdentity(keyring: Keyring): KeyringIdentity {
  return {
    trusted: [...keyring.trusted].sort(),
    revoked: [...keyring.revoked].sort(),
    keys: `sha256:${keyring.keyFileSha256}`,
  };
}

/** Parses `<name>-trusted`: `FINGERPRINT:LEVEL:` lines; blank lines and `#` comments are skipped. */
export function parseTrusted(input: string | Uint8Array, what: string): string[] {
  return fingerprintLines(input, what, (line) => line.split(':')[0] ?? '');
}

/** Parses `<name>-revoked`: one fingerprint per line; blank lines and `#` comments are skipped. */
export function parseRevoked(input: string | Uint8Array, what: string): string[] {
  return fingerprintLines(input, what, (line) => line);
}

function fingerprintLines(input: string | Uint8Array, what: string, field: (line: string) => string): string[] {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('utf8');
  const out: string[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fingerprint = field(line).trim().toUpperCase();
    if (!FINGERPRINT.test(fingerprint)) {
      throw new UserError(`${what}: line ${index + 1}: expected a 40 or 64 hex digit fingerprint, found ${JSON.stringify(line)}`);
    }
    out.push(fingerprint);
  });
  return out;
}

async function readKeyFile(bytes: Uint8Array, what: string): Promise<PublicKey[]> {
  const { readKeys } = await loadOpenpgp();
  try {
    const head = Buffer.from(bytes.subarray(0, 64)).toString('latin1');
    if (!head.trimStart().startsWith('-----BEGIN PGP')) return await readKeys({ binaryKeys: bytes });
    // openpgp.js reads one armor block at a time; key files may concatenate several.
    const text = Buffer.from(bytes).toString('utf8');
    const blocks = text.match(/-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*?-----END PGP PUBLIC KEY BLOCK-----/g) ?? [];
    if (blocks.length === 0) throw new Error('no PGP PUBLIC KEY BLOCK found');
    const keys: PublicKey[] = [];
    for (const block of blocks) keys.push(...(await readKeys({ armoredKeys: block })));
    return keys;
  } catch (err) {
    throw new UserError(`${what}: not a readable OpenPGP key file: ${errorMessage(err)}`);
  }
}

export function fingerprintOf(key: PublicKey | Subkey): string {
  return key.getFingerprint().toUpperCase();
}

/** The keyring key holding the primary key or subkey that issued `signature`, preferring its issuer fingerprint. */
export function findIssuer(keyring: Keyring, signature: SignaturePacket): { key: PublicKey; signingKey: PublicKey | Subkey } | undefined {
  const issuerFingerprint = signature.issuerFingerprint ? Buffer.from(signature.issuerFingerprint).toString('hex').toUpperCase() : undefined;
  for (const key of keyring.keys.values()) {
    for (const component of key.getKeys(signature.issuerKeyID)) {
      if (issuerFingerprint === undefined || fingerprintOf(component) === issuerFingerprint) return { key, signingKey: component };
    }
  }
  return undefined;
}

/** Why the key (or its signing subkey) is revoked, or undefined when it is not. */
export async function revocationReason(keyring: Keyring, key: PublicKey, signingKey?: PublicKey | Subkey): Promise<string | undefined> {
  const fingerprint = fingerprintOf(key);
  if (keyring.revoked.has(fingerprint)) return `key ${fingerprint} is listed as revoked by the keyring`;
  if (signingKey !== undefined && signingKey !== key && keyring.revoked.has(fingerprintOf(signingKey))) {
    return `subkey ${fingerprintOf(signingKey)} is listed as revoked by the keyring`;
  }
  const primary = key.keyPacket;
  if (await anyValid(key.revocationSignatures, (sig) => verifyTimeless(sig, primary, openpgp().enums.signature.keyRevocation, { key: primary }))) {
    return `key ${fingerprint} carries a revocation signature`;
  }
  if (signingKey !== undefined && signingKey !== key) {
    const subkey = signingKey as Subkey;
    const data = { key: primary, bind: subkey.keyPacket };
    if (await anyValid(subkey.revocationSignatures, (sig) => verifyTimeless(sig, primary, openpgp().enums.signature.subkeyRevocation, data))) {
      return `subkey ${fingerprintOf(subkey)} carries a revocation signature`;
    }
  }
  return undefined;
}

/** The window a key was valid in, as its self-signatures in force at `at` say (`expires` undefined = never). */
export interface KeyLifetime {
  created: Date;
  expires: Date | undefined;
}

/** The primary key's lifetime as of `at`; undefined when it has no valid self-signature at all. */
export async function primaryKeyLifetime(key: PublicKey, at: Date): Promise<KeyLifetime | undefined> {
  const primary = key.keyPacket;
  const selfSignatures: SignaturePacket[] = [];
  for (const user of key.users) {
    if (user.userID === null) continue;
    const data = { userID: user.userID, key: primary };
    selfSignatures.push(...(await validOnes(user.selfCertifications, (sig) => verifyTimeless(sig, primary, sig.signatureType ?? openpgp().enums.signature.certGeneric, data))));
  }
  const uidSignature = inForceAt(selfSignatures, at);
  if (uidSignature === undefined) return undefined;
  let expires = keyExpiry(primary.created, uidSignature);
  // Direct-key signatures can carry an expiry too (openpgp.js keeps them outside its typings).
  const direct = (key as unknown as { directSignatures?: SignaturePacket[] }).directSignatures ?? [];
  const directSignature = inForceAt(await validOnes(direct, (sig) => verifyTimeless(sig, primary, openpgp().enums.signature.key, { key: primary })), at);
  const directExpiry = directSignature === undefined ? undefined : keyExpiry(primary.created, directSignature);
  if (directExpiry !== undefined && (expires === undefined || directExpiry < expires)) expires = directExpiry;
  return { created: primary.created, expires };
}

/** A subkey's own lifetime as of `at`, from its binding signature; undefined when none verifies. */
export async function subkeyLifetime(key: PublicKey, subkey: Subkey, at: Date): Promise<KeyLifetime | undefined> {
  const primary = key.keyPacket;
  const data = { key: primary, bind: subkey.keyPacket };
  const binding = inForceAt(await validOnes(subkey.bindingSignatures, (sig) => verifyTimeless(sig, primary, openpgp().enums.signature.subkeyBinding, data)), at);
  if (binding === undefined) return undefined;
  return { created: subkey.keyPacket.created, expires: keyExpiry(subkey.keyPacket.created, binding) };
}

export type KeyTrust =
  | { valid: true; because: 'trusted'; certifiers: [] }
  | { valid: true; because: 'certified'; certifiers: string[] }
  | { valid: false; certifiers: string[] };

/**
 * Whether `key` is valid in the keyring's web of trust as of `at` (see the module comment). Revocation of `key`
 * itself is the caller's business (revocationReason); this only counts trust.
 */
export async function keyTrust(keyring: Keyring, key: PublicKey, at: Date): Promise<KeyTrust> {
  const fingerprint = fingerprintOf(key);
  if (keyring.trusted.has(fingerprint)) return { valid: true, because: 'trusted', certifiers: [] };
  const certifiers = new Set<string>();
  for (const master of await usableMasters(keyring)) {
    if (master === key) continue;
    for (const user of key.users) {
      if (await certifiedBy(key, user, master, at)) {
        certifiers.add(fingerprintOf(master));
        break;
      }
    }
  }
  const list = [...certifiers].sort();
  return list.length >= keyring.requiredCertifications ? { valid: true, because: 'certified', certifiers: list } : { valid: false, certifiers: list };
}

/** Trusted master keys present in the key file and not revoked. */
async function usableMasters(keyring: Keyring): Promise<PublicKey[]> {
  const masters: PublicKey[] = [];
  for (const fingerprint of keyring.trusted) {
    const master = keyring.keys.get(fingerprint);
    if (master !== undefined && (await revocationReason(keyring, master)) === undefined) masters.push(master);
  }
  return masters;
}

/** Does `master` hold a standing, valid certification on this (valid, unrevoked) user ID of `key`? */
async function certifiedBy(key: PublicKey, user: User, master: PublicKey, at: Date): Promise<boolean> {
  if (user.userID === null) return false;
  const primary = key.keyPacket;
  const data = { userID: user.userID, key: primary };
  const selfValid = await anyValid(user.selfCertifications, (sig) => verifyTimeless(sig, primary, sig.signatureType ?? openpgp().enums.signature.certGeneric, data));
  if (!selfValid) return false;
  const issuedBy = (sig: SignaturePacket): boolean => sig.issuerKeyID.equals(master.getKeyID());
  const byOwner = user.revocationSignatures.filter((sig) => sig.issuerKeyID.equals(key.getKeyID()));
  if (await anyValid(byOwner, (sig) => verifyTimeless(sig, primary, openpgp().enums.signature.certRevocation, data))) return false;

  const masterPacket = master.keyPacket;
  const certifications = await validOnes(user.otherCertifications.filter(issuedBy), (sig) =>
    verifyTimeless(sig, masterPacket, sig.signatureType ?? openpgp().enums.signature.certGeneric, data),
  );
  const revocations = await validOnes(user.revocationSignatures.filter(issuedBy), (sig) =>
    verifyTimeless(sig, masterPacket, openpgp().enums.signature.certRevocation, data),
  );
  const newestRevocation = Math.max(-Infinity, ...revocations.map(createdMs));
  for (const certification of certifications) {
    const made = new Date(createdMs(certification));
    if (createdMs(certification) <= newestRevocation) continue;
    if (!certification.signatureNeverExpires && at >= certification.getExpirationTime()) continue;
    const masterLife = await primaryKeyLifetime(master, made);
    if (masterLife === undefined || made < masterLife.created || (masterLife.expires !== undefined && made >= masterLife.expires)) continue;
    return true;
  }
  return false;
}

/** The self-signature in force at `at` (newest not after it), or the oldest known when all are newer. */
function inForceAt(signatures: SignaturePacket[], at: Date): SignaturePacket | undefined {
  const sorted = [...signatures].sort((a, b) => createdMs(a) - createdMs(b));
  let chosen: SignaturePacket | undefined;
  for (const sig of sorted) if (createdMs(sig) <= at.getTime()) chosen = sig;
  return chosen ?? sorted[0];
}

function keyExpiry(keyCreated: Date, signature: SignaturePacket): Date | undefined {
  // openpgp.js sets keyNeverExpires to false only when a non-zero key expiration time subpacket is present.
  if (signature.keyNeverExpires !== false || !signature.keyExpirationTime) return undefined;
  return new Date(keyCreated.getTime() + signature.keyExpirationTime * 1000);
}

/**
 * Cryptographic and structural checks only. openpgp.js skips every date check when given a null date; its typings
 * do not admit null, hence the cast.
 */
function verifyTimeless(sig: SignaturePacket, key: PublicKey['keyPacket'] | Subkey['keyPacket'], type: enums.signature, data: object): Promise<void> {
  return sig.verify(key, type, data, null as unknown as Date);
}

function createdMs(signature: SignaturePacket): number {
  return signature.created?.getTime() ?? 0;
}

/** The signatures for which `check` resolves; its rejections mean "not valid", never an error. */
async function validOnes(signatures: SignaturePacket[], check: (sig: SignaturePacket) => Promise<void>): Promise<SignaturePacket[]> {
  const out: SignaturePacket[] = [];
  for (const sig of signatures) {
    try {
      await check(sig);
      out.push(sig);
    } catch {
      // invalid or unsupported signature: ignored, as gpg does
    }
  }
  return out;
}

async function anyValid(signatures: SignaturePacket[], check: (sig: SignaturePacket) => Promise<void>): Promise<boolean> {
  return (await validOnes(signatures, check)).length > 0;
}
