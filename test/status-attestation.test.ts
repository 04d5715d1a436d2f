import assert from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { UserError } from '../src/errors.js';
import { inTotoCanonicalJson, MAX_ATTESTATION_BYTES, parseRebuilderKeys, verifyAttestation, type AttestationKey, type ExpectedProduct } from '../src/status/attestation.js';
import { zstdFrame } from './support/bombs.js';
import { makeKeyPair, makeRebuilderdLink, rebuilderdKeyId, rebuilderdPublicKeyPem, rebuilderdPublicKeysBody, securesystemslibPublicKey, zstdCompressed, tamperLink, type RebuilderdLinkOptions } from './support/in-toto.js';

const worker = makeKeyPair();
const daemon = makeKeyPair();
const stranger = makeKeyPair();
const [workerKey] = parseRebuilderKeys(rebuilderdPublicKeyPem(worker.publicKey), 'worker key') as [AttestationKey];
const [daemonKey] = parseRebuilderKeys(rebuilderdPublicKeyPem(daemon.publicKey), 'daemon key') as [AttestationKey];
const [strangerKey] = parseRebuilderKeys(rebuilderdPublicKeyPem(stranger.publicKey), 'stranger key') as [AttestationKey];

const FILE = 'zstd-1:1.5.6-1-x86_64.pkg.tar.zst';
const CONTENT = Buffer.from('the package file\n');
const SHA256 = createHash('sha256').update(CONTENT).digest('hex');
const EXPECTED: ExpectedProduct = { name: 'zstd', version: '1:1.5.6-1', arch: 'x86_64', fileName: FILE, sha256: SHA256 };
const WHAT = 'attestation of zstd from rebuilder A';

function link(opts: Partial<RebuilderdLinkOptions> = {}): Buffer {
  return makeRebuilderdLink({ fileName: FILE, content: CONTENT, worker: worker.privateKey, daemon: daemon.privateKey, ...opts });
}


async function rejects(bytes: Buffer, reason: RegExp, keys: readonly AttestationKey[] = [daemonKey], expected: ExpectedProduct = EXPECTED): Promise<void> {
  await assert.rejects(verifyAttestation(bytes, keys, expected, WHAT), (err: Error) => {
    assert.ok(err instanceof UserError, `${err.name}: ${err.message}`);
    assert.ok(err.message.startsWith(`${WHAT}: `), err.message);
    assert.doesNotMatch(err.message, /\n/);
    assert.match(err.message, reason);
    return true;
  });
}

