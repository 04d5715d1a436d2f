import type { Command } from 'commander';
import { vercmp } from '../../pacman/version.js';

/** `repro-oci arch ...`: small tools over the Arch Linux formats, for scripts and for checking against pacman. */
export function registerArchCommands(program: Command): void {
  const arch = program.command('arch').description('Arch Linux package format helpers');
  arch
    .command('vercmp')
    .description("compare two package versions like pacman's vercmp: prints -1, 0 or 1")
    .argument('<a>', 'first version, [epoch:]pkgver[-pkgrel]')
    .argument('<b>', 'second version')
    .action((a: string, b: string) => {
      process.stdout.write(`${vercmp(a, b)}\n`);
    });
}
