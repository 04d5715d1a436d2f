import { ContentCache } from '../fetch/cache.js';
import { checkOciImportTarget } from '../transports/oci-import.js';
import { parseReference } from '../transports/reference.js';
import { displayName } from '../util/raw-name.js';
import { checkNewDirectory, checkWritableDirectory, checkWritableFile } from '../util/writable.js';

/**
 * What the CLI checks before a command's work starts (see util/writable.ts): every local image output and the
 * cache. The commands check their other paths (--sbom, --root, --report-dir, the lock) with util/writable.ts.
 */

/** Every local image output (oci:, oci-archive:, docker-archive:, oci-import:); registry outputs are checked by the registry. */
export async function checkOutputs(references: string[]): Promise<void> {
  for (const text of references) {
    const ref = parseReference(text);
    if (ref.transport === 'oci') await checkNewDirectory(ref.path, text, { layoutOk: true });
    else if (ref.transport === 'oci-import') await checkOciImportTarget(ref.path, ref.branch, text);
    else if (ref.transport !== 'docker') await checkWritableFile(ref.path, text);
  }
}

/** The package cache as --cache, $REPRO_OCI_CACHE or the default name it. */
export function checkCache(dir: string | undefined): Promise<void> {
  const root = ContentCache.at(dir).root;
  return checkWritableDirectory(root, `cache ${displayName(root)}`);
}
