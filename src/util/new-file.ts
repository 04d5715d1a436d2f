import { link, open, rm, writeFile } from 'node:fs/promises';
import { UserError } from '../errors.js';
import { settled, siblingTempPath } from './fs.js';
import { writeFailure } from './fs-error.js';
import { displayName } from './raw-name.js';

/**
 * Creates `path` with `data`, all or nothing, and never over an existing file: a temp sibling is written with
 * `mode`, synced, then hard-linked into place, which fails when the name exists (even one made a moment ago by
 * another process, or a dangling symlink), so a key or a pin is never silently replaced.
 */
export async function writeNewFile(path: string, data: Uint8Array | string, mode: number): Promise<void> {
  const temp = siblingTempPath(path);
  try {
    await writeFile(temp, data, { mode, flag: 'wx' });
    const handle = await open(temp, 'r+');
    try {
      await handle.chmod(mode); // whatever the umask: a private key is 0600, never less private
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(temp, path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EEXIST' && e.syscall === 'link') {
      throw new UserError(`${displayName(path)}: exists already; it is never overwritten: remove it or choose another name`);
    }
    throw writeFailure(err, path, temp);
  } finally {
    await rm(temp, { force: true });
    settled(temp);
  }
}
