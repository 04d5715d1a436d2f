import assert from 'node:assert/strict';
import { sign as nodeSign, createPrivateKey, createPublicKey } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { bundleFromJSON, envelopeToJSON } from '@sigstore/bundle';
import { DSSEBundleBuilder } from '@sigstore/sign';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { IN_TOTO_PAYLOAD_TYPE, signEnvelope, signStatement, verifyEnvelope, verifyStatement } from '../src/attest/dsse.js';
import { generateSigningKey, privateKeyPem, publicKeyPem, type SigningKey } from '../src/attest/signing-key.js';
import { UserError } from '../src/errors.js';
import { run, runOk, tempDirFor } from './support/cli.js';

/**
 * Our DSSE envelopes against implementations repro-oci did not write, both ways, for both key types:
 * sigstore-js (@sigstore/sign builds envelopes, @sigstore/verify checks them: the code npm uses for provenance),
 * Debian's python3-securesystemslib 0.26 (its signers and verifiers; that version has no DSSE module, so the few
 * lines of envelope handling on the Python side are the test's, the cryptography securesystemslib's), and OpenSSL's
 * command line for the bare signature encodings. A missing tool fails the test: it never skips.
 */

const STATEMENT = {
  subject: [{ name: 'registry.example.org/team/hello', digest: `sha256:${'ab'.repeat(32)}` as const }],
  predicateType: 'https://slsa.dev/verification_summary/v1',
  predicate: { verifier: { id: 'https://example.org/repro-oci' }, verificationResult: 'PASSED' },
};
const KEYS: Record<string, SigningKey> = { ed25519: generateSigningKey('ed25519'), 'ecdsa-p256': generateSigningKey('ecdsa-p256') };

function tamperPayload(envelope: Buffer): Buffer {
  const doc = JSON.parse(envelope.toString('utf8')) as { payload: string };
  const payload = Buffer.from(doc.payload, 'base64').toString('utf8').replace('PASSED', 'FAILED');
  assert.notEqual(payload, Buffer.from(doc.payload, 'base64').toString('utf8'), 'the tamper changed something');
  return Buffer.from(JSON.stringify({ ...doc, payload: Buffer.from(payload).toString('base64') }));
}

function tamperSignature(envelope: Buffer): Buffer {
  const doc = JSON.parse(envelope.toString('utf8')) as { signatures: { sig: string; keyid?: string }[] };
  const sig = Buffer.from(doc.signatures[0]!.sig, 'base64');
  sig[sig.length - 5]! ^= 0x01;
  return Buffer.from(JSON.stringify({ ...doc, signatures: [{ ...doc.signatures[0], sig: sig.toString('base64') }] }));
}

/** @sigstore/verify with only a public key: no transparency log, no timestamp, no certificate authority. */
function sigstoreVerifies(envelope: Buffer, key: SigningKey): boolean {
  const bundle = bundleFromJSON({
    mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
    verificationMaterial: { publicKey: { hint: 'repro-oci' }, tlogEntries: [], timestampVerificationData: { rfc3161Timestamps: [] } },
    dsseEnvelope: JSON.parse(envelope.toString('utf8')) as unknown,
  });
  const trust = toTrustMaterial({ certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] } as never, (hint) => {
    assert.equal(hint, 'repro-oci');
    return { publicKey: createPublicKey(publicKeyPem(key)), validFor: () => true };
  });
  const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
  try {
    verifier.verify(toSignedEntity(bundle));
    return true;
  } catch (err) {
    assert.equal((err as Error).name, 'VerificationError', `sigstore failed for another reason: ${(err as Error).message}`);
    return false;
  }
}

/** An envelope made by @sigstore/sign (its PAE, its envelope), the signature by node:crypto on the PEM file's key. */
async function sigstoreSigns(payload: Buffer, key: SigningKey): Promise<Buffer> {
  const privateKey = createPrivateKey(privateKeyPem(key));
  const builder = new DSSEBundleBuilder({
    witnesses: [],
    signer: {
      sign: async (data: Buffer) => ({
        signature: nodeSign(key.type === 'ed25519' ? null : 'sha256', data, privateKey),
        key: { $case: 'publicKey', publicKey: publicKeyPem(key), hint: key.keyId },
      }),
    },
  });
  const bundle = await builder.create({ data: payload, type: IN_TOTO_PAYLOAD_TYPE });
  return Buffer.from(JSON.stringify(envelopeToJSON(bundle.content.dsseEnvelope)));
}

