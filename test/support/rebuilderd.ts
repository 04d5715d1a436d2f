import { makeRebuilderdLink, rebuilderdPublicKeyPem, type Ed25519KeyPair } from './in-toto.js';
import { listenOnLoopback } from './http-server.js';
import type { FakeRebuilderOptions } from '../../src/example/rebuilderd-emulator.js';

/** The rebuilderd emulator lives with the example that starts it; the tests use the same one. */
export { startRebuilder, type FakeRebuilder, type FakeRebuilderOptions, type FakeRow } from '../../src/example/rebuilderd-emulator.js';

/** A URL on 127.0.0.1 where nothing listens (a rebuilder that is down). */
export async function downRebuilderUrl(): Promise<string> {
  const { port, close } = await listenOnLoopback((_req, res) => res.end());
  await close();
  return `http://127.0.0.1:${port}`;
}

/**
 * A rebuilder that signs what it reproduced, as rebuilderd does: it publishes its key, and each GOOD row's
 * attestation names the package file with the digest `files` gives for it (the locked one, unless a test lies).
 */
export function signing(key: Ed25519KeyPair, files: Map<string, { fileName: string; sha256: string }>): Pick<FakeRebuilderOptions, 'publicKeys' | 'attestation'> {
  return {
    publicKeys: [rebuilderdPublicKeyPem(key.publicKey)],
    attestation: (row) => {
      const file = files.get(row.name);
      if (!file) return undefined;
      return makeRebuilderdLink({
        fileName: file.fileName,
        content: Buffer.alloc(0),
        worker: key.privateKey,
        edit: (signed) => {
          const products = signed.products as Record<string, { sha256: string }>;
          products[file.fileName]!.sha256 = file.sha256;
        },
      });
    },
  };
}
