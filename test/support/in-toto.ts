import { createHash, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { compressToBuffer, getCompressor } from '../../src/compress/index.js';
import { canonicalJson } from '../../src/oci/canonical-json.js';

/**
 * rebuilderd's attestations and keys, made the way rebuilderd (v0.27, Rust `in-toto` crate 0.4) makes them, for
 * the fake rebuilderd servers and the attestation tests. Written from the Rust sources, independently of
 * src/status/attestation.ts (which follows securesystemslib's canonical JSON): the two must agree.
 */

export interface Ed25519KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The 32 raw public key bytes. */
  raw: Buffer;
}

export function makeKeyPair(): Ed25519KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, raw: rawPublicKey(publicKey) };
}

/** The 32 raw bytes of an ed25519 key (of its public half, for a private key). */
function rawPublicKey(key: KeyObject): Buffer {
  const publicKey = key.type === 'public' ? key : createPublicKey(key);
  return Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
}

/**
 * The bytes the Rust crate signs: serde_json's compact form with sorted keys (what canonicalJson writes: keys in
 * code point order, JSON.stringify's escaping, which is serde_json's), then every `\n` escape turned back into a
 * newline (`Metablock::new`'s `.replace("\\n", "\n")`, for securesystemslib compatibility).
 */
function rustSigningBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value).replaceAll('\\n', '\n'), 'utf8');
}

/**
 * The key id rebuilderd's keys have: keys read from PKCS#8 get `keyid_hash_algorithms` ["sha256", "sha512"]
 * ("python_sslib_compatibility"), and the id is sha256 of the canonical securesystemslib key form.
 */
export function rebuilderdKeyId(key: KeyObject): string {
  const form = { keytype: 'ed25519', scheme: 'ed25519', keyid_hash_algorithms: ['sha256', 'sha512'], keyval: { public: rawPublicKey(key).toString('hex') } };
  return createHash('sha256').update(rustSigningBytes(form)).digest('hex');
}

/**
 * A public key as rebuilderd's `/api/v1/meta/public-keys` serves it: the Rust crate's SPKI (an ed25519
 * AlgorithmIdentifier with a NULL parameter, which RFC 8410 forbids and OpenSSL refuses) in the `pem` crate's
 * encoding (64-column base64, CRLF line ends, a final CRLF).
 */
export function rebuilderdPublicKeyPem(key: KeyObject): string {
  const der = Buffer.concat([Buffer.from('302c300706032b65700500032100', 'hex'), rawPublicKey(key)]);
  const lines = der.toString('base64').match(/.{1,64}/g)!;
  return ['-----BEGIN PUBLIC KEY-----', ...lines, '-----END PUBLIC KEY-----', ''].join('\r\n');
}

/** The body of `/api/v1/meta/public-keys` as the daemon's code sends it (one object, not the OpenAPI's array). */
export function rebuilderdPublicKeysBody(keys: readonly KeyObject[]): string {
  return JSON.stringify({ current: keys.map(rebuilderdPublicKeyPem) });
}

/** An ed25519 public key file as `in-toto-keygen -t ed25519` writes it (securesystemslib JSON, Python's json.dumps). */
export function securesystemslibPublicKey(key: KeyObject): string {
  return `{"keytype": "ed25519", "scheme": "ed25519", "keyid_hash_algorithms": ["sha256", "sha512"], "keyval": {"public": "${rawPublicKey(key).toString('hex')}"}}`;
}

export interface RebuilderdLinkOptions {
  /** The artifact's file name, the last segment of its URL (Arch's %FILENAME%, an epoch's ':' kept). */
  fileName: string;
  /** The rebuilt artifact's bytes: its sha256 and sha512 go into the link. */
  content: Buffer;
  /** The build input (the material): rebuilderd uses the first artifact of the package base; default the artifact. */
  input?: { fileName: string; content: Buffer };
  /** The worker's private key: the link's first signature. */
  worker: KeyObject;
  /** The daemon's private key: appends its signature, as v1 does when serving (`transparently_sign_attestations`). */
  daemon?: KeyObject;
  /** null as rebuilderd writes it; an object for Debian's in-toto, which refuses null. */
  environment?: Record<string, string> | null;
  /** Changes the link before it is signed: a validly signed link that says something else. */
  edit?: (signed: Record<string, unknown>) => void;
}

function hashes(content: Buffer): Record<string, string> {
  return { sha256: createHash('sha256').update(content).digest('hex'), sha512: createHash('sha512').update(content).digest('hex') };
}

function signature(signed: unknown, key: KeyObject): { keyid: string; sig: string } {
  return { keyid: rebuilderdKeyId(key), sig: sign(null, rustSigningBytes(signed), key).toString('hex') };
}

/**
 * A signed link as rebuilderd's worker makes it (`in_toto_run("rebuild <file>", None, [input], [output], [], key,
 * ["sha512", "sha256"], [inputs/, out/])`, then `serde_json::to_string`): fields in the Rust struct's order,
 * materials and products by file name with both hashes, `environment` null, empty byproducts and command, no
 * whitespace. With `daemon`, the daemon's signature follows the worker's, over the same signed part.
 */
export function makeRebuilderdLink(opts: RebuilderdLinkOptions): Buffer {
  const input = opts.input ?? { fileName: opts.fileName, content: opts.content };
  const signed: Record<string, unknown> = {
    _type: 'link',
    name: `rebuild ${opts.fileName}`,
    materials: { [input.fileName]: hashes(input.content) },
    products: { [opts.fileName]: hashes(opts.content) },
    environment: opts.environment === undefined ? null : opts.environment,
    byproducts: {},
    command: [],
  };
  opts.edit?.(signed);
  const signatures = [signature(signed, opts.worker)];
  if (opts.daemon) signatures.push(signature(signed, opts.daemon));
  return Buffer.from(JSON.stringify({ signatures, signed }), 'utf8');
}

/** A served link as parsed JSON, for tests that change it. */
export interface LinkDocument {
  signatures: { keyid: string; sig: string }[];
  signed: { _type: string; products: Record<string, Record<string, string>>; byproducts: Record<string, unknown>; [field: string]: unknown };
}

/** Parses a served link, changes it and serializes it again: tampering after signing. */
export function tamperLink(bytes: Buffer, change: (doc: LinkDocument) => void, indent?: number): Buffer {
  const doc = JSON.parse(bytes.toString('utf8')) as LinkDocument;
  change(doc);
  return Buffer.from(JSON.stringify(doc, null, indent));
}

/** zstd-compressed, as rebuilderd stores attestations and serves them to clients that accept zstd. */
export function zstdCompressed(bytes: Buffer): Promise<Buffer> {
  return compressToBuffer([bytes], getCompressor('zstd'));
}
