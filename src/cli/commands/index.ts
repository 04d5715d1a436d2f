import type { Command } from 'commander';
import { registerArchCommands } from './arch.js';
import { registerArchive } from './archive.js';
import { registerBuild } from './build.js';
import { registerCopy } from './copy.js';
import { registerDiff } from './diff.js';
import { registerExample } from './example.js';
import { registerInspect } from './inspect.js';
import { registerInstall } from './install.js';
import { registerKey } from './key.js';
import { registerLock } from './lock.js';
import { registerPublish } from './publish.js';
import { registerRebuild } from './rebuild.js';
import { registerStatus } from './status.js';
import { registerVerify } from './verify.js';

/** Each command lives in its own module and registers itself here, in the order `--help` lists them: the pipeline first. */
export function registerCommands(program: Command): void {
  registerLock(program);
  registerBuild(program);
  registerRebuild(program);
  registerDiff(program);
  registerStatus(program);
  registerPublish(program);
  registerVerify(program);
  registerKey(program);
  registerInspect(program);
  registerCopy(program);
  registerArchive(program);
  registerInstall(program); // install and ls
  registerArchCommands(program);
  registerExample(program);
}
