import assert from 'node:assert/strict';
import { sign as nodeSign } from 'node:crypto';
import { readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { decodeEnvelope, MAX_ENVELOPE_BYTES, preAuthEncoding, signEnvelope, signStatement, statementBytes, verifyEnvelope, verifyStatement, type Statement } from '../src/attest/dsse.js';
import { generateSigningKey, loadPublicKeys, loadSigningKey, parsePublicKeys, parseSigningKey, privateKeyPem, publicKeyPem, type SigningKey } from '../src/attest/signing-key.js';
import { UserError } from '../src/errors.js';
import { runCli, runOk, tempDirFor } from './support/cli.js';

const WHAT = 'attestation of hello';
const STATEMENT: Statement = {
  subject: [{ name: 'hello', digest: `sha256:${'0f'.repeat(32)}` }],
  predicateType: 'https://slsa.dev/verification_summary/v1',
  predicate: { verificationResult: 'PASSED' },
};
const ED = generateSigningKey('ed25519');
const EC = generateSigningKey('ecdsa-p256');
const STRANGER = generateSigningKey('ed25519');

type Doc = { payload: unknown; payloadType: unknown; signatures: unknown };
const doc = (bytes: Buffer): Doc => JSON.parse(bytes.toString('utf8')) as Doc;
const bytesOf = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

function rejects(bytes: Buffer, reason: RegExp, keys: readonly SigningKey[] = [ED], threshold?: number): void {
  assert.throws(() => verifyStatement(bytes, keys, WHAT, threshold === undefined ? {} : { threshold }), (err: Error) => {
    assert.ok(err instanceof UserError, `${err.name}: ${err.message}`);
    assert.ok(err.message.startsWith(`${WHAT}: `), err.message);
    assert.ok(!err.message.includes('\n'), `one line: ${JSON.stringify(err.message)}`);
    assert.match(err.message, reason);
    return true;
  });
}

describe('DSSE envelopes', () => {
  test('PAE is the spec\'s test vector, lengths in bytes', () => {
    assert.equal(preAuthEncoding('http://example.com/HelloWorld', Buffer.from('hello world')).toString(), 'DSSEv1 29 http://example.com/HelloWorld 11 hello world');
    assert.equal(preAuthEncoding('t/é', Buffer.from('ü')).toString(), 'DSSEv1 4 t/é 2 ü');
    assert.equal(preAuthEncoding('', Buffer.alloc(0)).toString(), 'DSSEv1 0  0 ');
  });

  for (const key of [ED, EC]) {
    test(`${key.type}: a signed statement verifies and reads back; the envelope has the spec's fields in order`, () => {
      const envelope = signStatement(STATEMENT, [key]);
      const read = verifyStatement(envelope, [STRANGER, key], WHAT);
      assert.deepEqual(read.statement, STATEMENT);
      assert.deepEqual(read.keyIds, [key.keyId]);
      assert.deepEqual(Object.keys(doc(envelope)), ['payload', 'payloadType', 'signatures']);
      assert.deepEqual(JSON.parse(Buffer.from(doc(envelope).payload as string, 'base64').toString()), {
        _type: 'https://in-toto.io/Statement/v1',
        predicate: { verificationResult: 'PASSED' },
        predicateType: 'https://slsa.dev/verification_summary/v1',
        subject: [{ digest: { sha256: '0f'.repeat(32) }, name: 'hello' }],
      });
    });
  }

  test('the statement payload is canonical: the same statement gives the same bytes, and ed25519 the same envelope', () => {
    assert.deepEqual(statementBytes(STATEMENT), statementBytes({ predicate: STATEMENT.predicate, predicateType: STATEMENT.predicateType, subject: STATEMENT.subject }));
    assert.deepEqual(signStatement(STATEMENT, [ED]), signStatement(STATEMENT, [ED]));
  });

  test('URL-safe base64 without padding verifies, as the spec requires of verifiers; unknown fields are ignored', () => {
    const d = doc(signStatement(STATEMENT, [EC])) as { payload: string; payloadType: string; signatures: { sig: string; keyid: string }[] };
    const url = (s: string): string => Buffer.from(s, 'base64').toString('base64url');
    const envelope = bytesOf({ ...d, payload: url(d.payload), signatures: [{ sig: url(d.signatures[0]!.sig), extra: 1 }], comment: 'x' });
    assert.deepEqual(verifyStatement(envelope, [EC], WHAT).keyIds, [EC.keyId]);
  });

  test('several signers: the threshold counts distinct trusted keys, never one key twice', () => {
    const both = signStatement(STATEMENT, [ED, EC]);
    assert.deepEqual(verifyStatement(both, [ED, EC], WHAT, { threshold: 2 }).keyIds, [ED.keyId, EC.keyId].sort());
    rejects(both, /signed by 1 trusted key\(s\), 2 required/, [ED, STRANGER], 2);
    const d = doc(signStatement(STATEMENT, [ED])) as { signatures: unknown[] };
    rejects(bytesOf({ ...d, signatures: [d.signatures[0], d.signatures[0]] }), /signed by 1 trusted key\(s\), 2 required/, [ED, EC], 2);
  });

  test('a keyid that lies does not matter: every trusted key is tried', () => {
    const d = doc(signStatement(STATEMENT, [ED])) as { signatures: { sig: string }[] };
    assert.deepEqual(verifyStatement(bytesOf({ ...d, signatures: [{ keyid: STRANGER.keyId, sig: d.signatures[0]!.sig }] }), [ED], WHAT).keyIds, [ED.keyId]);
  });
});

describe('hostile envelopes: one line each, nothing accepted', () => {
  const good = signStatement(STATEMENT, [ED]);
  const d = doc(good) as { payload: string; payloadType: string; signatures: { keyid: string; sig: string }[] };
  const sig = Buffer.from(d.signatures[0]!.sig, 'base64');
  const withSig = (s: string): Buffer => bytesOf({ ...d, signatures: [{ keyid: d.signatures[0]!.keyid, sig: s }] });

  test('tampered payload, tampered payloadType, wrong key', () => {
    const other = Buffer.from(statementBytes({ ...STATEMENT, predicate: { verificationResult: 'FAILED' } })).toString('base64');
    rejects(bytesOf({ ...d, payload: other }), /no signature verifies with a trusted key/);
    rejects(bytesOf({ ...d, payloadType: 'application/vnd.in-toto+JSON' }), /no signature verifies/);
    rejects(good, /no signature verifies .*tampered, or signed by another key/, [STRANGER, EC]);
  });

  test('a correctly signed envelope of another payload type is refused after the signature checks', () => {
    const envelope = signEnvelope(statementBytes(STATEMENT), 'application/json', [ED]);
    rejects(envelope, /payloadType is application\/json, not application\/vnd\.in-toto\+json/);
    assert.equal(verifyEnvelope(envelope, [ED], WHAT, { payloadType: 'application/json' }).payloadType, 'application/json');
  });

  test('truncated, extended, bit-flipped and empty signatures; ECDSA in raw r‖s form', () => {
    rejects(withSig(sig.subarray(0, 63).toString('base64')), /no signature verifies/);
    rejects(withSig(Buffer.concat([sig, Buffer.from([0])]).toString('base64')), /no signature verifies/);
    const flipped = Buffer.from(sig);
    flipped[10]! ^= 0x80;
    rejects(withSig(flipped.toString('base64')), /no signature verifies/);
    rejects(withSig(''), /signatures\[0\]: sig is empty/);
    const raw = nodeSign('sha256', preAuthEncoding(d.payloadType, Buffer.from(d.payload, 'base64')), { key: EC.privateKey, dsaEncoding: 'ieee-p1363' });
    rejects(withSig(raw.toString('base64')), /no signature verifies/, [EC]);
    const der = doc(signStatement(STATEMENT, [EC])) as { signatures: { sig: string }[] };
    const derSig = Buffer.from(der.signatures[0]!.sig, 'base64');
    rejects(bytesOf({ ...d, signatures: [{ sig: Buffer.concat([derSig, Buffer.from([0, 0])]).toString('base64') }] }), /no signature verifies/, [EC]);
  });

  test('no signatures, too many, not a list, entries of the wrong shape', () => {
    rejects(bytesOf({ ...d, signatures: [] }), /has no signatures/);
    rejects(bytesOf({ ...d, signatures: Array(17).fill(d.signatures[0]) }), /17 signatures, more than the 16 allowed/);
    rejects(bytesOf({ ...d, signatures: d.signatures[0] }), /signatures is missing or not a list/);
    rejects(bytesOf({ payload: d.payload, payloadType: d.payloadType }), /signatures is missing or not a list/);
    rejects(bytesOf({ ...d, signatures: ['abc'] }), /signatures\[0\]: is not an object/);
    rejects(bytesOf({ ...d, signatures: [{ keyid: 7, sig: d.signatures[0]!.sig }] }), /signatures\[0\]: keyid is not a string/);
    rejects(bytesOf({ ...d, signatures: [{ keyid: 'x' }] }), /signatures\[0\]: sig is missing or not a string/);
    rejects(withSig('A'.repeat(2000)), /sig is longer than 1024 characters/);
  });

  test('duplicate member names anywhere, in the envelope or its payload', () => {
    const text = good.toString('utf8');
    rejects(Buffer.from(text.replace('{"payload":', `{"payload":"${Buffer.from('{}').toString('base64')}","payload":`)), /has the member payload twice/);
    rejects(Buffer.from(text.replace('"sig":', '"sig":"AAAA","sig":')), /has the member sig twice/);
    const payload = statementBytes(STATEMENT).toString().replace('"predicateType":', '"predicateType":"https://example.org/other","predicateType":');
    rejects(signEnvelope(Buffer.from(payload), 'application/vnd.in-toto+json', [ED]), /payload: has the member predicateType twice/);
  });

  test('huge, not UTF-8, not JSON, not an object', () => {
    rejects(Buffer.alloc(MAX_ENVELOPE_BYTES + 1, 0x20), /4194305 bytes is more than the 4194304 a DSSE envelope may have/);
    rejects(Buffer.from([0x7b, 0xff, 0x7d]), /is not valid UTF-8/);
    rejects(Buffer.from('{"payload": '), /not valid JSON at line 1, column 13/);
    rejects(Buffer.from('[]'), /is not a JSON object/);
    rejects(Buffer.from('\ufeff{}'), /not valid JSON/);
  });

  test('payload and payloadType: not base64, mixed alphabets, bad padding, not canonical, wrong types', () => {
    rejects(bytesOf({ ...d, payload: '!!!!' }), /payload is not base64/);
    rejects(bytesOf({ ...d, payload: 'ab+_' }), /payload is not base64/);
    rejects(bytesOf({ ...d, payload: 'aGl=' }), /payload is not canonical base64/);
    rejects(bytesOf({ ...d, payload: 'a' }), /payload is not base64/);
    rejects(bytesOf({ ...d, payload: `${d.payload.slice(0, 8)}\n${d.payload.slice(8)}` }), /payload is not base64/);
    rejects(bytesOf({ ...d, payload: 42 }), /payload is missing or not a string/);
    rejects(bytesOf({ ...d, payloadType: null }), /payloadType is missing or not a string/);
    rejects(bytesOf({ ...d, payloadType: 'x'.repeat(300) }), /payloadType is longer than 256/);
    rejects(Buffer.from(good.toString().replace('"payloadType":"', '"payloadType":"\\ud800')), /payloadType is not a well-formed Unicode string/);
  });

  test('statements that are not in-toto v1 with sha256 subjects, though correctly signed', () => {
    const signedPayload = (value: unknown): Buffer => signEnvelope(bytesOf(value), 'application/vnd.in-toto+json', [ED]);
    const base = JSON.parse(statementBytes(STATEMENT).toString()) as Record<string, unknown>;
    rejects(signedPayload({ ...base, _type: 'https://in-toto.io/Statement/v0.1' }), /_type is https:\/\/in-toto.io\/Statement\/v0.1, not https:\/\/in-toto.io\/Statement\/v1/);
    rejects(signedPayload({ ...base, subject: [] }), /subject is missing or empty/);
    rejects(signedPayload({ ...base, subject: [{ name: 'x', digest: { sha256: 'AB'.repeat(32) } }] }), /subject\[0\]: has no sha256 digest/);
    rejects(signedPayload({ ...base, subject: [{ name: 'x', digest: { sha512: 'ab'.repeat(64) } }] }), /subject\[0\]: has no sha256 digest/);
    rejects(signedPayload({ ...base, predicate: 'PASSED' }), /predicate is missing or not an object/);
    rejects(signEnvelope(Buffer.from('not json'), 'application/vnd.in-toto+json', [ED]), /payload: not valid JSON/);
    rejects(signedPayload([base]), /payload: is not a JSON object/);
  });

  test('decodeEnvelope reads the fields without verifying; verify needs a trusted key', () => {
    assert.equal(decodeEnvelope(good, WHAT).signatures[0]!.keyid, ED.keyId);
    assert.throws(() => verifyEnvelope(good, [], WHAT), /no trusted public key/);
  });
});

describe('signing keys', () => {
  async function openssl(dir: string, args: string[]): Promise<string> {
    await runOk('openssl', args, { cwd: dir });
    return readFile(join(dir, args[args.indexOf('-out') + 1]!), 'utf8');
  }

  test('keys OpenSSL makes load: PKCS#8 ed25519, SEC1 P-256, and their public keys; key ids agree', async (t) => {
    const dir = await tempDirFor(t, 'keys');
    const ed = parseSigningKey(await openssl(dir, ['genpkey', '-algorithm', 'ed25519', '-out', 'ed.key']), 'ed.key');
    const ec = parseSigningKey(await openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ec.key']), 'ec.key');
    assert.equal(ed.type, 'ed25519');
    assert.equal(ec.type, 'ecdsa-p256');
    const pub = await openssl(dir, ['pkey', '-in', 'ec.key', '-pubout', '-out', 'ec.pub']);
    assert.deepEqual(parsePublicKeys(pub, 'ec.pub').map((k) => k.keyId), [ec.keyId]);
    const both = parsePublicKeys(`${publicKeyPem(ed)}\r\n${pub}${pub}`, 'keys');
    assert.deepEqual(both.map((k) => k.keyId), [ed.keyId, ec.keyId], 'two blocks, CRLF between, a repeat counted once');
    assert.deepEqual(verifyStatement(signStatement(STATEMENT, [ec]), both, WHAT).keyIds, [ec.keyId]);
  });

  test('refused private keys, each in one line: RSA, other curves, encrypted, public, garbage, two keys', async (t) => {
    const dir = await tempDirFor(t, 'badkeys');
    const refuse = (text: string, reason: RegExp): void => assert.throws(() => parseSigningKey(text, 'k'), (err: Error) => err instanceof UserError && !err.message.includes('\n') && reason.test(err.message));
    refuse(await openssl(dir, ['genpkey', '-algorithm', 'rsa', '-pkeyopt', 'rsa_keygen_bits:1024', '-out', 'rsa.key']), /^k: is an RSA key/);
    refuse(await openssl(dir, ['genpkey', '-algorithm', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp384r1', '-out', 'p384.key']), /^k: is an ECDSA key on curve secp384r1, not P-256/);
    refuse(await openssl(dir, ['ecparam', '-name', 'secp256k1', '-genkey', '-noout', '-out', 'k1.key']), /curve secp256k1/);
    refuse(await openssl(dir, ['genpkey', '-algorithm', 'ed25519', '-aes256', '-pass', 'pass:x', '-out', 'enc.key']), /is an encrypted private key/);
    refuse(await openssl(dir, ['ec', '-in', 'k1.key', '-aes256', '-passout', 'pass:x', '-out', 'legacy.key']), /is an encrypted private key/);
    refuse(await openssl(dir, ['genrsa', '-traditional', '-out', 'trad.key', '1024']), /is an RSA key/);
    refuse(publicKeyPem(ED), /holds a public key: signing needs the private key/);
    refuse(`${privateKeyPem(ED)}${privateKeyPem(EC)}`, /has 2 PEM blocks/);
    refuse(`junk\n${privateKeyPem(ED)}`, /has text outside its PEM blocks/);
    refuse('hello', /is not a PEM key file/);
    refuse('', /has no PEM block/);
    refuse('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', /is not a key OpenSSL can read/);
    refuse('-----BEGIN PRIVATE KEY-----\nA*AA\n-----END PRIVATE KEY-----\n', /is not valid base64/);
    refuse('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', /BEGIN PRIVATE KEY ends with END PUBLIC KEY/);
    assert.throws(() => parsePublicKeys(privateKeyPem(ED), 'p'), /holds a private key: verifying needs only the public key/);
  });

  test('key files: too large, not a regular file, missing', async (t) => {
    const dir = await tempDirFor(t, 'keyfiles');
    await writeFile(join(dir, 'big.key'), Buffer.alloc(70 * 1024, 0x41));
    await assert.rejects(loadSigningKey(join(dir, 'big.key')), /^UserError: signing key .*big\.key: 71680 bytes is more than the 65536/);
    await assert.rejects(loadSigningKey('/dev/zero'), /signing key \/dev\/zero: is not a regular file/);
    await assert.rejects(loadPublicKeys(join(dir, 'none.pub')), /public key .*none\.pub: cannot be read \(no such file\)/);
  });
});

describe('repro-oci key generate', () => {
  for (const type of ['ed25519', 'ecdsa-p256'] as const) {
    test(`${type}: writes PREFIX.key (0600) and PREFIX.pub, prints the key id; the files load and sign`, async (t) => {
      const dir = await tempDirFor(t, 'keygen');
      const result = await runCli(['key', 'generate', '--type', type, '-o', join(dir, 'release'), '--json']);
      assert.equal(result.code, 0, result.stderr);
      const out = JSON.parse(result.stdout) as { type: string; keyId: string; privateKey: string; publicKey: string };
      assert.deepEqual(Object.keys(out), ['type', 'keyId', 'privateKey', 'publicKey']);
      assert.equal(out.type, type);
      assert.equal((await stat(out.privateKey)).mode & 0o777, 0o600);
      assert.equal((await stat(out.publicKey)).mode & 0o777, 0o644);
      const key = await loadSigningKey(out.privateKey);
      const [pub] = await loadPublicKeys(out.publicKey);
      assert.equal(key.keyId, out.keyId);
      assert.equal(pub!.keyId, out.keyId);
      assert.match(await readFile(out.privateKey, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
      assert.deepEqual(verifyStatement(signStatement(STATEMENT, [key]), [pub!], WHAT).keyIds, [out.keyId]);
    });
  }

  test('never overwrites: an existing .key, .pub or dangling symlink stops it with nothing written', async (t) => {
    const dir = await tempDirFor(t, 'keygen-exists');
    await writeFile(join(dir, 'a.pub'), 'mine');
    await symlink(join(dir, 'nowhere'), join(dir, 'b.key'));
    for (const [prefix, name] of [['a', 'a.pub'], ['b', 'b.key']] as const) {
      const result = await runCli(['key', 'generate', '-o', join(dir, prefix)]);
      assert.equal(result.code, 2);
      assert.equal(result.stderr, `repro-oci: ${join(dir, name)}: exists already; a key is never overwritten: remove it or choose another -o\n`);
    }
    assert.equal(await readFile(join(dir, 'a.pub'), 'utf8'), 'mine');
    await assert.rejects(stat(join(dir, 'a.key')), /ENOENT/);
    const bad = await runCli(['key', 'generate', '--type', 'rsa', '-o', join(dir, 'c')]);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr, 'repro-oci: --type rsa: expected ed25519 or ecdsa-p256\n');
    const missing = await runCli(['key', 'generate', '-o', join(dir, 'no/such/dir/k')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^repro-oci: .*no\/such\/dir\/k\.key: cannot write: no such file or directory \(ENOENT\)\n$/);
  });
});
