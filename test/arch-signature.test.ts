import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { keyringIdentity, loadKeyring, loadKeyringFromDirectory, type Keyring, type KeyringOptions } from '../src/pacman/keyring.js';
import { checkPackageSignature, SignatureError, signaturePolicy, verifyDetachedSignature, type SignatureFailure } from '../src/pacman/signature.js';
import { parseSigLevel } from '../src/pacman/siglevel.js';
import { UserError } from '../src/errors.js';
import { Gpg } from './support/gpg.js';

const at = (iso: string): Date => new Date(iso);
const DATA = Buffer.from('pretend this is a .pkg.tar.zst\n'.repeat(1000));

interface Fixture {
  gpg: Gpg;
  masters: string[];
  /** Certified by all three masters. */
  packager: string;
  /** Certified by two masters only. */
  half: string;
  /** Signs with a subkey; certified by all three masters. */
  subkeyed: string;
  subkey: string;
  /** Certified by all three, then revoked with its revocation certificate. */
  revokedByCert: string;
  /** In no keyring file. */
  stranger: string;
  /** Created 2020-01-01 expiring after 2y = 730 days (2021-12-31); extended in 2021 to 2030 after `oldKeyBeforeExtension` was exported. */
  old: string;
  oldKeyBeforeExtension: Buffer;
  keyFile: Buffer;
  trustedFile: string;
  sig: Record<'packager' | 'half' | 'subkeyed' | 'revokedByCert' | 'stranger' | 'old2021' | 'old2023', Buffer>;
}

let fx: Fixture;
let home: Gpg | undefined;

before(async () => {
  const gpg = await Gpg.create();
  home = gpg;
  const masters: string[] = [];
  for (const n of [1, 2, 3]) masters.push(await gpg.genKey(`Master ${n} <master${n}@example.invalid>`, { at: at('2019-01-01T00:00:00Z') }));
  const certifyBy = async (count: number, target: string, when?: Date): Promise<void> => {
    for (const master of masters.slice(0, count)) await gpg.certify(master, target, when);
  };

  const packager = await gpg.genKey('Packager <packager@example.invalid>', { expire: '10y' });
  await certifyBy(3, packager);
  const half = await gpg.genKey('Half Trusted <half@example.invalid>', { algo: 'rsa2048' });
  await certifyBy(2, half);
  const subkeyed = await gpg.genKey('Subkeyed <subkeyed@example.invalid>', { usage: 'cert' });
  const subkey = await gpg.addSubkey(subkeyed, { usage: 'sign', expire: '5y' });
  await certifyBy(3, subkeyed);
  const revokedByCert = await gpg.genKey('Revoked <revoked@example.invalid>');
  await certifyBy(3, revokedByCert);
  const stranger = await gpg.genKey('Stranger <stranger@example.invalid>');

  const old = await gpg.genKey('Old Packager <old@example.invalid>', { expire: '2y', at: at('2020-01-01T00:00:00Z') });
  await certifyBy(3, old, at('2020-02-01T00:00:00Z'));
  const old2021 = await gpg.detachSign(old, DATA, at('2021-01-01T00:00:00Z'));
  const oldKeyBeforeExtension = await gpg.exportPublic([old]);
  // gpg refuses to sign with an expired key, so the 2023 signature needs the key extended first.
  await gpg.setExpire(old, '2030-01-01', at('2021-06-01T00:00:00Z'));
  const old2023 = await gpg.detachSign(old, DATA, at('2023-01-01T00:00:00Z'));

  const sig = {
    packager: await gpg.detachSign(packager, DATA),
    half: await gpg.detachSign(half, DATA),
    subkeyed: await gpg.detachSign(subkeyed, DATA),
    revokedByCert: await gpg.detachSign(revokedByCert, DATA),
    stranger: await gpg.detachSign(stranger, DATA),
    old2021,
    old2023,
  };
  await gpg.revoke(revokedByCert);
  const keyFile = await gpg.exportPublic([...masters, packager, half, subkeyed, revokedByCert, old]);
  const trustedFile = masters.map((m) => `${m}:4:\n`).join('');
  fx = { gpg, masters, packager, half, subkeyed, subkey, revokedByCert, stranger, old, oldKeyBeforeExtension, keyFile, trustedFile, sig };
});

after(async () => {
  await home?.dispose();
});

function keyring(options: KeyringOptions & { revoked?: string; keys?: Buffer } = {}): Promise<Keyring> {
  return loadKeyring({ keys: options.keys ?? fx.keyFile, trusted: fx.trustedFile, revoked: options.revoked ?? '', what: 'test' }, options);
}

async function rejects(promise: Promise<unknown>, reason: SignatureFailure, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof SignatureError, `expected a SignatureError, got ${String(err)}`);
    assert.ok(err instanceof UserError);
    assert.equal(err.reason, reason, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

async function* chunks(data: Buffer, size: number): AsyncIterable<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}

