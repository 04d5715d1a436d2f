import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { lstat, rm, stat } from 'node:fs/promises';
import { UserError } from '../errors.js';
import { readUserFile } from '../util/fs.js';
import { writeNewFile } from '../util/new-file.js';
import { displayName } from '../util/raw-name.js';

/**
 * The keys repro-oci signs attestations with: ed25519 or ECDSA P-256 with SHA-256, kept as PEM files as OpenSSL,
 * cosign's `import-key-pair`, securesystemslib and sigstore read them (private key PKCS#8, public key SPKI).
 *
 * Signatures are what those verifiers expect of each algorithm: ed25519's 64 bytes (RFC 8032), and ECDSA's ASN.1
 * DER `SEQUENCE { r, s }` (sigstore, cosign and securesystemslib's `ecdsa-sha2-nistp256` all sign and verify the
 * DER form; the raw r‖s form of the DSSE spec's test vector is not accepted, so one signature has one encoding).
 */

export type SigningKeyType = 'ed25519' | 'ecdsa-p256';
export const SIGNING_KEY_TYPES: readonly SigningKeyType[] = ['ed25519', 'ecdsa-p256'];

export interface PublicSigningKey {
  readonly type: SigningKeyType;
  /**
   * Lowercase hex sha256 of the key's SPKI DER: the same for every PEM rendering of one key, defined without any
   * JSON key format (securesystemslib's ids hash a JSON form that differs between its versions), and what
   * `openssl pkey -pubin -outform DER | sha256sum` prints. In a DSSE envelope it is only a hint: verification
   * tries every trusted key and never trusts a key for its id.
   */
  readonly keyId: string;
  readonly publicKey: KeyObject;
}

export interface SigningKey extends PublicSigningKey {
  readonly privateKey: KeyObject;
}

/** Far more than any PEM key of these types (a P-256 PKCS#8 PEM is ~240 bytes): a guard against reading a disk image. */
const MAX_KEY_FILE_CHARS = 64 * 1024;

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

export function publicKeyPem(key: PublicSigningKey): string {
  return key.publicKey.export({ type: 'spki', format: 'pem' }).toString();
}

export function privateKeyPem(key: SigningKey): string {
  return key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export function generateSigningKey(type: SigningKeyType): SigningKey {
  const { privateKey, publicKey } = type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { type, keyId: keyIdOf(publicKey), publicKey, privateKey };
}

export interface WrittenKeyPair {
  type: SigningKeyType;
  keyId: string;
  privateKeyFile: string;
  publicKeyFile: string;
}

/**
 * `repro-oci key generate`: a new key pair as PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub (SPKI PEM, 0644).
 * Neither file may exist: a signing key is never overwritten. The private key goes first; if the public key's
 * name is then taken by someone else, the private key just made is removed again, so it is both files or neither.
 */
export async function writeKeyPair(prefix: string, type: SigningKeyType): Promise<WrittenKeyPair> {
  const privateKeyFile = `${prefix}.key`;
  const publicKeyFile = `${prefix}.pub`;
  for (const path of [privateKeyFile, publicKeyFile]) {
    if (await lstat(path).then(() => true, () => false)) throw new UserError(`${displayName(path)}: exists already; a key is never overwritten: remove it or choose another -o`);
  }
  const key = generateSigningKey(type);
  await writeNewFile(privateKeyFile, privateKeyPem(key), 0o600);
  try {
    await writeNewFile(publicKeyFile, publicKeyPem(key), 0o644);
  } catch (err) {
    await rm(privateKeyFile, { force: true });
    throw err;
  }
  return { type, keyId: key.keyId, privateKeyFile, publicKeyFile };
}

const ENCRYPTED = 'is an encrypted private key: repro-oci reads unencrypted PKCS#8 keys (keep the file mode 0600; decrypt with `openssl pkey -in KEY -out PLAIN`)';

interface PemBlock {
  label: string;
  text: string;
}

/**
 * The PEM blocks of a key file, strictly: nothing but whitespace between blocks, matching BEGIN and END labels,
 * base64 bodies. RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`: OpenSSL's legacy encrypted keys) are reported as
 * encryption, the one reason a well-formed file may still carry them.
 */
function pemBlocks(text: string, what: string): PemBlock[] {
  if (text.length > MAX_KEY_FILE_CHARS) fail(what, `${text.length} characters is more than the ${MAX_KEY_FILE_CHARS} a key file may have`);
  const block = /-----BEGIN ([A-Z0-9 ]{1,40})-----\r?\n((?:[A-Za-z][A-Za-z-]{0,40}:[^\r\n]*\r?\n)*)([^-]*?)-----END ([A-Z0-9 ]{1,40})-----/g;
  const blocks: PemBlock[] = [];
  let end = 0;
  for (const m of text.matchAll(block)) {
    if (text.slice(end, m.index).trim() !== '') fail(what, 'has text outside its PEM blocks');
    end = m.index + m[0].length;
    const [, label, headers, body, endLabel] = m as unknown as [string, string, string, string, string];
    if (label !== endLabel) fail(what, `PEM block BEGIN ${label} ends with END ${endLabel}`);
    if (/^Proc-Type:.*ENCRYPTED/m.test(headers)) fail(what, ENCRYPTED);
    if (headers !== '') fail(what, `PEM block ${label} has headers (${headers.split(':')[0]}:…), which no key file of ours has`);
    const base64 = body.replace(/\r?\n/g, '');
    if (base64 === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || base64.length % 4 !== 0) fail(what, `PEM block ${label} is not valid base64`);
    blocks.push({ label, text: m[0] });
  }
  if (text.slice(end).trim() !== '') fail(what, blocks.length ? 'has text outside its PEM blocks' : 'is not a PEM key file');
  return blocks;
}

const PRIVATE_LABEL_PROBLEMS: Readonly<Record<string, string>> = {
  'ENCRYPTED PRIVATE KEY': ENCRYPTED,
  'ENCRYPTED SIGSTORE PRIVATE KEY': "is cosign's encrypted key format: export it with `openssl`-readable PKCS#8, or make a key with `repro-oci key generate`",
  'ENCRYPTED COSIGN PRIVATE KEY': "is cosign's encrypted key format: export it with `openssl`-readable PKCS#8, or make a key with `repro-oci key generate`",
  'RSA PRIVATE KEY': 'is an RSA key: repro-oci signs with ed25519 or ECDSA P-256 (`repro-oci key generate`)',
  'OPENSSH PRIVATE KEY': 'is an OpenSSH key: convert it with `ssh-keygen -p -m PKCS8 -f KEY`, or make one with `repro-oci key generate`',
  'PUBLIC KEY': 'holds a public key: signing needs the private key (the .key file)',
};

/** The signing key in a PEM file: PKCS#8 `PRIVATE KEY` (or SEC1 `EC PRIVATE KEY`, as `openssl ecparam -genkey` writes). */
export function parseSigningKey(text: string, what: string): SigningKey {
  const blocks = pemBlocks(text, what);
  if (blocks.length !== 1) fail(what, blocks.length === 0 ? 'has no PEM block' : `has ${blocks.length} PEM blocks: a key file holds one private key`);
  const [{ label, text: pem }] = blocks as [PemBlock];
  const problem = PRIVATE_LABEL_PROBLEMS[label];
  if (problem !== undefined) fail(what, problem);
  if (label !== 'PRIVATE KEY' && label !== 'EC PRIVATE KEY') fail(what, `PEM block ${label} is not a private key`);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    return fail(what, `PEM block ${label} is not a key OpenSSL can read`);
  }
  const publicKey = createPublicKey(privateKey);
  return { type: keyType(publicKey, what), keyId: keyIdOf(publicKey), publicKey, privateKey };
}

