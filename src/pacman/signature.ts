import { ReadableStream } from 'node:stream/web';
import type { enums, LiteralDataPacket, PublicKey, SignaturePacket, Subkey } from 'openpgp';
import { loadOpenpgp, openpgp } from './openpgp.js';
import { UserError, errorMessage } from '../errors.js';
import type { SigPolicy } from './siglevel.js';
import { findIssuer, fingerprintOf, keyTrust, primaryKeyLifetime, revocationReason, subkeyLifetime, type KeyLifetime, type Keyring } from './keyring.js';

/**
 * Detached OpenPGP signatures of packages and databases (`.sig` files, `%PGPSIG%` after base64), checked against a
 * pacman keyring. By default (key expiry `at-signature`) a signature is judged as of its own creation time: a
 * package signed in 2024 by a key that expired in 2026 still verifies in 2030, so archive snapshots stay
 * verifiable, while a signature made after the key expired, or by a revoked key, does not. Key expiry `now` judges
 * keys as pacman (gpgme) does today: a key (or signing subkey) expired by the time of verification is not valid,
 * so TrustedOnly refuses its signatures (pacman: "unknown trust") while TrustAll, which asks no validity, takes them.
 * The key checks run before the data is read, so on those failures a streamed `data` is left unconsumed.
 */

/** When a signing key's expiry is judged: at the signature's creation time (the default), or at verification. */
export type KeyExpiry = 'at-signature' | 'now';

export const KEY_EXPIRY_POLICIES: readonly KeyExpiry[] = ['at-signature', 'now'];
export const DEFAULT_KEY_EXPIRY: KeyExpiry = 'at-signature';

/** A key expiry policy from outside (a command-line value, a library caller); `where` names it in the error. */
export function parseKeyExpiry(value: string, where = '--key-expiry'): KeyExpiry {
  if (!(KEY_EXPIRY_POLICIES as readonly string[]).includes(value)) throw new UserError(`${where}: expected ${KEY_EXPIRY_POLICIES.join(' or ')}, not ${JSON.stringify(value)}`);
  return value as KeyExpiry;
}

/** How a policy reads in messages and verdicts. */
export function describeKeyExpiry(policy: KeyExpiry): string {
  return policy === 'now' ? 'signing keys judged now, an expired one untrusted (--key-expiry now)' : 'signing keys judged when each signature was made (--key-expiry at-signature)';
}

/**
 * Which check failed. `expired-key`: made outside the signing key's validity window (after it expired, or before it
 * was created). `malformed`: unreadable signature, key unfit for signing, or a cryptographic check openpgp.js refuses
 * (e.g. an insecure hash algorithm) other than a data mismatch, which is `bad-signature`.
 */
export type SignatureFailure = 'malformed' | 'unknown-key' | 'revoked' | 'expired-key' | 'untrusted' | 'bad-signature' | 'missing';

/** A UserError whose `reason` says which check failed. */
export class SignatureError extends UserError {
  constructor(
    readonly reason: SignatureFailure,
    message: string,
  ) {
    super(message);
    this.name = 'SignatureError';
  }
}

export interface VerifiedSignature {
  /** Upper-case fingerprint of the signer's primary key (what keyrings list). */
  fingerprint: string;
  /** The primary key or subkey that made the signature. */
  signingKeyFingerprint: string;
  signerUserId: string | undefined;
  created: Date;
}

/** pacman's TrustedOnly (the key must be valid in the web of trust) or TrustAll (any key in the keyring will do). */
export type SignatureTrust = 'trustedOnly' | 'trustAll';

export interface VerifyDetachedOptions {
  data: AsyncIterable<Uint8Array> | Uint8Array;
  /** The binary signature. */
  signature: Uint8Array;
  keyring: Keyring;
  /** Names the signed thing in errors, e.g. `package foo-1.0-1`. */
  what: string;
  /** Default trustedOnly. */
  trust?: SignatureTrust;
  /** Default at-signature. */
  keyExpiry?: KeyExpiry;
  /** The time of verification, for key expiry `now` (default: the clock). */
  now?: Date;
}

/**
 * Checks, in order: the signature parses (one data signature packet); its issuer is in the keyring; the key (and
 * signing subkey) is not revoked; the signature was made within the key's validity window; unless `trust` is
 * trustAll, the key is valid in the keyring's web of trust; and finally the data hashes to the signed digest (read
 * as a stream when `data` is one, never buffered whole). Throws SignatureError on any failure.
 */
