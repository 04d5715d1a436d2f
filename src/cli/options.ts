import { Option, type Command } from 'commander';
import { UserError } from '../errors.js';
import { DEFAULT_KEY_EXPIRY, KEY_EXPIRY_POLICIES } from '../pacman/signature.js';
import { PROGRESS_MODES, setProgress, type ProgressMode } from '../util/progress.js';

/** --progress, a global option: given before or after the command, for every command. */
export function progressOption(): Option {
  return new Option(
    '--progress <mode>',
    'progress of the long phases (fetch, install, setup, compress, push) on stderr, never on stdout: auto (tty on a terminal, else plain), tty (a bar redrawn in place), plain (a line at the start and end of each phase and at most every 5 s between), none',
  )
    .choices(PROGRESS_MODES)
    .default('auto', '$REPRO_OCI_PROGRESS (a mode, 0 for none), else auto');
}

/** The mode: --progress when given, else $REPRO_OCI_PROGRESS (a mode, or 0 for none and 1 for auto), else auto. */
export function progressMode(flag: ProgressMode | undefined, env: string | undefined): ProgressMode {
  if (flag !== undefined) return flag;
  if (env === undefined || env === '' || env === '1') return 'auto';
  if (env === '0') return 'none';
  if ((PROGRESS_MODES as readonly string[]).includes(env)) return env as ProgressMode;
  throw new UserError(`REPRO_OCI_PROGRESS=${JSON.stringify(env).slice(1, -1)}: not one of 0, 1, ${PROGRESS_MODES.join(', ')}`);
}

/** Sets the progress of the run from the parsed program's --progress (commander's preAction hook). */
export function applyProgressOption(program: Command): void {
  const given = program.getOptionValueSource('progress') === 'cli' ? (program.opts() as { progress: ProgressMode }).progress : undefined;
  setProgress(progressMode(given, process.env.REPRO_OCI_PROGRESS));
}

/** --attestations, for the commands that judge packages by rebuilders' answers (status, publish). */
export function attestationsOption(): Option {
  return new Option('--attestations <mode>', 'required (default): only a GOOD whose rebuilder attestation verifies counts; optional: any GOOD counts unless its attestation is invalid').choices(['required', 'optional']);
}

/** --key-expiry, for the commands that verify signatures (lock, build, install, ls, rebuild). */
export function keyExpiryOption(): Option {
  return new Option(
    '--key-expiry <when>',
    "when a signing key's expiry is judged: at-signature (a key that expired after signing still verifies, so archive snapshots stay verifiable) or now (as pacman: an expired key is untrusted, so TrustedOnly refuses it); see docs/trust-model.md",
  )
    .choices(KEY_EXPIRY_POLICIES)
    .default(DEFAULT_KEY_EXPIRY);
}

/** commander argParser for repeatable options (`-o A -o B` → ['A', 'B']). */
export function repeatable(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The registry options every command that reads or writes images takes. */
export interface RegistryCliOptions {
  creds?: string;
  insecure?: boolean;
}

export function addRegistryOptions<T extends { option(flags: string, description: string): T }>(command: T): T {
  return command
    .option('--creds <user:pass>', 'registry credentials (default: $REGISTRY_AUTH_FILE, auth.json, ~/.docker/config.json)')
    .option('--insecure', 'allow plain http to registries that are not on loopback');
}

export function transportOptions(opts: RegistryCliOptions): { creds?: string; insecure?: boolean } {
  return { ...(opts.creds ? { creds: opts.creds } : {}), ...(opts.insecure ? { insecure: true } : {}) };
}

/** The options that bound setup commands (build and rebuild). */
export interface CommandCliOptions {
  commands: boolean;
  commandTimeout?: string;
  commandDisk?: string;
  commandMemory?: string;
  commandProcesses?: string;
}

export function addCommandOptions<T extends { option(flags: string, description: string): T }>(command: T): T {
  return command
    .option('--no-commands', 'refuse a spec or recipe that has setup commands or runs scriptlets or hooks (before fetching anything)')
    .option('--command-timeout <duration>', 'time limit of each setup command: 500ms, 30s, 10m, 1h (default 10m)')
    .option('--command-disk <size>', 'bytes the setup commands may write: the tree\'s growth, each file, /tmp (default 4G)')
    .option('--command-memory <size>', 'address space of each setup command process (default 4G)')
    .option('--command-processes <n>', 'processes the setup commands may run at once (default 1024)');
}