function rejectedByUs(envelope: Buffer, key: SigningKey): void {
  assert.throws(() => verifyEnvelope(envelope, [key], 'envelope'), (err: Error) => err instanceof UserError && /no signature verifies/.test(err.message));
}

for (const [type, key] of Object.entries(KEYS)) {
  describe(`DSSE with ${type} keys, against sigstore-js`, () => {
    test('sigstore verifies our envelope; a tampered payload or signature fails there as here', () => {
      const ours = signStatement(STATEMENT, [key]);
      assert.equal(sigstoreVerifies(ours, key), true);
      for (const tampered of [tamperPayload(ours), tamperSignature(ours)]) {
        assert.equal(sigstoreVerifies(tampered, key), false);
        rejectedByUs(tampered, key);
      }
      assert.equal(sigstoreVerifies(ours, generateSigningKey(key.type)), false, 'another key of the same type does not verify in sigstore');
    });

    test("we verify sigstore's envelope and read its statement; tampered fails here as there", async () => {
      const ourPayload = JSON.parse(signStatement(STATEMENT, [key]).toString('utf8')) as { payload: string };
      const theirs = await sigstoreSigns(Buffer.from(ourPayload.payload, 'base64'), key);
      assert.equal(sigstoreVerifies(theirs, key), true, 'sigstore verifies its own envelope (the harness works)');
      const read = verifyStatement(theirs, [key], 'their envelope');
      assert.deepEqual(read.keyIds, [key.keyId]);
      assert.deepEqual(read.statement, STATEMENT);
      for (const tampered of [tamperPayload(theirs), tamperSignature(theirs)]) {
        rejectedByUs(tampered, key);
        assert.equal(sigstoreVerifies(tampered, key), false);
      }
    });
  });
}

/**
 * securesystemslib 0.26: SSlibKey.verify_signature and SSlibSigner.sign. The key goes over as the PEM files
 * `repro-oci key generate` writes, converted by securesystemslib's own importers; Python computes PAE itself.
 */
const PYTHON = String.raw`
import base64, json, sys
from securesystemslib import keys as sslib_keys
from securesystemslib.signer import SSlibKey, SSlibSigner, Signature
from cryptography.hazmat.primitives import serialization

mode, keytype, key_dir = sys.argv[1], sys.argv[2], sys.argv[3]
priv_pem = open(key_dir + '/k.key', 'rb').read()
pub_pem = open(key_dir + '/k.pub', 'rb').read()
if keytype == 'ed25519':
    priv = serialization.load_pem_private_key(priv_pem, None)
    raw_priv = priv.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()).hex()
    raw_pub = serialization.load_pem_public_key(pub_pem).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    key_dict = {'keytype': 'ed25519', 'scheme': 'ed25519', 'keyval': {'public': raw_pub, 'private': raw_priv}}
    key_dict['keyid'] = sslib_keys._get_keyid('ed25519', 'ed25519', {'public': raw_pub})
else:
    key_dict = sslib_keys.import_ecdsakey_from_private_pem(priv_pem.decode(), scheme='ecdsa-sha2-nistp256')
public = SSlibKey.from_securesystemslib_key(key_dict)

def pae(payload_type, body):
    t = payload_type.encode()
    return b'DSSEv1 %d %s %d %s' % (len(t), t, len(body), body)

def b64decode(s):
    return base64.urlsafe_b64decode(s + '=' * (-len(s) % 4)) if ('-' in s or '_' in s) else base64.b64decode(s, validate=True)

if mode == 'verify':
    env = json.load(sys.stdin)
    body = b64decode(env['payload'])
    ok = False
    for s in env['signatures']:
        try:
            public.verify_signature(Signature(public.keyid, b64decode(s['sig']).hex()), pae(env['payloadType'], body))
            ok = True
        except Exception:
            pass
    print('VERIFIED' if ok else 'REJECTED')
else:
    body = sys.stdin.buffer.read()
    sig = SSlibSigner(key_dict).sign(pae('application/vnd.in-toto+json', body))
    print(json.dumps({'payload': base64.b64encode(body).decode(), 'payloadType': 'application/vnd.in-toto+json',
                      'signatures': [{'keyid': sig.keyid, 'sig': base64.b64encode(bytes.fromhex(sig.signature)).decode()}]}))
`;