export async function verifyDetachedSignature(options: VerifyDetachedOptions): Promise<VerifiedSignature> {
  const { keyring, what } = options;
  const packet = await readSignaturePacket(options.signature, what);
  const created = packet.created as Date;

  const issuer = findIssuer(keyring, packet);
  if (issuer === undefined) {
    const id = packet.issuerFingerprint ? Buffer.from(packet.issuerFingerprint).toString('hex').toUpperCase() : packet.issuerKeyID.toHex().toUpperCase();
    throw new SignatureError('unknown-key', `${what}: signed by unknown key ${id} (not in the keyring)`);
  }
  const { key, signingKey } = issuer;
  const fingerprint = fingerprintOf(key);
  const signer = `key ${fingerprint}${describeUser(key)}`;

  const revoked = await revocationReason(keyring, key, signingKey);
  if (revoked !== undefined) throw new SignatureError('revoked', `${what}: signed by a revoked key: ${revoked}`);

  const subkeySigner = `subkey ${fingerprintOf(signingKey)} of ${signer}`;
  checkLifetime(await primaryKeyLifetime(key, created), created, signer, what);
  if (signingKey !== key) checkLifetime(await subkeyLifetime(key, signingKey as Subkey, created), created, subkeySigner, what);
  // The moment keys and trust are judged at: the signature's, or (key expiry `now`) the verification's.
  let judgedAt = created;
  let expiredNow: string | undefined;
  if (options.keyExpiry === 'now') {
    judgedAt = options.now ?? new Date();
    expiredNow = expiredBy(await primaryKeyLifetime(key, judgedAt), judgedAt, signer);
    if (signingKey !== key) expiredNow ??= expiredBy(await subkeyLifetime(key, signingKey as Subkey, judgedAt), judgedAt, subkeySigner);
  }
  await checkCanSign(key, signingKey, what, signer);

  if ((options.trust ?? 'trustedOnly') === 'trustedOnly') {
    if (expiredNow !== undefined) {
      throw new SignatureError('expired-key', `${what}: ${expiredNow}: --key-expiry now trusts no expired key (pacman: "unknown trust"); at-signature, the default, accepts signatures made before it expired`);
    }
    const trust = await keyTrust(keyring, key, judgedAt);
    if (!trust.valid) {
      throw new SignatureError(
        'untrusted',
        `${what}: ${signer} is not trusted: certified by ${trust.certifiers.length} of the ${keyring.requiredCertifications} trusted master keys required`,
      );
    }
  }

  const failure = await verifyData(packet, signingKey, options.data, created);
  if (failure !== undefined) {
    if (/Signed digest did not match|Signature verification failed/.test(failure)) {
      throw new SignatureError('bad-signature', `${what}: bad signature from ${signer}: the data does not match`);
    }
    throw new SignatureError('malformed', `${what}: signature from ${signer} cannot be verified: ${failure}`);
  }
  return { fingerprint, signingKeyFingerprint: fingerprintOf(signingKey), signerUserId: primaryUserId(key), created };
}

/** One side of a pacman SigLevel: when to check, and which keys to accept. */
export interface SignaturePolicy {
  level: 'never' | 'optional' | 'required';
  trust: SignatureTrust;
}

/** The policy for one side (package or database) of a parsed SigLevel. */
export function signaturePolicy(side: SigPolicy): SignaturePolicy {
  return { level: side.check, trust: side.trustAll ? 'trustAll' : 'trustedOnly' };
}

/**
 * pacman's SigLevel for one package or database: Never skips the check (undefined), Optional checks a signature
 * only when there is one, Required demands one.
 */
export async function checkPackageSignature(
  policy: SignaturePolicy,
  signature: Uint8Array | undefined,
  target: { data: AsyncIterable<Uint8Array> | Uint8Array; keyring: Keyring; what: string; keyExpiry?: KeyExpiry },
): Promise<VerifiedSignature | undefined> {
  if (policy.level === 'never') return undefined;
  if (signature === undefined) {
    if (policy.level === 'optional') return undefined;
    throw new SignatureError('missing', `${target.what}: missing required signature`);
  }
  return verifyDetachedSignature({ ...target, signature, trust: policy.trust });
}

