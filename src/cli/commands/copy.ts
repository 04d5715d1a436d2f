import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { copyReference } from '../../transports/copy.js';
import { parseReference } from '../../transports/reference.js';
import { checkOutputs } from '../preflight.js';
import { checkDigestFile, descriptorJson, printJson, writeDigestFile } from '../output.js';

interface CopyOptions {
  creds?: string;
  srcCreds?: string;
  destCreds?: string;
  insecure?: boolean;
  platform?: string;
  chunkSize?: string;
  json?: boolean;
  digestfile?: string;
}

export function registerCopy(program: Command): void {
  program
    .command('copy')
    .description('Copy an image between transports, verifying every blob and keeping every digest')
    .argument('<src>', 'source reference (oci:, oci-archive:, docker-archive:, docker://)')
    .argument('<dst>', 'destination reference')
    .option('--creds <user:pass>', 'registry credentials for both sides (default: auth.json, ~/.docker/config.json)')
    .option('--src-creds <user:pass>', 'registry credentials for the source')
    .option('--dest-creds <user:pass>', 'registry credentials for the destination')
    .option('--insecure', 'allow plain http to registries that are not on loopback')
    .option('--platform <os/arch[/variant]>', 'when the source is an index, copy only its manifest for this platform')
    .option('--chunk-size <bytes>', 'registry uploads: blobs larger than this go up in chunks of this size')
    .option('--json', 'print the source, the destination and the root written (digest, media type, size) as JSON')
    .option('--digestfile <file>', 'also write the digest of the root written (index or manifest) to FILE (sha256:…, no newline, as skopeo)')
    .action(async (src: string, dst: string, opts: CopyOptions) => {
      parseReference(src);
      parseReference(dst);
      await checkOutputs([dst]);
      await checkDigestFile(opts.digestfile);
      const chunkSize = opts.chunkSize === undefined ? undefined : Number(opts.chunkSize);
      if (chunkSize !== undefined && (!Number.isSafeInteger(chunkSize) || chunkSize < 1)) throw new UserError(`--chunk-size ${opts.chunkSize}: expected a positive number of bytes`);
      const root = await copyReference(src, dst, {
        ...(opts.insecure ? { insecure: true } : {}),
        ...(opts.creds !== undefined ? { creds: opts.creds } : {}),
        ...(opts.srcCreds !== undefined ? { srcCreds: opts.srcCreds } : {}),
        ...(opts.destCreds !== undefined ? { destCreds: opts.destCreds } : {}),
        ...(opts.platform ? { platform: opts.platform } : {}),
        ...(chunkSize ? { chunkSize } : {}),
      });
      await writeDigestFile(opts.digestfile, root.digest);
      if (opts.json) printJson({ source: src, destination: dst, ...descriptorJson(root) });
      else process.stdout.write(`${root.digest}\n`);
    });
}