async function python(t: { after(fn: () => Promise<void>): void }, mode: 'verify' | 'sign', key: SigningKey, input: Buffer): Promise<string> {
  const dir = await tempDirFor(t, 'sslib');
  await writeFile(join(dir, 'k.key'), privateKeyPem(key), { mode: 0o600 });
  await writeFile(join(dir, 'k.pub'), publicKeyPem(key));
  // /usr/bin/python3: Debian's, which has the python3-securesystemslib package (a pyenv python on PATH may not).
  return (await runOk('/usr/bin/python3', ['-c', PYTHON, mode, key.type, dir], { input })).stdout.trim();
}

for (const [type, key] of Object.entries(KEYS)) {
  describe(`DSSE with ${type} keys, against securesystemslib 0.26`, () => {
    test('securesystemslib verifies our signatures; tampered ones it rejects', async (t) => {
      const ours = signStatement(STATEMENT, [key]);
      assert.equal(await python(t, 'verify', key, ours), 'VERIFIED');
      for (const tampered of [tamperPayload(ours), tamperSignature(ours)]) {
        assert.equal(await python(t, 'verify', key, tampered), 'REJECTED');
        rejectedByUs(tampered, key);
      }
    });

    test("we verify securesystemslib's signatures; tampered ones we reject", async (t) => {
      const payload = Buffer.from((JSON.parse(signStatement(STATEMENT, [key]).toString('utf8')) as { payload: string }).payload, 'base64');
      const theirs = Buffer.from(await python(t, 'sign', key, payload));
      assert.deepEqual(verifyStatement(theirs, [key], 'their envelope').statement, STATEMENT);
      assert.equal(await python(t, 'verify', key, theirs), 'VERIFIED', 'securesystemslib verifies its own envelope (the harness works)');
      for (const tampered of [tamperPayload(theirs), tamperSignature(theirs)]) {
        rejectedByUs(tampered, key);
        assert.equal(await python(t, 'verify', key, tampered), 'REJECTED');
      }
    });
  });
}

describe('signature encodings against the openssl command', () => {
  for (const [type, key] of Object.entries(KEYS)) {
    test(`${type}: openssl verifies our signature of the PAE; the key id is sha256 of openssl's DER public key`, async (t) => {
      const dir = await tempDirFor(t, 'openssl');
      const envelope = JSON.parse(signEnvelope(Buffer.from('hello world'), 'http://example.com/HelloWorld', [key]).toString('utf8')) as { signatures: { sig: string; keyid: string }[] };
      await writeFile(join(dir, 'k.pub'), publicKeyPem(key));
      await writeFile(join(dir, 'pae'), 'DSSEv1 29 http://example.com/HelloWorld 11 hello world');
      await writeFile(join(dir, 'sig'), Buffer.from(envelope.signatures[0]!.sig, 'base64'));
      const check = type === 'ed25519'
        ? ['pkeyutl', '-verify', '-pubin', '-inkey', 'k.pub', '-rawin', '-in', 'pae', '-sigfile', 'sig']
        : ['dgst', '-sha256', '-verify', 'k.pub', '-signature', 'sig', 'pae'];
      assert.match((await runOk('openssl', check, { cwd: dir })).stdout, /^(Verified OK|Signature Verified Successfully)$/m);
      await writeFile(join(dir, 'pae'), 'DSSEv1 29 http://example.com/HelloWorld 11 hello worle');
      assert.notEqual((await run('openssl', check, { cwd: dir })).code, 0, 'openssl rejects a changed message');
      const der = await runOk('sh', ['-c', 'openssl pkey -pubin -in k.pub -outform DER | sha256sum'], { cwd: dir });
      assert.equal(der.stdout.split(' ')[0], key.keyId);
      assert.equal(envelope.signatures[0]!.keyid, key.keyId);
    });
  }
});
