import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { SIGNING_KEY_TYPES, writeKeyPair, type SigningKeyType } from '../../attest/signing-key.js';
import { printJson } from '../output.js';

export function registerKey(program: Command): void {
  const key = program.command('key').description('Make the key pair that signs attestations');
  key
    .command('generate')
    .description('Write a new signing key pair: PREFIX.key (private, PKCS#8 PEM, mode 0600) and PREFIX.pub (public, SPKI PEM); existing files are never overwritten')
    .requiredOption('-o, --output <prefix>', 'path prefix of the two files (PREFIX.key and PREFIX.pub)')
    .option('--type <type>', `key type: ${SIGNING_KEY_TYPES.join(' or ')}`, 'ed25519')
    .option('--json', 'print the type, the key id and the two paths as JSON')
    .action(async (opts: { output: string; type: string; json?: boolean }) => {
      if (!SIGNING_KEY_TYPES.includes(opts.type as SigningKeyType)) throw new UserError(`--type ${opts.type}: expected ${SIGNING_KEY_TYPES.join(' or ')}`);
      const written = await writeKeyPair(opts.output, opts.type as SigningKeyType);
      if (opts.json) {
        printJson({ type: written.type, keyId: written.keyId, privateKey: written.privateKeyFile, publicKey: written.publicKeyFile });
        return;
      }
      process.stdout.write(`${written.keyId}\n`);
      process.stderr.write(`wrote ${written.privateKeyFile} (keep it secret) and ${written.publicKeyFile} (give it to verifiers); key id ${written.keyId} = sha256 of the public key's DER\n`);
    });
}
