import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UserError } from '../src/errors.js';
import { parseRebuilderKeys, signLink, verifyAttestation, type AttestationKey, type ExpectedProduct } from '../src/status/attestation.js';
import { makeTempDir, removeDir } from './support/cli.js';
import { makeKeyPair, makeRebuilderdLink, securesystemslibPublicKey, tamperLink, type RebuilderdLinkOptions } from './support/in-toto.js';

/**
 * Debian's in-toto (Python, securesystemslib) is an independent implementation of the link format: links it makes
 * with its own ed25519 keys must verify in repro-oci and tampered ones must not; links made in rebuilderd's shape
 * must verify in it. Not installed is a failure, not a skip (scripts/ensure-test-deps.sh installs it).
 */

function run(command: string, args: string[], cwd: string): { code: number | null; output: string } {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8' } });
  if (r.error) assert.fail(`${command} did not run (${r.error.message}): Debian's in-toto is needed, see scripts/ensure-test-deps.sh`);
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

function runOk(command: string, args: string[], cwd: string): void {
  const r = run(command, args, cwd);
  assert.equal(r.code, 0, `${command} ${args.join(' ')}: ${r.output}`);
}

const FILE = 'zstd-1:1.5.6-1-x86_64.pkg.tar.zst';
const CONTENT = Buffer.from('a package file, rebuilt bit for bit\n');
const SHA256 = createHash('sha256').update(CONTENT).digest('hex');
const EXPECTED: ExpectedProduct = { name: 'zstd', version: '1:1.5.6-1', arch: 'x86_64', fileName: FILE, sha256: SHA256 };
const WHAT = 'in-toto link';

let dir: string;
before(async () => {
  dir = await makeTempDir('in-toto-crosscheck');
});
after(() => removeDir(dir));

describe("links made by Debian's in-toto verify in repro-oci", () => {
  let alice: AttestationKey[];
  let bob: AttestationKey[];
  let plain: Buffer;
  let withStreams: Buffer;

  before(() => {
    runOk('in-toto-keygen', ['-t', 'ed25519', 'alice'], dir);
    runOk('in-toto-keygen', ['-t', 'ed25519', 'bob'], dir);
    alice = parseRebuilderKeys(readFileSync(join(dir, 'alice.pub'), 'utf8'), 'alice.pub');
    bob = parseRebuilderKeys(readFileSync(join(dir, 'bob.pub'), 'utf8'), 'bob.pub');
    writeFileSync(join(dir, 'input.pkg.tar.zst'), 'the original package');
    writeFileSync(join(dir, FILE), CONTENT);
    const link = (subdir: string, extra: string[]): Buffer => {
      mkdirSync(join(dir, subdir));
      runOk('in-toto-run', ['-n', `rebuild ${FILE}`, '-k', 'alice', '-t', 'ed25519', '-m', 'input.pkg.tar.zst', '-p', FILE, '-d', subdir, ...extra], dir);
      const [name] = readdirSync(join(dir, subdir));
      return readFileSync(join(dir, subdir, name!));
    };
    plain = link('plain', ['-x']);
    // A command whose recorded output has newlines: signed raw by securesystemslib, escaped-then-unescaped by Rust.
    withStreams = link('streams', ['-s', '--', 'sh', '-c', 'echo built; echo identical: yes']);
  });

  async function rejects(bytes: Buffer, keys: AttestationKey[], reason: RegExp): Promise<void> {
    await assert.rejects(verifyAttestation(bytes, keys, EXPECTED, WHAT), (err: Error) => err instanceof UserError && reason.test(err.message) && !err.message.includes('\n'));
  }


  test('a link with no command, and one with recorded output, verify with the .pub key', async () => {
    for (const bytes of [plain, withStreams]) {
      const result = await verifyAttestation(bytes, alice, EXPECTED, WHAT);
      assert.deepEqual(result.signedBy, [alice[0]!.fingerprint]);
      assert.equal(result.productSha256, SHA256);
      assert.equal(result.stepName, `rebuild ${FILE}`);
      assert.equal(JSON.parse(bytes.toString()).signatures[0].keyid, alice[0]!.keyId);
    }
    assert.equal(JSON.parse(withStreams.toString()).signed.byproducts.stdout, 'built\nidentical: yes\n');
    assert.equal((await verifyAttestation(plain, alice, { ...EXPECTED, fileName: undefined }, WHAT)).productFile, FILE);
  });

  test('a changed product hash does not verify', () => rejects(tamperLink(plain, (d) => (d.signed.products[FILE].sha256 = '0'.repeat(64)), 1), alice, /signature by \S+ does not verify/));
  test('a changed product name does not verify', () => rejects(tamperLink(plain, (d) => (d.signed.products = { 'zstd-1:1.5.7-1-x86_64.pkg.tar.zst': d.signed.products[FILE] }), 1), alice, /does not verify/));
  test('changed recorded output does not verify', () => rejects(tamperLink(withStreams, (d) => (d.signed.byproducts.stdout = 'built\nidentical: no\n'), 1), alice, /does not verify/));
  test('the wrong key finds no signature', () => rejects(plain, bob, /no signature by a known key/));
  test('a truncated signature is refused', () => rejects(tamperLink(plain, (d) => (d.signatures[0]!.sig = d.signatures[0]!.sig.slice(0, 64)), 1), alice, /is 32 bytes, not the 64 of ed25519/));
  test('a validly signed link for another file is refused', async () => {
    await assert.rejects(verifyAttestation(plain, alice, { ...EXPECTED, sha256: 'e'.repeat(64) }, WHAT), /hash differs: got sha256 [0-9a-f]{64}, locked e{64}/);
  });
});

describe("links in rebuilderd's shape verify in Debian's in-toto", () => {
  const worker = makeKeyPair();
  const daemon = makeKeyPair();

  function write(name: string, opts: Partial<RebuilderdLinkOptions>): string {
    const bytes = makeRebuilderdLink({ fileName: FILE, content: CONTENT, worker: worker.privateKey, daemon: daemon.privateKey, environment: {}, ...opts });
    writeFileSync(join(dir, name), bytes);
    return name;
  }

  /** in-toto-sign checks one key per run for a link. */
  function inTotoVerify(file: string, key: 'worker' | 'daemon'): { code: number | null; output: string } {
    return run('in-toto-sign', ['-f', file, '--verify', '-k', `${key}.pub`, '-t', 'ed25519'], dir);
  }

  function verifiesByBoth(file: string): void {
    for (const key of ['worker', 'daemon'] as const) {
      const r = inTotoVerify(file, key);
      assert.equal(r.code, 0, `${key}: ${r.output}`);
    }
  }

  before(() => {
    writeFileSync(join(dir, 'worker.pub'), securesystemslibPublicKey(worker.publicKey));
    writeFileSync(join(dir, 'daemon.pub'), securesystemslibPublicKey(daemon.publicKey));
  });

  test('worker and daemon signatures verify (environment an object, as in-toto 1.3 requires)', () => {
    verifiesByBoth(write('rebuilderd.link', {}));
  });

  test('also with a newline and non-ASCII characters in the signed part', () => {
    verifiesByBoth(write('unicode.link', { fileName: 'zstd-ünïcode-1-x86_64.pkg.tar.zst', edit: (s) => (s.byproducts = { stdout: 'line 1\nline 2\n', 'return-value': 0 }) }));
  });

  test('a tampered one fails there too', () => {
    const file = write('tampered.link', {});
    writeFileSync(join(dir, file), tamperLink(readFileSync(join(dir, file)), (d) => (d.signed.products[FILE]!.sha256 = '0'.repeat(64))));
    verifiesByBoth(write('untampered.link', {}));
    for (const key of ['worker', 'daemon'] as const) {
      const r = inTotoVerify(file, key);
      assert.notEqual(r.code, 0, r.output);
      assert.match(r.output, /signature verification failed/i);
    }
  });

  test("repro-oci's own signLink makes links Debian's in-toto verifies", () => {
    const signed = { _type: 'link', name: `rebuild ${FILE}`, materials: {}, products: { [FILE]: { sha256: createHash('sha256').update(CONTENT).digest('hex') } }, environment: {}, byproducts: {}, command: [] };
    writeFileSync(join(dir, 'ours.link'), signLink(signed, [worker.privateKey, daemon.privateKey]));
    verifiesByBoth('ours.link');
  });

  test("rebuilderd's own environment null is refused by in-toto 1.3 (why the links above carry an object)", () => {
    const r = inTotoVerify(write('null-environment.link', { environment: null }), 'worker');
    assert.notEqual(r.code, 0, r.output);
    assert.match(r.output, /environment/);
  });
});
