import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadKeyring } from '../src/pacman/keyring.js';
import { parseKeyExpiry, SignatureError, verifyDetachedSignature } from '../src/pacman/signature.js';
import { Gpg } from './support/gpg.js';

/**
 * `keyExpiry` in the library, with the verification time given: a signing subkey that expired after signing, and
 * the moment of verification before and after its expiry.
 */

const SDE = 1700000000;
const DATA = Buffer.from('package bytes\n');

test('key expiry now: a signing subkey expired by the time of verification is untrusted; before it expires, or at-signature, it verifies', async (t) => {
  const gpg = await Gpg.create();
  t.after(() => gpg.dispose());
  const primary = await gpg.genKey('Subkey Packager <sub@example.invalid>', { at: SDE - 100, usage: 'cert' });
  const subkey = await gpg.addSubkey(primary, { at: SDE - 50, expire: '1y' });
  const signature = await gpg.detachSign(`${subkey}!`, DATA, SDE);
  const keyring = await loadKeyring({ keys: await gpg.exportPublic([primary]), trusted: `${primary}:4:\n` });
  const verify = (keyExpiry: 'at-signature' | 'now', now: Date, trust: 'trustedOnly' | 'trustAll' = 'trustedOnly') =>
    verifyDetachedSignature({ data: DATA, signature, keyring, what: 'package sub 1-1', keyExpiry, now, trust });
  const afterExpiry = new Date((SDE + 2 * 365 * 86400) * 1000);
  const beforeExpiry = new Date((SDE + 86400) * 1000);

  assert.equal((await verify('at-signature', afterExpiry)).signingKeyFingerprint, subkey);
  assert.equal((await verify('now', beforeExpiry)).signingKeyFingerprint, subkey);
  assert.equal((await verify('now', afterExpiry, 'trustAll')).signingKeyFingerprint, subkey, 'TrustAll asks no validity');
  await assert.rejects(verify('now', afterExpiry), (err: unknown) => {
    assert.ok(err instanceof SignatureError);
    assert.equal(err.reason, 'expired-key');
    assert.match(err.message, new RegExp(`^package sub 1-1: subkey ${subkey} of key ${primary} \\(Subkey Packager <sub@example\\.invalid>\\) expired 2024-11-1\\dT[0-9:]+Z: --key-expiry now trusts no expired key`));
    return true;
  });
});

test('parseKeyExpiry takes the two policies and refuses anything else in one line', () => {
  assert.equal(parseKeyExpiry('now'), 'now');
  assert.equal(parseKeyExpiry('at-signature'), 'at-signature');
  assert.throws(() => parseKeyExpiry('later', 'keyExpiry'), /^UserError: keyExpiry: expected at-signature or now, not "later"$/);
});
