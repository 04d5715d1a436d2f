import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { chmodSync, readFileSync, symlinkSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseRebuilderKeys, publicKeyPem, type ExpectedProduct } from '../src/status/attestation.js';
import { AttestationStore, Seal } from '../src/status/attestation-store.js';
import { HttpCache } from '../src/status/http-cache.js';
import { tempDirFor } from './support/cli.js';

/**
 * The kept attestations' seals: a verification remembered under a key only this user can read. A seal must vouch
 * for exactly the bytes, keys and package it was made for, and for nothing when its key is not this user's
 * private one; what it vouches for here is a body that could never verify, so only the seal can make it count.
 */

const BASE = 'http://rebuilder.test';
const URL_A = `${BASE}/api/v1/builds/1/artifacts/2/attestation`;
const newKeys = () => parseRebuilderKeys(publicKeyPem(generateKeyPairSync('ed25519').privateKey), 'key');
const EXPECTED: ExpectedProduct = { name: 'bash', version: '5.2.026-2', arch: 'x86_64', fileName: 'bash-5.2.026-2-x86_64.pkg.tar.zst', sha256: 'b'.repeat(64) };
const CHECK = { state: 'verified' as const, url: URL_A, digest: `sha256:${'d'.repeat(64)}`, productFile: EXPECTED.fileName!, productSha256: EXPECTED.sha256!, bound: true, signedBy: ['sha256:ff'] };

test('a seal vouches for its body, keys and package only, under this user\'s private key only', async (t) => {
  const dir = await tempDirFor(t, 'status-store');
  const lines: string[] = [];
  const cache = new HttpCache(join(dir, 'cache'), (line) => lines.push(line));
  const state = join(dir, 'state');
  const seal = await Seal.open(state);
  assert.ok(seal);
  const keys = newKeys();
  const first = await AttestationStore.open(cache, BASE, seal);
  first.put(URL_A, Buffer.from('not an attestation'));
  first.remember(URL_A, keys, EXPECTED, CHECK);
  await first.save();

  const again = await AttestationStore.open(cache, BASE, await Seal.open(state));
  assert.deepEqual(again.sealed(URL_A, keys, EXPECTED), CHECK);
  assert.equal(again.sealed(URL_A, newKeys(), EXPECTED), undefined, 'other keys');
  assert.equal(again.sealed(URL_A, [...keys, ...newKeys()], EXPECTED), undefined, 'more keys');
  assert.equal(again.sealed(URL_A, keys, { ...EXPECTED, sha256: 'c'.repeat(64) }), undefined, 'another locked file');
  assert.equal(again.sealed(URL_A, keys, { ...EXPECTED, version: '5.2.026-3' }), undefined, 'another version');
  assert.equal(again.sealed(`${BASE}/api/v1/builds/9/artifacts/9/attestation`, keys, EXPECTED), undefined, 'nothing kept there');
  const stranger = await AttestationStore.open(cache, BASE, await Seal.open(join(dir, 'other-state')));
  assert.equal(stranger.sealed(URL_A, keys, EXPECTED), undefined, 'another user\'s seal key');
  assert.equal((await AttestationStore.open(cache, BASE, undefined)).sealed(URL_A, keys, EXPECTED), undefined, 'no seal key');
  assert.deepEqual(lines, []);

  // One byte of the body changed, header made consistent (as anyone who can write the cache can): no seal.
  const path = cache.entryPath(`attestations ${BASE}`);
  const entry = readFileSync(path);
  const newline = entry.indexOf(0x0a);
  const body = Buffer.from(entry.subarray(newline + 1));
  body[body.length - 1] ^= 1;
  const header = { ...(JSON.parse(entry.subarray(0, newline).toString()) as object), sha256: createHash('sha256').update(body).digest('hex') };
  writeFileSync(path, Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), body]));
  const forged = await AttestationStore.open(cache, BASE, await Seal.open(state));
  assert.equal(forged.sealed(URL_A, keys, EXPECTED), undefined);
  assert.ok(forged.body(URL_A), 'the body is still there, to be verified in full');

  // A seal key that is not private, not a regular file or not this user's is not used (one line each).
  const keyFile = join(state, 'attestation-seal.key');
  chmodSync(keyFile, 0o640);
  const said: string[] = [];
  assert.equal(await Seal.open(state, (line) => said.push(line)), undefined);
  chmodSync(keyFile, 0o600);
  renameSync(keyFile, `${keyFile}.real`);
  symlinkSync(`${keyFile}.real`, keyFile);
  assert.equal(await Seal.open(state, (line) => said.push(line)), undefined);
  assert.equal(said.length, 2, said.join('\n'));
  assert.match(said[0]!, /attestation-seal\.key: not a private 32-byte file of this user: attestations are verified in full/);
  assert.match(said[1]!, /attestation-seal\.key: ELOOP: attestations are verified in full/);
});

test('a store filed under another rebuilder\'s name is not used: evicted with one line', async (t) => {
  const dir = await tempDirFor(t, 'status-store');
  const lines: string[] = [];
  const cache = new HttpCache(join(dir, 'cache'), (line) => lines.push(line));
  const other = await AttestationStore.open(cache, 'http://other.test', undefined);
  other.put('http://other.test/api/v0/builds/1/attestation', Buffer.from('x'));
  await other.save();
  // Filed under BASE's name by someone who can write the cache.
  renameSync(cache.entryPath('attestations http://other.test'), cache.entryPath(`attestations ${BASE}`));
  const mine = await AttestationStore.open(cache, BASE, undefined);
  assert.equal(mine.body('http://other.test/api/v0/builds/1/attestation'), undefined);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /was corrupt \(the entry of another URL\)/);
});
