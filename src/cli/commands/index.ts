import type { Command } from 'commander';

type Register = (program: Command) => void;

/**
 * Each command's module, in the order `--help` lists them (the pipeline first), with the commands it defines.
 * Modules are imported when needed: a command loads only its own module and what that imports, so `status` does
 * not pay for the builder's dependencies at every start.
 */
const COMMAND_MODULES: { names: readonly string[]; load: () => Promise<Register> }[] = [
  { names: ['lock'], load: async () => (await import('./lock.js')).registerLock },
  { names: ['build'], load: async () => (await import('./build.js')).registerBuild },
  { names: ['rebuild'], load: async () => (await import('./rebuild.js')).registerRebuild },
  { names: ['diff'], load: async () => (await import('./diff.js')).registerDiff },
  { names: ['status'], load: async () => (await import('./status.js')).registerStatus },
  { names: ['publish'], load: async () => (await import('./publish.js')).registerPublish },
  { names: ['verify'], load: async () => (await import('./verify.js')).registerVerify },
  { names: ['key'], load: async () => (await import('./key.js')).registerKey },
  { names: ['inspect'], load: async () => (await import('./inspect.js')).registerInspect },
  { names: ['copy'], load: async () => (await import('./copy.js')).registerCopy },
  { names: ['archive'], load: async () => (await import('./archive.js')).registerArchive },
  { names: ['install', 'ls'], load: async () => (await import('./install.js')).registerInstall },
  { names: ['arch'], load: async () => (await import('./arch.js')).registerArchCommands },
  { names: ['example'], load: async () => (await import('./example.js')).registerExample },
];

/**
 * Registers the module that defines `command`, or every command when it is undefined or names none of them
 * (`--help`, `help`, a typo: then commander lists them all or suggests the closest).
 */
export async function registerCommands(program: Command, command?: string): Promise<void> {
  const named = COMMAND_MODULES.filter((m) => command !== undefined && m.names.includes(command));
  const modules = named.length > 0 ? named : COMMAND_MODULES;
  for (const register of await Promise.all(modules.map((m) => m.load()))) register(program);
}