test('a signature by a key certified by three masters verifies, from a Buffer or a stream', async () => {
  const kr = await keyring();
  const before = Date.now();
  const result = await verifyDetachedSignature({ data: DATA, signature: fx.sig.packager, keyring: kr, what: 'package foo-1-1' });
  assert.equal(result.fingerprint, fx.packager);
  assert.equal(result.signingKeyFingerprint, fx.packager);
  assert.equal(result.signerUserId, 'Packager <packager@example.invalid>');
  assert.ok(Math.abs(result.created.getTime() - before) < 10 * 60_000, `created ${result.created.toISOString()}`);

  const streamed = await verifyDetachedSignature({ data: chunks(DATA, 1000), signature: fx.sig.packager, keyring: kr, what: 'package foo-1-1' });
  assert.deepEqual(streamed, result);
});

test('one flipped byte of data is a bad signature, streamed or not', async () => {
  const kr = await keyring();
  const changed = Buffer.from(DATA);
  changed[12345] = (changed[12345] as number) ^ 0x01;
  await rejects(verifyDetachedSignature({ data: changed, signature: fx.sig.packager, keyring: kr, what: 'package foo-1-1' }), 'bad-signature', /^package foo-1-1: bad signature from key [0-9A-F]{40} \(Packager/);
  await rejects(verifyDetachedSignature({ data: chunks(changed, 4096), signature: fx.sig.packager, keyring: kr, what: 'package foo-1-1' }), 'bad-signature', /bad signature/);
});

test('a key certified by fewer masters than required is not trusted; TrustAll or a lower count accepts it', async () => {
  const options = { data: DATA, signature: fx.sig.half, what: 'package half-1-1' };
  await rejects(verifyDetachedSignature({ ...options, keyring: await keyring() }), 'untrusted', /is not trusted: certified by 2 of the 3 trusted master keys required/);
  const withTwo = await verifyDetachedSignature({ ...options, keyring: await keyring({ requiredCertifications: 2 }) });
  assert.equal(withTwo.fingerprint, fx.half);
  const trustAll = await verifyDetachedSignature({ ...options, keyring: await keyring(), trust: 'trustAll' });
  assert.equal(trustAll.fingerprint, fx.half);
});

test('a trusted master key is valid by itself; a certification from a non-master counts for nothing', async () => {
  const gpg = fx.gpg;
  const masterSig = await gpg.detachSign(fx.masters[0] as string, DATA);
  const result = await verifyDetachedSignature({ data: DATA, signature: masterSig, keyring: await keyring(), what: 'db core' });
  assert.equal(result.fingerprint, fx.masters[0]);
  // `packager` is valid, but only masters count: its certification of `half` does not lift it to three.
  const other = await Gpg.create();
  try {
    await other.run(['--import'], { input: await gpg.run(['--export-secret-keys', fx.packager]) });
    await other.run(['--import'], { input: await gpg.exportPublic([fx.half]) });
    await other.certify(fx.packager, fx.half);
    const keys = Buffer.concat([await gpg.exportPublic([...fx.masters, fx.packager]), await other.exportPublic([fx.half])]);
    await rejects(verifyDetachedSignature({ data: DATA, signature: fx.sig.half, keyring: await keyring({ keys }), what: 'x' }), 'untrusted', /certified by 2 of the 3/);
  } finally {
    await other.dispose();
  }
});

test('a signature by a signing subkey verifies and names both keys', async () => {
  const result = await verifyDetachedSignature({ data: DATA, signature: fx.sig.subkeyed, keyring: await keyring(), what: 'package sub-1-1' });
  assert.equal(result.fingerprint, fx.subkeyed);
  assert.equal(result.signingKeyFingerprint, fx.subkey);
});

test('keys listed in -revoked or carrying a revocation signature are refused, even under TrustAll', async () => {
  const listed = await keyring({ revoked: `# comment\n${fx.packager}\n` });
  await rejects(verifyDetachedSignature({ data: DATA, signature: fx.sig.packager, keyring: listed, what: 'package foo-1-1' }), 'revoked', /listed as revoked by the keyring/);
  await rejects(verifyDetachedSignature({ data: DATA, signature: fx.sig.packager, keyring: listed, what: 'p', trust: 'trustAll' }), 'revoked', /revoked/);
  await rejects(verifyDetachedSignature({ data: DATA, signature: fx.sig.revokedByCert, keyring: await keyring(), what: 'package r-1-1' }), 'revoked', /carries a revocation signature/);
  // A revoked master certifies nothing: with one master revoked, the packager has only two certifications.
  const masterRevoked = await keyring({ revoked: `${fx.masters[2]}\n` });
  await rejects(verifyDetachedSignature({ data: DATA, signature: fx.sig.packager, keyring: masterRevoked, what: 'p' }), 'untrusted', /certified by 2 of the 3/);
});

test('an unknown key is refused', async () => {
  await rejects(verifyDetachedSignature({ data: DATA, signature: fx.sig.stranger, keyring: await keyring(), what: 'package s-1-1' }), 'unknown-key', /^package s-1-1: signed by unknown key [0-9A-F]{40} \(not in the keyring\)$/);
});

test('signatures are judged as of their creation time', async () => {
  const keys = Buffer.concat([await fx.gpg.exportPublic(fx.masters), fx.oldKeyBeforeExtension]);
  const kr = await keyring({ keys });
  // Key valid 2020-01-01 to 2021-12-31: a 2021-01-01 signature still verifies today, after the key expired.
  const result = await verifyDetachedSignature({ data: DATA, signature: fx.sig.old2021, keyring: kr, what: 'package old-1-1' });
  assert.equal(result.fingerprint, fx.old);
  assert.equal(result.created.toISOString(), '2021-01-01T00:00:00.000Z');
  // A 2023 signature was made after the expiry that keyring knows of.
  await rejects(verifyDetachedSignature({ data: DATA, signature: fx.sig.old2023, keyring: kr, what: 'package old-2-1' }), 'expired-key', /signature made 2023-01-01T00:00:00Z, after key .* expired \(2021-12-31T00:00:00Z\)$/);
  // With the 2021 extension in the keyring, both verify.
  const extended = await keyring();
  assert.equal((await verifyDetachedSignature({ data: DATA, signature: fx.sig.old2023, keyring: extended, what: 'p' })).fingerprint, fx.old);
  assert.equal((await verifyDetachedSignature({ data: DATA, signature: fx.sig.old2021, keyring: extended, what: 'p' })).fingerprint, fx.old);
});

test('SigLevel policy: Never skips, Optional checks what is there, Required demands a signature', async () => {
  const kr = await keyring();
  const target = { data: DATA, keyring: kr, what: 'package foo-1-1' };
  assert.equal(await checkPackageSignature({ level: 'never', trust: 'trustedOnly' }, Buffer.from('garbage'), target), undefined);
  assert.equal(await checkPackageSignature({ level: 'optional', trust: 'trustedOnly' }, undefined, target), undefined);
  await rejects(checkPackageSignature({ level: 'optional', trust: 'trustedOnly' }, fx.sig.half, target), 'untrusted', /not trusted/);
  assert.equal((await checkPackageSignature({ level: 'optional', trust: 'trustAll' }, fx.sig.half, target))?.fingerprint, fx.half);
  await rejects(checkPackageSignature({ level: 'required', trust: 'trustedOnly' }, undefined, target), 'missing', /^package foo-1-1: missing required signature$/);
  assert.equal((await checkPackageSignature({ level: 'required', trust: 'trustedOnly' }, fx.sig.packager, target))?.fingerprint, fx.packager);
  await rejects(checkPackageSignature({ level: 'required', trust: 'trustAll' }, Buffer.from('not a signature'), target), 'malformed', /not an OpenPGP signature/);
  const arch = parseSigLevel('Required DatabaseOptional TrustAll');
  assert.deepEqual(signaturePolicy(arch.package), { level: 'required', trust: 'trustAll' });
  assert.deepEqual(signaturePolicy(parseSigLevel('Never').database), { level: 'never', trust: 'trustedOnly' });
});

test('a keyring loads from a directory (armored key file); its identity is stable and sorted', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'repro-oci-keyring-'));
  try {
    const armored = await fx.gpg.exportPublic([...fx.masters, fx.packager], true);
    await writeFile(join(dir, 'test.gpg'), armored);
    await writeFile(join(dir, 'test-trusted'), [...fx.masters].reverse().map((m) => `${m.toLowerCase()}:4:\n`).join(''));
    await writeFile(join(dir, 'test-revoked'), `${fx.revokedByCert}\n\n${fx.half}\n`);
    const kr = await loadKeyringFromDirectory(dir, 'test');
    assert.equal(kr.keys.size, 4);
    assert.deepEqual(keyringIdentity(kr), {
      trusted: [...fx.masters].sort(),
      revoked: [fx.revokedByCert, fx.half].sort(),
      keys: `sha256:${createHash('sha256').update(armored).digest('hex')}`,
    });
    assert.deepEqual(keyringIdentity(await loadKeyringFromDirectory(dir, 'test')), keyringIdentity(kr));
    assert.equal((await verifyDetachedSignature({ data: DATA, signature: fx.sig.packager, keyring: kr, what: 'p' })).fingerprint, fx.packager);

    await writeFile(join(dir, 'test-trusted'), 'not-a-fingerprint:4:\n');
    await assert.rejects(loadKeyringFromDirectory(dir, 'test'), (err: unknown) => err instanceof UserError && /test-trusted: line 1: expected a 40 or 64 hex digit fingerprint/.test(err.message));
    await assert.rejects(loadKeyringFromDirectory(dir, 'absent'), (err: unknown) => err instanceof UserError && /cannot read .*absent\.gpg/.test(err.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
