import { Command, CommanderError } from 'commander';
import { UserError } from '../errors.js';
import { withProgress } from '../util/progress.js';
import { handleInterrupts, sweepAbandonedScratchDirs } from '../util/fs.js';
import { VERSION } from '../version.js';
import { registerCommands } from './commands/index.js';
import { applyProgressOption, progressOption } from './options.js';

/**
 * Runs the CLI and returns the exit code: 0 success, 1 a negative verdict (e.g. "not reproducible"),
 * 2 any error. User errors print one line; anything else is a bug and prints its stack.
 */
export async function main(argv: string[]): Promise<number> {
  handleInterrupts();
  const command = invokedCommand(argv);
  // `--version` alone needs no command's definition.
  const program = await createProgram(command === undefined && argv.some((a) => a === '-V' || a === '--version') ? null : command);
  sweepAbandonedScratchDirs(); // what runs killed before their cleanup (SIGKILL) left in TMPDIR
  try {
    // No progress until --progress is parsed (the preAction hook sets it); a bar is erased before an error prints.
    await withProgress('none', () => program.parseAsync(argv, { from: 'user' }));
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with code 0; usage errors were already printed by commander.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UserError) {
      process.stderr.write(`repro-oci: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(internalErrorMessage(err));
    return 2;
  }
}

/**
 * The command line interface, defined and not yet run: main() runs it, the man pages are made from all of it.
 * With `command`, only the module that defines that command is loaded (see registerCommands); with null, none.
 */
export async function createProgram(command?: string | null): Promise<Command> {
  const program = new Command('repro-oci')
    .description('Build, rebuild and verify bit-for-bit reproducible OCI images of Arch Linux')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str) })
    .configureHelp({ showGlobalOptions: true })
    .addOption(progressOption())
    .hook('preAction', (self) => applyProgressOption(self));
  if (command !== null) await registerCommands(program, command);
  return program;
}

/**
 * The command that `argv` runs: its first word that is not a global option (or the value of one), or undefined
 * when there is none before `--`.
 */
export function invokedCommand(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return undefined;
    if (arg === '--progress') i++; // its value is the next word
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

/** What a bug prints: the whole stack, asking for a report (exit code 2, never 1, which is a verdict). */
export function internalErrorMessage(err: unknown): string {
  return `repro-oci: internal error (please report): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`;
}
