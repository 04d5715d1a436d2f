import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { formatInspect, inspectDocument, inspectReference, type InspectDocument } from '../../transports/inspect.js';
import { addRegistryOptions, transportOptions, type RegistryCliOptions } from '../options.js';
import { printJson } from '../output.js';

interface InspectCliOptions extends RegistryCliOptions {
  json?: boolean;
  raw?: boolean;
  config?: boolean;
  recipe?: boolean;
  platform?: string;
  verifyBlobs: boolean;
}

/** Which document's bytes to print, if any: `--config` and `--recipe` win over `--raw`, as in `skopeo inspect --config --raw`. */
function documentWanted(opts: InspectCliOptions): InspectDocument | undefined {
  if (opts.config && opts.recipe) throw new UserError('give --config or --recipe, not both');
  const document = opts.config ? 'config' : opts.recipe ? 'recipe' : opts.raw ? 'manifest' : undefined;
  if (document && opts.json) throw new UserError('--json prints the report; --raw, --config and --recipe print one document as stored: give one or the other');
  if (opts.platform && document !== 'config' && document !== 'recipe') throw new UserError('--platform chooses the image for --config and --recipe (the report shows every image of an index)');
  return document;
}

export function registerInspect(program: Command): void {
  addRegistryOptions(program
    .command('inspect')
    .description('Show an image: index, manifests, config, layers (digest, diffID, size, media type, compressor), annotations, its recipe and packages')
    .argument('<ref>', 'oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG|:@N] or docker://HOST/NAME[:TAG|@sha256:…]')
    .option('--json', 'print the report as JSON')
    .option('--raw', 'print the manifest (or index) the reference names, byte for byte as stored (as skopeo inspect --raw)')
    .option('--config', 'print the image config, byte for byte as stored (as skopeo inspect --config --raw)')
    .option('--recipe', 'print the recipe the image carries (/usr/share/repro-oci/recipe.json), byte for byte')
    .option('--platform <os/arch>', 'with --config or --recipe, when the reference names an index: the image for this platform (default: the only one, else linux/amd64)')
    .option('--no-verify-blobs', 'do not hash every blob (layers included) in full before showing the image (what is read is still verified)'))
    .addHelpText('after', '\nThe packages come from the recipe\'s lock when the image carries one, else from its pacman database\n(var/lib/pacman/local/*/desc in the layers, whiteouts applied).')
    .action(async (ref: string, opts: InspectCliOptions) => {
      const document = documentWanted(opts);
      const options = { transport: transportOptions(opts), verifyBlobs: opts.verifyBlobs };
      if (document) {
        process.stdout.write(await inspectDocument(ref, document, { ...options, ...(opts.platform ? { platform: opts.platform } : {}) }));
        return;
      }
      const report = await inspectReference(ref, options);
      if (opts.json) printJson(report);
      else process.stdout.write(formatInspect(report));
    });
}
