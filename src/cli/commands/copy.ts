import type { Command } from 'commander';
import { copyImage } from '../../transports/copy.js';
import { openDestination, openSource } from '../../transports/open.js';
import { parseReference } from '../../transports/reference.js';

export function registerCopy(program: Command): void {
  program
    .command('copy')
    .description('Copy an image between transports, verifying every blob and keeping every digest')
    .argument('<src>', 'source reference (oci:, oci-archive:, docker-archive:)')
    .argument('<dst>', 'destination reference')
    .action(async (src: string, dst: string) => {
      const destinationRef = parseReference(dst);
      const source = await openSource(src);
      try {
        const root = await copyImage(source, await openDestination(destinationRef));
        process.stdout.write(`${root.digest}\n`);
      } finally {
        await source.close();
      }
    });
}
