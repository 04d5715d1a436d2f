import type { Command } from 'commander';
import { formatInspect, inspectReference } from '../../transports/inspect.js';
import { addRegistryOptions, transportOptions, type RegistryCliOptions } from '../options.js';

export function registerInspect(program: Command): void {
  addRegistryOptions(program
    .command('inspect')
    .description('Show an image: index, manifests, config, layers (digest, diffID, size, media type, compressor), annotations')
    .argument('<ref>', 'oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG|:@N] or docker://HOST/NAME[:TAG|@sha256:…]')
    .option('--json', 'print the report as JSON')
    .option('--no-verify-blobs', 'do not hash every blob (layers included) in full before showing the image'))
    .action(async (ref: string, opts: { json?: boolean; verifyBlobs: boolean } & RegistryCliOptions) => {
      const report = await inspectReference(ref, { transport: transportOptions(opts), verifyBlobs: opts.verifyBlobs });
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatInspect(report));
    });
}
