import type { Stats } from 'node:fs';
import { mkdir, readdir, rmdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { settled, siblingTempPath } from './fs.js';
import { systemReason } from './fs-error.js';
import { displayName } from './raw-name.js';

/**
 * Checks, before any work starts, that every place a command will write can be written: each fails as one line
 * naming the path and why (permission denied, read-only file system, not a directory…), so that a build does not
 * run for minutes and then fail to save its result. Writability is tried, not guessed from mode bits (root ignores
 * them; a read-only mount or /proc does not show in them): a directory is created and removed at once where the
 * write will happen, under the temporary names that interrupts and later runs clean up.
 */

/** The nearest existing ancestor of `path` (or `path` itself), walking up through missing components. */
async function nearestExisting(path: string, what: string): Promise<{ at: string; info: Stats }> {
  let at = resolve(path);
  for (;;) {
    try {
      return { at, info: await stat(at) };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || dirname(at) === at) throw new UserError(`${what}: ${systemReason(err)}`);
      at = dirname(at);
    }
  }
}

/** Creates and removes a directory in `dir`: the one sure test that the file system lets us add entries there. */
async function probe(dir: string, what: string): Promise<void> {
  const trial = siblingTempPath(join(dir, 'write-check'));
  try {
    await mkdir(trial, { mode: 0o700 });
    await rmdir(trial);
  } catch (err) {
    // /proc answers ENOENT for any new name in a directory that exists.
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'the file system takes no new files there (ENOENT)' : systemReason(err);
    throw new UserError(`${what}: cannot create files in ${displayName(dir)}: ${why}`);
  } finally {
    settled(trial);
  }
}

/** A directory that will be written into, created (with its missing parents) if need be: --sbom, the cache. */
export async function checkWritableDirectory(path: string, what: string): Promise<void> {
  const { at, info } = await nearestExisting(path, what);
  if (!info.isDirectory()) throw new UserError(`${what}: ${at === resolve(path) ? '' : `${displayName(at)} `}is not a directory`);
  await probe(at, what);
}

/**
 * A directory that must be new or empty (an OCI layout may also exist already, when `layoutOk`): it is created
 * beside itself and renamed into place, so its parent is what must be writable.
 */
export async function checkNewDirectory(path: string, what: string, options: { layoutOk?: boolean } = {}): Promise<void> {
  const { at, info } = await nearestExisting(path, what);
  if (at !== resolve(path)) return checkWritableDirectory(path, what);
  if (!info.isDirectory()) throw new UserError(`${what}: exists and is not a directory`);
  const names = await readdir(at).catch((err: unknown) => {
    throw new UserError(`${what}: cannot be read: ${systemReason(err)}`);
  });
  if (names.length > 0 && !(options.layoutOk && names.includes('oci-layout'))) {
    throw new UserError(`${what}: ${options.layoutOk ? 'exists and is not an OCI image layout' : 'not empty'}`);
  }
  // An existing layout gains blobs in place; an empty directory is replaced by one made beside it.
  await probe(names.length > 0 ? at : dirname(at), what);
}

/** A file written beside itself and renamed into place (a lock, an archive): its directory must exist and take new files. */
export async function checkWritableFile(path: string, what: string): Promise<void> {
  const { at, info } = await nearestExisting(path, what);
  if (at === resolve(path)) {
    if (info.isDirectory()) throw new UserError(`${what}: is a directory`);
    return probe(dirname(at), what);
  }
  const parent = dirname(resolve(path));
  if (!info.isDirectory()) throw new UserError(`${what}: ${displayName(at)} is not a directory`);
  if (at !== parent) throw new UserError(`${what}: directory ${displayName(parent)} does not exist`);
  await probe(parent, what);
}
