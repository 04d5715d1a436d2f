import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { Readable } from 'node:stream';
import { decompressAuto, detectCompression } from '../compress/index.js';
import { UserError } from '../errors.js';
import { sha256, type Digest } from '../oci/digest.js';
import { parseStrictJson } from '../util/json-keys.js';
import { byteOrder } from '../util/order.js';
import { displayName } from '../util/raw-name.js';

/**
 * rebuilderd's attestations: in-toto v0.9 links ("Metablocks") as the Rust `in-toto` crate writes them, signed
 * with ed25519 by the worker that rebuilt the package and again by the daemon that serves it; their public keys as
 * rebuilderd publishes them (PEM) or as in-toto's own tools write them (securesystemslib JSON).
 *
 * What is signed is the canonical JSON of the `signed` object in securesystemslib's dialect (keys sorted by code
 * point, no whitespace, integers only, only `"` and `\` escaped). The Rust crate makes the same bytes differently
 * (serde_json escaping, then every `\n` pair turned back into a newline), and the two agree on every string
 * without other control characters and without a backslash before an `n`: strings outside that set are refused
 * rather than guessed at.
 */

/** An attestation is a few KiB; anything larger, served or decoded, is refused. */
export const MAX_ATTESTATION_BYTES = 1024 * 1024;
/** Key files are a few hundred bytes each. */
const MAX_KEY_TEXT = 64 * 1024;
const MAX_SIGNATURES = 64;

export interface AttestationKey {
  /** The in-toto key id as links name it: securesystemslib's (and rebuilderd's), with `keyid_hash_algorithms`. */
  keyId: string;
  /** `sha256:<hex>` of the key's RFC 8410 SPKI DER, whatever shape it came in: for display and pinning. */
  fingerprint: string;
  /** An ed25519 public key. */
  key: KeyObject;
}

export interface ExpectedProduct {
  name: string;
  /** Full version, `epoch:pkgver-pkgrel` when there is an epoch. */
  version: string;
  arch: string;
  /** The package file name from the lock (Arch keeps an epoch's `:` in it). */
  fileName?: string;
  /** The locked sha256 of the package file, 64 hex digits. */
  sha256?: string;
}

export interface VerifiedAttestation {
  /** sha256 of the link's JSON bytes as served, after zstd decoding. */
  digest: Digest;
  /** The link's `name`: `rebuild <file name>` for rebuilderd. */
  stepName: string;
  /** The product naming the package. */
  productFile: string;
  /** Its sha256 as the link records it. */
  productSha256: string;
  /** Whether the product's sha256 was checked against the locked one (it is equal, else verification fails). */
  bound: boolean;
  /** Fingerprints of the given keys whose signature verified, sorted. */
  signedBy: string[];
}

// --- keys ---------------------------------------------------------------------------------------------------

/** SPKI prefixes of an ed25519 key: RFC 8410 (parameters absent) and the Rust in-toto crate's (a NULL parameter). */
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
const SPKI_ED25519_NULL_PARAMETER = Buffer.from('302c300706032b65700500032100', 'hex');
const HEX_32 = /^[0-9a-f]{64}$/;

/**
 * A rebuilder's public keys from text (attest/signing-key.ts reads repro-oci's own): one or several PEM `PUBLIC
 * KEY` blocks (LF or CRLF; rebuilderd's SPKI with a NULL algorithm parameter, which OpenSSL refuses, is read as
 * the key it holds), a securesystemslib/in-toto JSON public key (`in-toto-keygen -t ed25519`'s .pub), or
 * rebuilderd's `/api/v1/meta/public-keys` body (`{"current": [PEM…]}`).
 */
export function parseRebuilderKeys(text: string, what: string): AttestationKey[] {
  if (text.length > MAX_KEY_TEXT) fail(what, `${text.length} characters is more than the ${MAX_KEY_TEXT} a key file may have`);
  const trimmed = text.trim();
  if (trimmed === '') fail(what, 'no public key in it');
  const raws = trimmed.startsWith('{') ? rawKeysFromJson(trimmed, what) : rawKeysFromPem(text, what);
  const keys = new Map<string, AttestationKey>();
  for (const raw of raws) {
    const key = attestationKey(raw);
    keys.set(key.fingerprint, key);
  }
  return [...keys.values()];
}