async function readSignaturePacket(bytes: Uint8Array, what: string): Promise<SignaturePacket> {
  let packets: SignaturePacket[];
  try {
    packets = [...(await (await loadOpenpgp()).readSignature({ binarySignature: bytes })).packets];
  } catch (err) {
    throw new SignatureError('malformed', `${what}: not an OpenPGP signature: ${errorMessage(err)}`);
  }
  // pacman's signatures carry exactly one; more would raise the question of which must hold.
  if (packets.length !== 1) throw new SignatureError('malformed', `${what}: expected one signature packet, found ${packets.length}`);
  const packet = packets[0] as SignaturePacket;
  const { enums } = openpgp();
  if (packet.signatureType !== enums.signature.binary && packet.signatureType !== enums.signature.text) {
    throw new SignatureError('malformed', `${what}: not a signature of data (signature type ${packet.signatureType})`);
  }
  if (packet.created === null) throw new SignatureError('malformed', `${what}: signature has no creation time`);
  return packet;
}

/** `KEY expired DATE` when the lifetime its self-signatures in force at `now` give has ended by then. */
function expiredBy(lifetime: KeyLifetime | undefined, now: Date, signer: string): string | undefined {
  return lifetime?.expires !== undefined && now >= lifetime.expires ? `${signer} expired ${iso(lifetime.expires)}` : undefined;
}

function checkLifetime(lifetime: KeyLifetime | undefined, created: Date, signer: string, what: string): void {
  if (lifetime === undefined) throw new SignatureError('malformed', `${what}: ${signer} has no valid self-signature or binding signature`);
  if (created < lifetime.created) {
    throw new SignatureError('expired-key', `${what}: signature made ${iso(created)}, before ${signer} was created (${iso(lifetime.created)})`);
  }
  if (lifetime.expires !== undefined && created >= lifetime.expires) {
    throw new SignatureError('expired-key', `${what}: signature made ${iso(created)}, after ${signer} expired (${iso(lifetime.expires)})`);
  }
}

/** The signing key must be flagged for signing (subkeys also need their back-signature); no dates are judged here. */
async function checkCanSign(key: PublicKey, signingKey: PublicKey | Subkey, what: string, signer: string): Promise<void> {
  try {
    const usable = await key.getSigningKey(signingKey.getKeyID(), null);
    if (usable.getKeyID().equals(signingKey.getKeyID())) return;
  } catch (err) {
    throw new SignatureError('malformed', `${what}: ${signer} cannot make this signature: ${errorMessage(err)}`);
  }
  throw new SignatureError('malformed', `${what}: ${fingerprintOf(signingKey)} of ${signer} is not a signing key`);
}

/**
 * Hashes the data and checks the signature cryptographically. `date` is the signature's own creation time, so its
 * own expiry (if any) is judged then, like the key's. The key's dates were checked before, by our own rules:
 * openpgp.verify() would re-judge the key with the self-signatures it finds valid at that moment, which fails for
 * minimized keyrings whose only self-signature is newer than the data signature.
 * Returns openpgp.js's reason when the signature does not verify; errors reading `data` propagate unchanged.
 */
async function verifyData(packet: SignaturePacket, signingKey: PublicKey | Subkey, data: AsyncIterable<Uint8Array> | Uint8Array, created: Date): Promise<string | undefined> {
  const { createMessage, enums: values } = openpgp();
  const message = await createMessage({ binary: toWebStream(data) });
  const literal = message.packets.findPacket(values.packet.literalData) as LiteralDataPacket;
  // For a stream, the signature hashes a passive clone that only flows while the original is read: start the
  // verification (which makes the clone), then drain the original.
  const verified = packet.verify(signingKey.keyPacket, packet.signatureType as enums.signature, literal, created, true).then(
    () => undefined,
    (err: unknown) => errorMessage(err),
  );
  const original = message.getLiteralData();
  if (original !== null && !(original instanceof Uint8Array)) {
    // getReader(), not async iteration: the clone swapped the stream's reader methods, not its iterator.
    const reader = (original as ReadableStream<Uint8Array>).getReader();
    while (!(await reader.read()).done);
  }
  return verified;
}

function toWebStream(data: AsyncIterable<Uint8Array> | Uint8Array): Uint8Array | ReadableStream<Uint8Array> {
  if (data instanceof Uint8Array) return data;
  return ReadableStream.from(data);
}

function primaryUserId(key: PublicKey): string | undefined {
  const primary = key.users.find((user) => user.selfCertifications.some((sig) => sig.isPrimaryUserID === true));
  return (primary ?? key.users.find((user) => user.userID !== null))?.userID?.userID;
}

function describeUser(key: PublicKey): string {
  const uid = primaryUserId(key);
  return uid === undefined ? '' : ` (${uid})`;
}

function iso(date: Date): string {
  return date.toISOString().replace('.000Z', 'Z');
}
