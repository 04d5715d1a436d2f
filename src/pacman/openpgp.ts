import type * as OpenPgp from 'openpgp';

let loaded: typeof OpenPgp | undefined;

/**
 * openpgp.js, loaded on first use: it takes ~0.1 s to load, which every command paid at start (`status`, `verify`,
 * `inspect` never check a package signature). Keys and signature packets exist only after it was loaded.
 */
export async function loadOpenpgp(): Promise<typeof OpenPgp> {
  return (loaded ??= await import('openpgp'));
}

/** The loaded module, for code that holds keys or packets (so it was loaded). */
export function openpgp(): typeof OpenPgp {
  if (!loaded) throw new Error('openpgp.js used before loadOpenpgp()');
  return loaded;
}