function attestationKey(raw: Buffer): AttestationKey {
  const der = Buffer.concat([SPKI_ED25519, raw]);
  return {
    keyId: keyIds(raw)[0]!,
    fingerprint: `sha256:${createHash('sha256').update(der).digest('hex')}`,
    key: createPublicKey({ key: der, format: 'der', type: 'spki' }),
  };
}

/**
 * The key ids an ed25519 key goes by: sha256 of the canonical JSON of its securesystemslib form, first with
 * `keyid_hash_algorithms` (securesystemslib always, the Rust crate for keys read from PKCS#8 or SPKI: rebuilderd),
 * then without (the Rust crate for keys made from raw bytes). A key id only picks which key to try.
 */
function keyIds(raw: Buffer): [string, string] {
  const keyval = { public: raw.toString('hex') };
  const id = (form: Record<string, unknown>): string => createHash('sha256').update(inTotoCanonicalJson(form), 'utf8').digest('hex');
  return [
    id({ keytype: 'ed25519', scheme: 'ed25519', keyid_hash_algorithms: ['sha256', 'sha512'], keyval }),
    id({ keytype: 'ed25519', scheme: 'ed25519', keyval }),
  ];
}

function rawKeysFromPem(text: string, what: string): Buffer[] {
  const block = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]*?)-----END ([A-Z0-9 ]+)-----/g;
  const raws: Buffer[] = [];
  let end = 0;
  for (const m of text.matchAll(block)) {
    if (text.slice(end, m.index).trim() !== '') fail(what, 'has text outside its PEM blocks');
    end = m.index + m[0].length;
    const [, label, body, endLabel] = m as unknown as [string, string, string, string];
    if (label !== endLabel) fail(what, `PEM block BEGIN ${label} ends with END ${endLabel}`);
    if (label !== 'PUBLIC KEY') fail(what, label.includes('PRIVATE') ? 'holds a private key: give the public key' : `PEM block ${label} is not a PUBLIC KEY`);
    const base64 = body.replace(/\r?\n/g, '');
    const der = Buffer.from(base64, 'base64');
    if (base64 === '' || der.toString('base64') !== base64) fail(what, 'PEM block is not valid base64');
    raws.push(rawFromSpki(der, what));
  }
  if (text.slice(end).trim() !== '') fail(what, raws.length ? 'has text outside its PEM blocks' : 'is neither a PEM public key nor an in-toto JSON key');
  return raws;
}

function rawFromSpki(der: Buffer, what: string): Buffer {
  for (const prefix of [SPKI_ED25519, SPKI_ED25519_NULL_PARAMETER]) {
    if (der.length === prefix.length + 32 && der.subarray(0, prefix.length).equals(prefix)) return Buffer.from(der.subarray(prefix.length));
  }
  return fail(what, 'public key is not an ed25519 key (rebuilderd and in-toto sign attestations with ed25519)');
}

function rawKeysFromJson(text: string, what: string): Buffer[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail(what, 'is not valid JSON');
  }
  if (!isObject(value)) return fail(what, 'is not a JSON object');
  if ('current' in value) {
    onlyFields(value, ['current'], what, 'public keys');
    const pems = value.current;
    if (!Array.isArray(pems) || pems.length === 0 || !pems.every((p) => typeof p === 'string')) return fail(what, '"current" is not a list of PEM public keys');
    return pems.flatMap((pem, i) => rawKeysFromPem(pem as string, `${what} current[${i}]`));
  }
  onlyFields(value, ['keytype', 'scheme', 'keyid_hash_algorithms', 'keyval', 'keyid'], what, 'key');
  if (value.keytype !== 'ed25519' || value.scheme !== 'ed25519') return fail(what, `key is ${shown(String(value.keytype))}/${shown(String(value.scheme))}, not ed25519`);
  const algorithms = value.keyid_hash_algorithms;
  if (algorithms !== undefined && (!Array.isArray(algorithms) || !algorithms.every((a) => typeof a === 'string'))) return fail(what, 'keyid_hash_algorithms is not a list of names');
  const keyval = value.keyval;
  if (!isObject(keyval)) return fail(what, 'key has no keyval');
  if (keyval.private !== undefined) return fail(what, 'holds a private key: give the .pub file');
  onlyFields(keyval, ['public'], what, 'keyval');
  if (typeof keyval.public !== 'string' || !HEX_32.test(keyval.public)) return fail(what, 'keyval.public is not 32 bytes of lowercase hex');
  const raw = Buffer.from(keyval.public, 'hex');
  if (value.keyid !== undefined && !keyIds(raw).includes(value.keyid as string)) return fail(what, `keyid ${shown(String(value.keyid))} is not the id of the key it names`);
  return [raw];
}

