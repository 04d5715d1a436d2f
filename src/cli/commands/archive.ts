import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { archiveImage } from '../../image/archive-image.js';
import { openSource } from '../../transports/open.js';
import { parseReference } from '../../transports/reference.js';
import { checkNewDirectory } from '../../util/writable.js';
import { addRegistryOptions, transportOptions, type RegistryCliOptions } from '../options.js';

export function registerArchive(program: Command): void {
  addRegistryOptions(program
    .command('archive')
    .description('Keep the exact index, manifest and config bytes of an image (and its recipe; layers with --layers) in an OCI layout, for rebuilding after the registry forgets it')
    .argument('<ref>', 'image reference')
    .argument('<dest>', 'oci:DIR[:TAG] (an existing layout gains the image)')
    .option('--layers', 'keep the layers too'))
    .action(async (ref: string, dest: string, opts: { layers?: boolean } & RegistryCliOptions) => {
      const target = parseReference(dest);
      if (target.transport !== 'oci') throw new UserError('archive writes an OCI layout: give oci:DIR[:TAG]');
      await checkNewDirectory(target.path, dest, { layoutOk: true });
      const source = await openSource(ref, transportOptions(opts));
      try {
        const result = await archiveImage(source, target.path, target.tag, { layers: opts.layers ?? false });
        process.stdout.write(`${result.root.digest}\n`);
        process.stderr.write(`archived ${result.manifests} manifest(s)${result.layers ? ' with layers' : ''}, ${result.recipes} recipe(s) into ${target.path}\n`);
      } finally {
        await source.close();
      }
    });
}
