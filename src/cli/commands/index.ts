import type { Command } from 'commander';
import { registerArchCommands } from './arch.js';
import { registerArchive } from './archive.js';
import { registerBuild } from './build.js';
import { registerCopy } from './copy.js';
import { registerDiff } from './diff.js';
import { registerExample } from './example.js';
import { registerInspect } from './inspect.js';
import { registerInstall } from './install.js';
import { registerLock } from './lock.js';
import { registerRebuild } from './rebuild.js';

/** Each command lives in its own module and registers itself here. */
export function registerCommands(program: Command): void {
  registerBuild(program);
  registerInspect(program);
  registerCopy(program);
  registerDiff(program);
  registerArchive(program);
  registerExample(program);
  registerLock(program);
  registerInstall(program);
  registerRebuild(program);
  registerArchCommands(program);
}
