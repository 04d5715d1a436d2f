import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import type { Lock } from '../lock/lock.js';
import { publicKeyPem, signRebuildLink } from '../status/attestation.js';
import { startRebuilder, type FakeRebuilder, type FakeRow } from './rebuilderd-emulator.js';

/**
 * Three emulated rebuilders for the example's `status` step, each a scenario a verifier meets:
 * - alpha (v1) reproduced every package and signs its attestations with the key it publishes;
 * - beta (v1, signing too) found one package BAD and lists another only at an older version;
 * - gamma (v0 only, as older rebuilderd) says GOOD to everything but publishes no key, so its word stays unverified.
 * Keys come from fixed seeds, so the example's output is the same on every run.
 */

export interface ExampleRebuilders {
  /** A rebuilders file (schemas/rebuilders.schema.json) naming the three. */
  file: string;
  /** The package beta reports BAD, and the one it lists only at another version. */
  bad: string;
  otherVersion: string;
  close(): Promise<void>;
}

/** An ed25519 private key from a 32-byte seed (PKCS#8 of RFC 8410). */
function seededKey(label: string): KeyObject {
  const seed = createHash('sha256').update(`repro-oci example rebuilder ${label}`).digest();
  return createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
}

/** A rebuilder that attests the locked files, as rebuilderd's worker does after a byte-for-byte match. */
function signer(lock: Lock, key: KeyObject): { publicKeys: string[]; attestation: (row: FakeRow) => Buffer | undefined } {
  const files = new Map(lock.packages.map((p) => [p.name, p]));
  return {
    publicKeys: [publicKeyPem(key)],
    attestation: (row) => {
      const p = files.get(row.name);
      return p && signRebuildLink(p.filename, p.sha256, [key]);
    },
  };
}

/** Starts the three on 127.0.0.1 and writes `file`, the rebuilders file that names them. */
export async function startExampleRebuilders(lock: Lock, file: string): Promise<ExampleRebuilders> {
  const packages = [...lock.packages].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const rows = (status: FakeRow['status']): FakeRow[] => packages.map((p) => ({ name: p.name, version: p.version, arch: p.arch, repo: p.repository, status }));
  const bad = packages.at(-1)!.name;
  const otherVersion = packages[0]!.name;
  const lastModified = new Date(Date.UTC(2026, 0, 1));
  const servers: FakeRebuilder[] = [];
  try {
    servers.push(await startRebuilder({ api: 'v1', rows: rows('GOOD'), lastModified, ...signer(lock, seededKey('alpha')) }));
    const betaRows = rows('GOOD').map((r) => (r.name === bad ? { ...r, status: 'BAD' as const } : r.name === otherVersion ? { ...r, version: `0.9-1` } : r));
    servers.push(await startRebuilder({ api: 'v1', rows: betaRows, lastModified, ...signer(lock, seededKey('beta')) }));
    servers.push(await startRebuilder({ api: 'v0', rows: rows('GOOD'), lastModified }));
  } catch (err) {
    await Promise.all(servers.map((s) => s.close()));
    throw err;
  }
  const names = ['alpha', 'beta', 'gamma'];
  await writeFile(file, `rebuilders:\n${servers.map((s, i) => `  - name: ${names[i]}\n    url: ${s.url}\n`).join('')}`);
  return { file, bad, otherVersion, close: async () => void (await Promise.all(servers.map((s) => s.close()))) };
}
