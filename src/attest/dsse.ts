import { UserError } from '../errors.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { isDigest, digestHex, type Digest } from '../oci/digest.js';
import { parseStrictJson } from '../util/json-keys.js';
import { displayName } from '../util/raw-name.js';
import { signBytes, verifyBytes, type PublicSigningKey, type SigningKey } from './signing-key.js';

/**
 * DSSE v1 envelopes (github.com/secure-systems-lab/dsse, protocol.md and envelope.md) and the in-toto Statement v1
 * they carry (github.com/in-toto/attestation, spec/v1). An envelope is
 * `{"payload": BASE64, "payloadType": TYPE, "signatures": [{"keyid": HINT, "sig": BASE64}]}` and each signature is
 * over PAE(type, payload) = `DSSEv1 <len(type)> <type> <len(payload)> <payload>`, lengths in bytes, in decimal.
 *
 * Reading is strict where leniency would let two verifiers disagree about what was signed: one JSON text in valid
 * UTF-8 with no member name twice in an object, the spec's fields of the spec's types, base64 in one alphabet with
 * its canonical padding. Fields the spec does not name are ignored, as it requires of consumers.
 */

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const STATEMENT_V1_TYPE = 'https://in-toto.io/Statement/v1';

/** An attestation is a few KiB; 4 MiB is the registries' manifest limit and ample for any predicate. */
export const MAX_ENVELOPE_BYTES = 4 * 1024 * 1024;
/** More signatures than any threshold needs, few enough that trying each trusted key on each costs nothing. */
export const MAX_SIGNATURES = 16;
const MAX_SIGNATURE_CHARS = 1024; // base64 of a DER P-256 signature is 96 characters, of ed25519 88
const MAX_PAYLOAD_TYPE_CHARS = 256;
const MAX_KEYID_CHARS = 256;

