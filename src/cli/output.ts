import { writeFileAtomic } from '../util/fs.js';
import { progressNote } from '../util/progress.js';
import { checkWritableFile } from '../util/writable.js';
import type { Descriptor } from '../oci/types.js';

/**
 * What commands print for scripts. `--json`: one JSON document on stdout and nothing else there (notes and
 * progress go to stderr), two-space indented, keys in the order each command documents (docs/json-output.md).
 * `--digestfile FILE`: the digest alone, `sha256:…` without a newline, as skopeo writes it.
 */

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A note or warning for the user, on stderr: a line of its own, also while a progress bar is drawn. */
export function note(message: string): void {
  progressNote(message);
}

/** A descriptor as the JSON reports show it: digest, media type, size. */
export function descriptorJson(d: Descriptor): { digest: string; mediaType: string; size: number } {
  return { digest: d.digest, mediaType: d.mediaType, size: d.size };
}

/** Checked before the work starts, like every other place a command writes. */
export function checkDigestFile(path: string | undefined): Promise<void> {
  return path === undefined ? Promise.resolve() : checkWritableFile(path, `--digestfile ${path}`);
}

export async function writeDigestFile(path: string | undefined, digest: string): Promise<void> {
  if (path !== undefined) await writeFileAtomic(path, digest);
}
