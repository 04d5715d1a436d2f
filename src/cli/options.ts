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