export function preAuthEncoding(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `, 'ascii'), type, Buffer.from(` ${payload.length} `, 'ascii'), payload]);
}

/**
 * An envelope of `payload` signed by each of `keys` (standard base64 with padding, key ids as signing-key.ts
 * defines them), as JSON bytes with the fields in the spec's order.
 */
export function signEnvelope(payload: Uint8Array, payloadType: string, keys: readonly SigningKey[]): Buffer {
  if (keys.length === 0) throw new UserError('signing: no key given');
  checkPayloadType(payloadType, 'signing');
  const message = preAuthEncoding(payloadType, payload);
  const signatures = keys.map((key) => ({ keyid: key.keyId, sig: signBytes(key, message).toString('base64') }));
  return Buffer.from(JSON.stringify({ payload: Buffer.from(payload).toString('base64'), payloadType, signatures }), 'utf8');
}

export interface DecodedEnvelope {
  payload: Buffer;
  payloadType: string;
  signatures: { keyid: string; sig: Buffer }[];
}

/** An envelope's fields, decoded and checked, signatures not yet verified. */
export function decodeEnvelope(bytes: Uint8Array, what: string): DecodedEnvelope {
  if (bytes.length > MAX_ENVELOPE_BYTES) fail(what, `${bytes.length} bytes is more than the ${MAX_ENVELOPE_BYTES} a DSSE envelope may have`);
  const value = parseStrictJson(bytes, what);
  if (!isObject(value)) fail(what, 'is not a JSON object (a DSSE envelope)');
  const payload = base64Field(value, 'payload', what, Infinity);
  if (typeof value.payloadType !== 'string') fail(what, 'payloadType is missing or not a string');
  checkPayloadType(value.payloadType, what);
  const list = value.signatures;
  if (!Array.isArray(list)) fail(what, 'signatures is missing or not a list');
  if (list.length === 0) fail(what, 'has no signatures');
  if (list.length > MAX_SIGNATURES) fail(what, `has ${list.length} signatures, more than the ${MAX_SIGNATURES} allowed`);
  const signatures = list.map((entry: unknown, i) => {
    const at = `${what}: signatures[${i}]`;
    if (!isObject(entry)) fail(at, 'is not an object');
    const sig = base64Field(entry, 'sig', at, MAX_SIGNATURE_CHARS);
    if (sig.length === 0) fail(at, 'sig is empty');
    const keyid = entry.keyid ?? '';
    if (typeof keyid !== 'string') fail(at, 'keyid is not a string');
    if (keyid.length > MAX_KEYID_CHARS) fail(at, `keyid is longer than ${MAX_KEYID_CHARS} characters`);
    return { keyid, sig };
  });
  return { payload, payloadType: value.payloadType, signatures };
}

export interface VerifiedEnvelope {
  payload: Buffer;
  payloadType: string;
  /** The trusted keys (by key id, sorted) whose signature verified. */
  keyIds: string[];
}

export interface VerifyOptions {
  /** The payload type the caller reads (the spec: reject any other); default: the in-toto type. */
  payloadType?: string;
  /** How many distinct trusted keys must have signed; default 1. */
  threshold?: number;
}

/**
 * Verifies an envelope against `trustedKeys` (DSSE's (t, n) rule: at least `threshold` distinct trusted keys
 * signed PAE(payloadType, payload)), then that the payload type is the one expected. Every trusted key is tried on
 * every signature: the keyid is an unauthenticated hint and decides nothing. Any failure is one UserError line
 * starting with `what`.
 */
export function verifyEnvelope(bytes: Uint8Array, trustedKeys: readonly PublicSigningKey[], what: string, options: VerifyOptions = {}): VerifiedEnvelope {
  if (trustedKeys.length === 0) throw new UserError(`${what}: no trusted public key to verify it with`);
  const threshold = options.threshold ?? 1;
  const expectedType = options.payloadType ?? IN_TOTO_PAYLOAD_TYPE;
  const envelope = decodeEnvelope(bytes, what);
  const message = preAuthEncoding(envelope.payloadType, envelope.payload);
  const accepted = new Set<string>();
  for (const { sig } of envelope.signatures) {
    for (const key of trustedKeys) if (!accepted.has(key.keyId) && verifyBytes(key, message, sig)) accepted.add(key.keyId);
  }
  if (accepted.size < threshold) {
    const given = envelope.signatures.map((s) => (s.keyid === '' ? '(no keyid)' : shown(s.keyid))).join(', ');
    const trusted = trustedKeys.map((k) => k.keyId.slice(0, 16)).join(', ');
    fail(what, accepted.size === 0
      ? `no signature verifies with a trusted key (signatures by ${given}; trusted ${trusted}): tampered, or signed by another key`
      : `signed by ${accepted.size} trusted key(s), ${threshold} required`);
  }
  if (envelope.payloadType !== expectedType) fail(what, `payloadType is ${shown(envelope.payloadType)}, not ${expectedType}`);
  return { payload: envelope.payload, payloadType: envelope.payloadType, keyIds: [...accepted].sort() };
}

// --- in-toto Statement v1 -----------------------------------------------------------------------------------

export interface Subject {
  name: string;
  digest: Digest;
}

export interface Statement {
  subject: Subject[];
  predicateType: string;
  predicate: Record<string, unknown>;
}

/** The Statement's JSON bytes: canonical (sorted keys, no whitespace), so one statement has one payload. */
export function statementBytes(statement: Statement): Buffer {
  if (statement.subject.length === 0) throw new UserError('in-toto statement: no subject');
  return canonicalJsonBytes({
    _type: STATEMENT_V1_TYPE,
    subject: statement.subject.map((s) => ({ name: s.name, digest: { sha256: digestHex(s.digest) } })),
    predicateType: statement.predicateType,
    predicate: statement.predicate,
  });
}

/** A Statement v1 signed in a DSSE envelope with payload type `application/vnd.in-toto+json`. */
export function signStatement(statement: Statement, keys: readonly SigningKey[]): Buffer {
  return signEnvelope(statementBytes(statement), IN_TOTO_PAYLOAD_TYPE, keys);
}

export interface VerifiedStatement {
  statement: Statement;
  keyIds: string[];
}

/** Verifies the envelope, then reads its payload as a Statement v1 (every subject with a sha256 digest). */
export function verifyStatement(bytes: Uint8Array, trustedKeys: readonly PublicSigningKey[], what: string, options: Omit<VerifyOptions, 'payloadType'> = {}): VerifiedStatement {
  const verified = verifyEnvelope(bytes, trustedKeys, what, { ...options, payloadType: IN_TOTO_PAYLOAD_TYPE });
  return { statement: parseStatement(verified.payload, `${what}: payload`), keyIds: verified.keyIds };
}

export function parseStatement(payload: Buffer, what: string): Statement {
  const value = parseStrictJson(payload, what);
  if (!isObject(value)) fail(what, 'is not a JSON object (an in-toto statement)');
  if (value._type !== STATEMENT_V1_TYPE) fail(what, `_type is ${shown(String(value._type))}, not ${STATEMENT_V1_TYPE}`);
  if (typeof value.predicateType !== 'string' || value.predicateType === '') fail(what, 'predicateType is missing or not a string');
  if (!isObject(value.predicate)) fail(what, 'predicate is missing or not an object');
  if (!Array.isArray(value.subject) || value.subject.length === 0) fail(what, 'subject is missing or empty');
  const subject = value.subject.map((entry: unknown, i): Subject => {
    const at = `${what}: subject[${i}]`;
    if (!isObject(entry)) fail(at, 'is not an object');
    if (typeof entry.name !== 'string') fail(at, 'name is missing or not a string');
    if (!isObject(entry.digest) || Object.values(entry.digest).some((d) => typeof d !== 'string')) fail(at, 'digest is not a map of algorithm to hex');
    const digest = `sha256:${String(entry.digest.sha256)}`;
    if (!isDigest(digest)) fail(at, 'has no sha256 digest of 64 lowercase hex digits');
    return { name: entry.name, digest };
  });
  return { subject, predicateType: value.predicateType, predicate: value.predicate };
}

// --- checks ---------------------------------------------------------------------------------------------------

function checkPayloadType(type: string, what: string): void {
  if (type.length > MAX_PAYLOAD_TYPE_CHARS) fail(what, `payloadType is longer than ${MAX_PAYLOAD_TYPE_CHARS} characters`);
  // PAE signs UTF8(type): a lone surrogate has no UTF-8 form, and encoders would each replace it their own way.
  if (!isWellFormed(type)) fail(what, 'payloadType is not a well-formed Unicode string');
}

function isWellFormed(s: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

const STANDARD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const URL_SAFE_BASE64 = /^[A-Za-z0-9_-]*$/;

/**
 * A base64 field: standard (padded) or URL-safe (padding optional) as the spec makes verifiers accept, one
 * alphabet per value, and canonical (the unused low bits zero), so each byte string has one accepted spelling
 * per alphabet. Node's decoder alone would skip any character it does not know.
 */
function base64Field(object: Record<string, unknown>, field: string, what: string, maxChars: number): Buffer {
  const value = object[field];
  if (typeof value !== 'string') fail(what, `${field} is missing or not a string`);
  if (value.length > maxChars) fail(what, `${field} is longer than ${maxChars} characters`);
  const unpadded = value.replace(/={1,2}$/, '');
  const urlSafe = !STANDARD_BASE64.test(value);
  if (urlSafe && !(URL_SAFE_BASE64.test(unpadded) && (unpadded === value || value.length % 4 === 0) && unpadded.length % 4 !== 1)) fail(what, `${field} is not base64`);
  const bytes = Buffer.from(value, urlSafe ? 'base64url' : 'base64');
  if (bytes.toString(urlSafe ? 'base64url' : 'base64').replace(/=+$/, '') !== unpadded) fail(what, `${field} is not canonical base64 (nonzero padding bits)`);
  return bytes;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A string from outside for a one-line message: control characters escaped, cut at 100 characters. */
function shown(s: string): string {
  return displayName(s.length > 100 ? `${s.slice(0, 100)}…` : s);
}

function fail(what: string, problem: string): never {
  throw new UserError(`${what}: ${problem}`);
}