/**
 * Signs an in-toto v0.9 link the way securesystemslib does (what verifyAttestation checks): each key signs the
 * canonical JSON of `signed`, named by its securesystemslib key id, signatures as lowercase hex.
 */
export function signLink(signed: Record<string, unknown>, privateKeys: readonly KeyObject[]): Buffer {
  const message = Buffer.from(inTotoCanonicalJson(signed), 'utf8');
  const signatures = privateKeys.map((key) => {
    const raw = Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x!, 'base64url');
    return { keyid: keyIds(raw)[0], sig: sign(null, message, key).toString('hex') };
  });
  return Buffer.from(JSON.stringify({ signatures, signed }), 'utf8');
}

/**
 * A link in the shape rebuilderd's worker signs after a byte-for-byte match (`rebuild <file>`, the file as material
 * and product, environment null), with only the sha256 hash: what the example's and the benchmark's rebuilders serve.
 */
export function signRebuildLink(fileName: string, sha256: string, privateKeys: readonly KeyObject[]): Buffer {
  const hashes = { sha256 };
  return signLink({ _type: 'link', name: `rebuild ${fileName}`, materials: { [fileName]: hashes }, products: { [fileName]: hashes }, environment: null, byproducts: {}, command: [] }, privateKeys);
}

/** An ed25519 public key as standard PEM (RFC 8410 SPKI), for key files and `/meta/public-keys` bodies. */
export function publicKeyPem(key: KeyObject): string {
  return (key.type === 'public' ? key : createPublicKey(key)).export({ type: 'spki', format: 'pem' }).toString();
}

// --- canonical JSON -----------------------------------------------------------------------------------------

/**
 * securesystemslib's `encode_canonical` (OLPC canonical JSON as in-toto signs it): keys sorted by code point, no
 * whitespace, integers only, strings with only `"` and `\` escaped — every other character, newlines included,
 * as it is. The value must have passed checkCanonicalString on every string (link values do, in checkLink).
 */
