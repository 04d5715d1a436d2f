import { Option } from 'commander';
import { DEFAULT_KEY_EXPIRY, KEY_EXPIRY_POLICIES } from '../pacman/signature.js';

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
