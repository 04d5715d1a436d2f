import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { readRootfs, stageImage, writeOutputs } from '../../build/build-rootfs.js';
import { loadImageSettings, resolveSourceDateEpoch, type ImageSettings } from '../../build/image-settings.js';
import { parseReference } from '../../transports/reference.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function registerBuild(program: Command): void {
  program
    .command('build')
    .description('Build a one-layer image from a root filesystem directory or tarball and print its manifest digest')
    .requiredOption('--rootfs <path>', 'directory or tarball (plain, gzip or zstd) holding the root filesystem')
    .option('--config <file>', 'image settings (IMAGE.yaml; see schemas/image-config.schema.json)')
    .requiredOption('-o, --output <ref>', 'where to write: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] (repeatable)', collect, [])
    .option('--source-date-epoch <seconds>', 'timestamp for created and file mtimes (default: $SOURCE_DATE_EPOCH, then the config, then 0)')
    .action(async (opts: { rootfs: string; config?: string; output: string[]; sourceDateEpoch?: string }) => {
      if (opts.output.length === 0) throw new UserError('build needs at least one --output');
      opts.output.forEach((o) => parseReference(o));
      const settings: ImageSettings = opts.config ? await loadImageSettings(opts.config) : {};
      const sde = resolveSourceDateEpoch(opts.sourceDateEpoch, process.env.SOURCE_DATE_EPOCH, settings);
      const tree = await readRootfs(opts.rootfs, settings, sde, (msg) => process.stderr.write(`warning: ${msg}\n`));
      try {
        const { image, result } = await stageImage(tree, settings, sde, 'repro-oci build --rootfs');
        try {
          await writeOutputs(image, opts.output);
        } finally {
          await image.close();
        }
        process.stdout.write(`${result.manifest.digest}\n`);
      } finally {
        await tree.cleanup();
      }
    });
}