export function inTotoCanonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value)) throw new TypeError(`in-toto canonical JSON has integers only, not ${value}`);
      return String(value);
    case 'string':
      return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(inTotoCanonicalJson).join(',')}]`;
      const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => byteOrder(a, b));
      return `{${entries.map(([k, v]) => `${inTotoCanonicalJson(k)}:${inTotoCanonicalJson(v)}`).join(',')}}`;
    }
    default:
      throw new TypeError(`in-toto canonical JSON has no ${typeof value}`);
  }
}

/**
 * The strings on which securesystemslib and the Rust crate sign the same bytes: no control character but the
 * newline (the Rust crate escapes them, securesystemslib does not), no backslash before an `n` (the Rust crate
 * turns that pair into a newline), no lone surrogate (it has no UTF-8 form).
 */
function canonicalStringProblem(s: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0009\u000b-\u001f]/.test(s)) return 'a control character';
  if (s.includes('\\n')) return 'a backslash before an n';
  if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s)) return 'a lone surrogate';
  return undefined;
}

// --- links --------------------------------------------------------------------------------------------------

interface Link {
  name: string;
  products: Record<string, Record<string, string>>;
  signed: Record<string, unknown>;
  signatures: { keyid: string; sig: string }[];
}

/**
 * Decodes (zstd detected by its magic, decoded up to MAX_ATTESTATION_BYTES), parses (UTF-8, JSON without repeated
 * keys, every field of an in-toto v0.9 link checked) and verifies an attestation: every signature by one of `keys`
 * verifies over the canonical `signed` object and there is at least one; the product for the package exists
 * (named `fileName`, or `name-version-arch.pkg.tar.*` when the file name is unknown); its sha256 equals the locked
 * one when that is given. Anything else is a one-line UserError naming `what`.
 */
export async function verifyAttestation(bytes: Buffer, keys: readonly AttestationKey[], expected: ExpectedProduct, what: string): Promise<VerifiedAttestation> {
  const json = await decodeBody(bytes, what);
  const link = parseLink(json, what);
  const signedBy = verifySignatures(link, keys, what);
  const [productFile, hashes] = findProduct(link, expected, what);
  const productSha256 = hashes.sha256;
  if (productSha256 === undefined) return fail(what, `product ${shown(productFile)} has no sha256`);
  if (expected.sha256 !== undefined && productSha256 !== expected.sha256.toLowerCase()) {
    fail(what, `product ${shown(productFile)} hash differs: got sha256 ${productSha256}, locked ${expected.sha256}`);
  }
  return { digest: sha256(json), stepName: link.name, productFile, productSha256, bound: expected.sha256 !== undefined, signedBy };
}

async function decodeBody(bytes: Buffer, what: string): Promise<Buffer> {
  if (bytes.length > MAX_ATTESTATION_BYTES) fail(what, `${bytes.length} bytes is more than the ${MAX_ATTESTATION_BYTES} an attestation may have`);
  if (detectCompression(bytes) !== 'zstd') return bytes;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of decompressAuto(Readable.from([bytes]), what)) {
    size += chunk.length;
    if (size > MAX_ATTESTATION_BYTES) fail(what, `decodes to more than the ${MAX_ATTESTATION_BYTES} bytes an attestation may have`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function parseLink(json: Buffer, what: string): Link {
  const value = parseStrictJson(json, what);
  if (!isObject(value)) return fail(what, 'is not a JSON object');
  onlyFields(value, ['signatures', 'signed'], what, 'in-toto metablock');
  const signed = value.signed;
  if (!isObject(signed)) return fail(what, 'has no "signed" object: not an in-toto link');
  if (signed._type !== 'link') return fail(what, `is an in-toto ${shown(String(signed._type))}, not a link`);
  onlyFields(signed, ['_type', 'name', 'materials', 'products', 'environment', 'byproducts', 'command'], what, 'signed link');
  if (typeof signed.name !== 'string') return fail(what, 'link has no name');
  artifacts(signed.materials, what, 'materials');
  const products = artifacts(signed.products, what, 'products');
  if (!Array.isArray(signed.command) || !signed.command.every((c) => typeof c === 'string')) return fail(what, 'link command is not a list of strings');
  if (signed.environment !== null) scalarMap(signed.environment, what, 'environment');
  scalarMap(signed.byproducts, what, 'byproducts');
  const problem = firstStringProblem(signed);
  if (problem !== undefined) fail(what, problem);
  return { name: signed.name, products, signed, signatures: signatures(value.signatures, what) };
}

/** materials or products: file name → { algorithm → lowercase hex digest }. */
function artifacts(value: unknown, what: string, field: string): Record<string, Record<string, string>> {
  if (!isObject(value)) return fail(what, `link ${field} is not an object`);
  for (const [path, hashes] of Object.entries(value)) {
    if (!isObject(hashes) || Object.keys(hashes).length === 0) fail(what, `link ${field} ${shown(path)} has no hashes`);
    for (const [algorithm, digest] of Object.entries(hashes)) {
      const length = HASH_LENGTH[algorithm];
      const ok = typeof digest === 'string' && /^[0-9a-f]+$/.test(digest) && (length === undefined ? /^[a-z0-9-]{1,32}$/.test(algorithm) && digest.length <= 256 : digest.length === length);
      if (!ok) fail(what, `link ${field} ${shown(path)} has a malformed ${shown(algorithm)} hash`);
    }
  }
  return value as Record<string, Record<string, string>>;
}

const HASH_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** environment and byproducts: flat maps of strings, integers, booleans and nulls. */
function scalarMap(value: unknown, what: string, field: string): void {
  if (!isObject(value)) fail(what, `link ${field} is not an object`);
  for (const [key, v] of Object.entries(value)) {
    const scalar = v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isSafeInteger(v));
    if (!scalar) fail(what, `link ${field} ${shown(key)} is not a string or an integer`);
  }
}

function firstStringProblem(value: unknown): string | undefined {
  const strings: string[] = [];
  const collect = (v: unknown): void => {
    if (typeof v === 'string') strings.push(v);
    else if (Array.isArray(v)) v.forEach(collect);
    else if (isObject(v)) {
      for (const [k, x] of Object.entries(v)) {
        strings.push(k);
        collect(x);
      }
    }
  };
  collect(value);
  for (const s of strings) {
    const problem = canonicalStringProblem(s);
    if (problem !== undefined) return `signed string ${shown(s)} has ${problem}, on which in-toto implementations sign different bytes`;
  }
  return undefined;
}

function signatures(value: unknown, what: string): { keyid: string; sig: string }[] {
  if (!Array.isArray(value)) return fail(what, 'has no "signatures" list');
  if (value.length === 0) fail(what, 'has no signatures');
  if (value.length > MAX_SIGNATURES) fail(what, `has ${value.length} signatures, more than the ${MAX_SIGNATURES} allowed`);
  return value.map((s, i) => {
    if (!isObject(s)) return fail(what, `signature ${i} is not an object`);
    onlyFields(s, ['keyid', 'sig'], what, `signature ${i}`);
    if (typeof s.keyid !== 'string' || !HEX_32.test(s.keyid)) return fail(what, `signature ${i} keyid is not 32 bytes of lowercase hex`);
    if (typeof s.sig !== 'string' || !/^[0-9a-f]*$/.test(s.sig)) return fail(what, `signature ${i} by ${s.keyid.slice(0, 16)} is not lowercase hex`);
    return { keyid: s.keyid, sig: s.sig };
  });
}

/** Each key set's keys by every id they go by, made once per set (a run checks thousands of links with one). */
const keysByIdOf = new WeakMap<readonly AttestationKey[], Map<string, AttestationKey>>();

function keysById(keys: readonly AttestationKey[]): Map<string, AttestationKey> {
  let byId = keysByIdOf.get(keys);
  if (byId === undefined) {
    byId = new Map();
    for (const key of keys) {
      const raw = Buffer.from(key.key.export({ format: 'jwk' }).x!, 'base64url');
      for (const id of keyIds(raw)) byId.set(id, key);
    }
    keysByIdOf.set(keys, byId);
  }
  return byId;
}

function verifySignatures(link: Link, keys: readonly AttestationKey[], what: string): string[] {
  if (keys.length === 0) fail(what, 'no public key to check it with');
  const byId = keysById(keys);
  const message = Buffer.from(inTotoCanonicalJson(link.signed), 'utf8');
  const signedBy = new Set<string>();
  for (const { keyid, sig } of link.signatures) {
    const key = byId.get(keyid);
    if (key === undefined) continue; // someone else's signature: not ours to judge
    if (sig.length !== 128) fail(what, `signature by ${key.fingerprint} is ${sig.length / 2} bytes, not the 64 of ed25519`);
    if (!verify(null, message, key.key, Buffer.from(sig, 'hex'))) fail(what, `signature by ${key.fingerprint} does not verify`);
    signedBy.add(key.fingerprint);
  }
  if (signedBy.size === 0) {
    const by = link.signatures.map((s) => s.keyid.slice(0, 16)).join(', ');
    fail(what, `no signature by a known key (signed by key id ${by}; known: ${keys.map((k) => k.keyId.slice(0, 16)).join(', ')})`);
  }
  return [...signedBy].sort();
}

function findProduct(link: Link, expected: ExpectedProduct, what: string): [string, Record<string, string>] {
  const names = Object.keys(link.products);
  const listed = names.length ? names.slice(0, 4).map(displayName).join(', ') + (names.length > 4 ? ', …' : '') : 'none';
  if (expected.fileName !== undefined) {
    const hashes = Object.hasOwn(link.products, expected.fileName) ? link.products[expected.fileName] : undefined;
    if (hashes === undefined) fail(what, `no product for ${shown(expected.fileName)} (products: ${listed})`);
    return [expected.fileName, hashes];
  }
  const stem = `${expected.name}-${expected.version}-${expected.arch}.pkg.tar.`;
  const matches = names.filter((n) => n.startsWith(stem) && /^[a-z0-9]+$/.test(n.slice(stem.length)));
  if (matches.length === 0) fail(what, `no product for ${shown(`${stem}*`)} (products: ${listed})`);
  if (matches.length > 1) fail(what, `several products for ${shown(`${stem}*`)}: ${matches.map(shown).join(', ')}`);
  return [matches[0]!, link.products[matches[0]!]!];
}

function onlyFields(value: Record<string, unknown>, allowed: readonly string[], what: string, kind: string): void {
  const extra = Object.keys(value).find((k) => !allowed.includes(k));
  if (extra !== undefined) fail(what, `${kind} has an unknown field ${shown(extra)}`);
}

/** A string from outside for a one-line message: quoted when it holds control characters, cut at 100. */
function shown(s: string): string {
  return displayName(s.length > 100 ? `${s.slice(0, 100)}…` : s);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(what: string, problem: string): never {
  throw new UserError(`${what}: ${problem}`);
}