describe('rebuilderd attestations', () => {
  test('a rebuilderd link verifies by the daemon key, by the worker key, and by both', async () => {
    const bytes = link();
    const byDaemon = await verifyAttestation(bytes, [daemonKey], EXPECTED, WHAT);
    assert.deepEqual(byDaemon, {
      digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
      stepName: `rebuild ${FILE}`,
      productFile: FILE,
      productSha256: SHA256,
      bound: true,
      signedBy: [daemonKey.fingerprint],
    });
    assert.deepEqual((await verifyAttestation(bytes, [workerKey], EXPECTED, WHAT)).signedBy, [workerKey.fingerprint]);
    const both = await verifyAttestation(bytes, [strangerKey, workerKey, daemonKey], EXPECTED, WHAT);
    assert.deepEqual(both.signedBy, [workerKey.fingerprint, daemonKey.fingerprint].sort());
  });

  test('the link names the artifact by its file name and carries environment null, both hashes, two signatures', () => {
    const doc = JSON.parse(link().toString());
    assert.deepEqual(Object.keys(doc), ['signatures', 'signed']);
    assert.deepEqual(Object.keys(doc.signed), ['_type', 'name', 'materials', 'products', 'environment', 'byproducts', 'command']);
    assert.equal(doc.signed.environment, null);
    assert.deepEqual(Object.keys(doc.signed.products), [FILE]);
    assert.deepEqual(Object.keys(doc.signed.products[FILE]), ['sha256', 'sha512']);
    assert.deepEqual(doc.signatures.map((s: { keyid: string }) => s.keyid), [workerKey.keyId, daemonKey.keyId]);
    assert.equal(rebuilderdKeyId(daemon.publicKey), daemonKey.keyId);
  });

  test('without a locked hash the product is found by name, version and architecture, and is not bound', async () => {
    const result = await verifyAttestation(link(), [daemonKey], { name: 'zstd', version: '1:1.5.6-1', arch: 'x86_64' }, WHAT);
    assert.equal(result.productFile, FILE);
    assert.equal(result.bound, false);
    await rejects(link(), /no product for "?zstd-1:1\.5\.6-2-x86_64\.pkg\.tar\.\*/, [daemonKey], { name: 'zstd', version: '1:1.5.6-2', arch: 'x86_64' });
  });

  test('a zstd-compressed link verifies, with the digest of the decoded JSON', async () => {
    const bytes = link();
    const result = await verifyAttestation(await zstdCompressed(bytes), [daemonKey], EXPECTED, WHAT);
    assert.equal(result.digest, `sha256:${createHash('sha256').update(bytes).digest('hex')}`);
  });

  test('a link signed by the Rust in-toto crate verifies (its own test vector: key id without hash algorithms, a newline in stderr)', async () => {
    // in-toto-rs v0.4.0, src/models/metadata.rs, serialize_link_metablock: signed with tests/ed25519/ed25519-1.
    const bytes = Buffer.from(
      JSON.stringify({
        signed: {
          _type: 'link',
          name: '',
          materials: {},
          products: { 'tests/test_link/foo.tar.gz': { sha256: '52947cb78b91ad01fe81cd6aef42d1f6817e92b9e6936c1e5aabb7c98514f355' } },
          byproducts: { 'return-value': 0, stderr: 'a foo.py\n', stdout: '' },
          command: ['tar', 'zcvf', 'foo.tar.gz', 'foo.py'],
          environment: null,
        },
        signatures: [
          {
            keyid: 'e0294a3f17cc8563c3ed5fceb3bd8d3f6bfeeaca499b5c9572729ae015566554',
            sig: '62918f5f84fca149c15fcbc247a831e0360d33f0d9c8a89e6f623a011a8b807e2b0ef816a37356d966e9ad446ec234efb2b3bb4b04f338c0560d9cdfa1dcba0a',
          },
        ],
      }),
    );
    const keys = parseRebuilderKeys('{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"eb8ac26b5c9ef0279e3be3e82262a93bce16fe58ee422500d38caf461c65a3b6"}}', 'alice');
    const result = await verifyAttestation(bytes, keys, { name: 'foo', version: '1', arch: 'any', fileName: 'tests/test_link/foo.tar.gz', sha256: '52947cb78b91ad01fe81cd6aef42d1f6817e92b9e6936c1e5aabb7c98514f355' }, WHAT);
    assert.deepEqual(result.signedBy, [keys[0]!.fingerprint]);
  });

  describe('hostile attestations fail with one line that says why', () => {
    test('product hash changed after signing', () =>
      rejects(tamperLink(link(), (d) => (d.signed.products[FILE].sha256 = 'f'.repeat(64))), /signature by sha256:[0-9a-f]{64} does not verify/));
    test('product renamed after signing', () =>
      rejects(tamperLink(link(), (d) => (d.signed.products = { [FILE.replace('1.5.6', '1.5.7')]: d.signed.products[FILE] })), /does not verify/));
    test('signed, but for another file than the locked one', () =>
      rejects(link({ content: Buffer.from('something else') }), new RegExp(`hash differs: got sha256 [0-9a-f]{64}, locked ${SHA256}`)));
    test("another package's link", () => rejects(link({ fileName: 'glibc-2.39-1-x86_64.pkg.tar.zst' }), /no product for zstd-1:1\.5\.6-1-x86_64\.pkg\.tar\.zst \(products: glibc-2\.39-1-x86_64\.pkg\.tar\.zst\)/));
    test('signed by another key', () => rejects(link({ worker: stranger.privateKey, daemon: undefined }), /no signature by a known key \(signed by key id [0-9a-f]{16}; known: [0-9a-f]{16}\)/));
    test('no key to check with', () => rejects(link(), /no public key to check it with/, []));
    test('truncated signature', () => rejects(tamperLink(link(), (d) => (d.signatures[1]!.sig = d.signatures[1]!.sig.slice(0, 100))), /signature by sha256:\S+ is 50 bytes, not the 64 of ed25519/));
    test('garbled signature', () =>
      rejects(tamperLink(link(), (d) => (d.signatures[1]!.sig = (d.signatures[1]!.sig[0] === '0' ? '1' : '0') + d.signatures[1]!.sig.slice(1))), /does not verify/));
    test('signature that is not hex', () => rejects(tamperLink(link(), (d) => (d.signatures[1]!.sig = 'Z'.repeat(128))), /signature 1 by [0-9a-f]{16} is not lowercase hex/));
    test('signatures removed', () => rejects(tamperLink(link(), (d) => (d.signatures = [])), /has no signatures/));
    test('only the signature by an unknown key left', () => rejects(tamperLink(link(), (d) => (d.signatures = d.signatures.slice(0, 1))), /no signature by a known key/));
    test('extra field added to signed', () => rejects(tamperLink(link(), (d) => (d.signed.verified = true)), /signed link has an unknown field verified/));
    test('extra field added to the metablock', () => rejects(tamperLink(link(), (d) => Object.assign(d, { trusted: true })), /in-toto metablock has an unknown field trusted/));
    test('a repeated JSON key: the last copy would win in JSON.parse, the first in other parsers', () => {
      const bytes = link();
      const text = bytes.toString();
      const forged = text.replace('"products":{', `"products":{"${FILE}":{"sha256":"${'0'.repeat(64)}"},"x":{"sha256":"${'0'.repeat(64)}"}},"products":{`);
      return rejects(Buffer.from(forged), /has the member products twice in one object/);
    });
    test('not JSON', () => rejects(Buffer.from('<html>rate limited</html>'), /not valid JSON at line 1, column 1: /));
    test('not an object', () => rejects(Buffer.from('[1,2]'), /is not a JSON object/));
    test('not UTF-8', () => rejects(Buffer.concat([Buffer.from('{"signed":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), /is not valid UTF-8/));
    test('a layout, not a link', () => rejects(tamperLink(link(), (d) => (d.signed._type = 'layout')), /is an in-toto layout, not a link/));
    test('a float where canonical JSON has integers only', () => rejects(tamperLink(link(), (d) => (d.signed.byproducts = { 'return-value': 0.5 })), /link byproducts return-value is not a string or an integer/));
    test('a control character on which implementations sign different bytes', () =>
      rejects(link({ edit: (s) => (s.byproducts = { stdout: 'a\tb' }) }), /has a control character, on which in-toto implementations sign different bytes/));
    test('a backslash before an n', () => rejects(link({ edit: (s) => (s.command = ['C:\\new']) }), /has a backslash before an n/));
    test('a malformed product hash', () => rejects(tamperLink(link(), (d) => (d.signed.products[FILE].sha256 = 'ABC')), /products zstd-1:1\.5\.6-1-x86_64\.pkg\.tar\.zst has a malformed sha256 hash/));
    test('deep nesting', () => {
      const text = link().toString();
      const materials = text.slice(text.indexOf('"materials":'), text.indexOf(',"products":'));
      return rejects(Buffer.from(text.replace(materials, `"materials":${'['.repeat(200_000)}${']'.repeat(200_000)}`)), /link materials is not an object/);
    });
    test('a hostile product name is shown quoted and cut', () =>
      rejects(link({ fileName: `\u001b[2J${'x'.repeat(500)}`, edit: (s) => (s.name = 'rebuild') }), /has a control character/));
    test('a huge body', () => rejects(Buffer.alloc(MAX_ATTESTATION_BYTES + 1, 0x20), /more than the 1048576 an attestation may have/));
    test('a zstd bomb', () => rejects(zstdFrame([{ zeros: 64 * MAX_ATTESTATION_BYTES }]), /decodes to more than the 1048576 bytes/));
    test('a corrupt zstd stream', async () => {
      const packed = await zstdCompressed(link());
      await rejects(packed.subarray(0, packed.length - 8), /corrupt or truncated zstd stream/);
    });
  });
});

describe('public keys', () => {
  test("rebuilderd's CRLF PEM (NULL algorithm parameter) loads, as the same key as its RFC 8410 and LF forms", () => {
    const pem = rebuilderdPublicKeyPem(daemon.publicKey);
    assert.match(pem, /^-----BEGIN PUBLIC KEY-----\r\nMCwwBwYDK2VwBQADIQ[A-Za-z0-9+/]{44}==\r\n-----END PUBLIC KEY-----\r\n$/);
    assert.throws(() => createPublicKey(pem)); // why normalising is needed
    const standard = daemon.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const [fromCrlf] = parseRebuilderKeys(pem, 'crlf');
    const [fromLf] = parseRebuilderKeys(pem.replace(/\r\n/g, '\n'), 'lf');
    const [fromStandard] = parseRebuilderKeys(standard, 'standard');
    assert.equal(fromCrlf!.fingerprint, `sha256:${createHash('sha256').update(daemon.publicKey.export({ format: 'der', type: 'spki' })).digest('hex')}`);
    for (const k of [fromLf!, fromStandard!]) {
      assert.equal(k.fingerprint, fromCrlf!.fingerprint);
      assert.equal(k.keyId, fromCrlf!.keyId);
    }
    assert.ok(fromCrlf!.key.equals(daemon.publicKey));
  });

  test("rebuilderd's own test vector: the PEM its daemon serves for a known private key, byte for byte", () => {
    // rebuilderd daemon/src/attestation.rs, test_load_privkey: ring's PKCS#8 v2 key (which OpenSSL does not read),
    // re-wrapped here as PKCS#8 v1 around the same 32-byte seed.
    const seed = Buffer.from('MFECAQEwBQYDK2VwBCIEINOWEV/DNN+AsZ+pLoixusXNmgS5x0TNXvkLQUnKz92kgSEAB5ySaw+WE9Ut06fYlPf2V4+5gbFHA5HZJK7n2WWAGvA=', 'base64').subarray(16, 48);
    const privateKey = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
    const served = '-----BEGIN PUBLIC KEY-----\r\nMCwwBwYDK2VwBQADIQAHnJJrD5YT1S3Tp9iU9/ZXj7mBsUcDkdkkrufZZYAa8A==\r\n-----END PUBLIC KEY-----\r\n';
    assert.equal(rebuilderdPublicKeyPem(privateKey), served);
    const [key] = parseRebuilderKeys(served, 'served');
    assert.ok(key!.key.equals(createPublicKey(privateKey)));
  });

  test('several PEM keys, the public-keys body, and an in-toto .pub JSON key', () => {
    const both = parseRebuilderKeys(rebuilderdPublicKeyPem(worker.publicKey) + rebuilderdPublicKeyPem(daemon.publicKey), 'two');
    assert.deepEqual(both.map((k) => k.keyId), [workerKey.keyId, daemonKey.keyId]);
    assert.deepEqual(parseRebuilderKeys(rebuilderdPublicKeysBody([daemon.publicKey]), 'body').map((k) => k.keyId), [daemonKey.keyId]);
    assert.deepEqual(parseRebuilderKeys(securesystemslibPublicKey(daemon.publicKey), 'json').map((k) => k.fingerprint), [daemonKey.fingerprint]);
    assert.equal(parseRebuilderKeys(rebuilderdPublicKeyPem(daemon.publicKey).repeat(2), 'twice').length, 1);
  });

  const hostileKeys: [string, string, RegExp][] = [
    ['empty', '  \n', /no public key in it/],
    ['garbage', 'ssh-ed25519 AAAA', /neither a PEM public key nor an in-toto JSON key/],
    ['a private key', makeKeyPair().privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), /holds a private key/],
    ['an RSA key', generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' }).toString(), /not an ed25519 key/],
    ['bad base64', '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA===\n-----END PUBLIC KEY-----\n', /not valid base64/],
    ['mismatched labels', '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PRIVATE KEY-----\n', /ends with END PRIVATE KEY/],
    ['text after the key', `${rebuilderdPublicKeyPem(daemon.publicKey)}trailing`, /text outside its PEM blocks/],
    ['a JSON private key', '{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"' + '0'.repeat(64) + '","private":"' + '1'.repeat(64) + '"}}', /holds a private key/],
    ['a JSON RSA key', '{"keytype":"rsa","scheme":"rsassa-pss-sha256","keyval":{"public":"x"}}', /not ed25519/],
    ['a JSON key with a wrong keyid', '{"keytype":"ed25519","scheme":"ed25519","keyid":"' + 'a'.repeat(64) + '","keyval":{"public":"' + '0'.repeat(64) + '"}}', /is not the id of the key it names/],
    ['an empty public-keys body', '{"current":[]}', /not a list of PEM public keys/],
    ['huge', 'x'.repeat(100_000), /more than the 65536/],
  ];
  for (const [name, text, reason] of hostileKeys) {
    test(`refuses ${name}`, () => {
      assert.throws(() => parseRebuilderKeys(text, 'key file'), (err: Error) => err instanceof UserError && err.message.startsWith('key file: ') && reason.test(err.message));
    });
  }
});

describe('in-toto canonical JSON', () => {
  test("is securesystemslib's: sorted by code point, no whitespace, only quote and backslash escaped", () => {
    assert.equal(inTotoCanonicalJson({ b: [1, true, null], a: 'x"y\\z\nw', '\u{1F600}': 1, '\uFFFF': 2 }), '{"a":"x\\"y\\\\z\nw","b":[1,true,null],"\uFFFF":2,"\u{1F600}":1}');
    assert.throws(() => inTotoCanonicalJson({ a: 1.5 }), /integers only/);
  });
});