/** One or several PEM `PUBLIC KEY` blocks (SPKI), each ed25519 or P-256; a key given twice counts once. */
export function parsePublicKeys(text: string, what: string): PublicSigningKey[] {
  const blocks = pemBlocks(text, what);
  if (blocks.length === 0) fail(what, 'has no PEM block');
  const keys = new Map<string, PublicSigningKey>();
  for (const { label, text: pem } of blocks) {
    if (label !== 'PUBLIC KEY') fail(what, label.includes('PRIVATE') ? 'holds a private key: verifying needs only the public key (the .pub file)' : `PEM block ${label} is not a PUBLIC KEY`);
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({ key: pem, format: 'pem' });
    } catch {
      return fail(what, 'PEM block PUBLIC KEY is not a key OpenSSL can read');
    }
    const key = { type: keyType(publicKey, what), keyId: keyIdOf(publicKey), publicKey };
    keys.set(key.keyId, key);
  }
  return [...keys.values()];
}

/** The signing key in the file at `path`; errors read `signing key PATH: …` (`what` names the role). */
export async function loadSigningKey(path: string, what = 'signing key'): Promise<SigningKey> {
  return parseSigningKey(await readKeyFile(path, what), `${what} ${displayName(path)}`);
}

export async function loadPublicKeys(path: string, what = 'public key'): Promise<PublicSigningKey[]> {
  return parsePublicKeys(await readKeyFile(path, what), `${what} ${displayName(path)}`);
}

/** The file's text, after its size was checked: a key path pointing at a disk image is not read whole. */
async function readKeyFile(path: string, what: string): Promise<string> {
  const info = await stat(path).catch(() => undefined);
  if (info && !info.isFile() && !info.isDirectory()) fail(`${what} ${displayName(path)}`, 'is not a regular file');
  if (info?.isFile() && info.size > MAX_KEY_FILE_CHARS) fail(`${what} ${displayName(path)}`, `${info.size} bytes is more than the ${MAX_KEY_FILE_CHARS} a key file may have`);
  return readUserFile(path, what);
}

function keyType(publicKey: KeyObject, what: string): SigningKeyType {
  const type = publicKey.asymmetricKeyType;
  if (type === 'ed25519') return 'ed25519';
  if (type === 'ec') {
    const curve = publicKey.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return 'ecdsa-p256';
    return fail(what, `is an ECDSA key on ${curve ? `curve ${curve}` : 'explicit curve parameters'}, not P-256 (prime256v1)`);
  }
  return fail(what, `is an ${type?.toUpperCase() ?? 'unknown'} key: repro-oci signs with ed25519 or ECDSA P-256`);
}

/** A signature of `data`: ed25519's 64 bytes, or ECDSA P-256 over SHA-256 in ASN.1 DER. */
export function signBytes(key: SigningKey, data: Uint8Array): Buffer {
  return key.type === 'ed25519' ? sign(null, data, key.privateKey) : sign('sha256', data, { key: key.privateKey, dsaEncoding: 'der' });
}

/**
 * Whether `signature` is `key`'s over `data`. Malformed signatures (wrong length, DER with trailing bytes or
 * a non-minimal encoding, which OpenSSL refuses by re-encoding) are false, never an exception.
 */
export function verifyBytes(key: PublicSigningKey, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    if (key.type === 'ed25519') return signature.length === 64 && verify(null, data, key.publicKey, signature);
    return verify('sha256', data, { key: key.publicKey, dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}

function fail(what: string, problem: string): never {
  throw new UserError(`${what}: ${problem}`);
}
