import { UserError } from '../errors.js';
import { displayName } from './raw-name.js';

/**
 * Why a file-system call failed, in words and code, without the path (the caller names it):
 * `ENAMETOOLONG: name too long, open '…'` → `name too long (ENAMETOOLONG)`; a stream's `ENOSPC: no space left on
 * device, write` → `no space left on device (ENOSPC)`.
 */
export function systemReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const text = (err instanceof Error ? err.message : String(err)).replace(/^[A-Z]+: /, '').replace(/, [a-z]+(?: '.*)?$/s, '');
  return e.code ? `${text} (${e.code})` : text;
}

/** An error a file-system call reports (it carries the errno code and the path it was given). */
export function isFileSystemError(err: unknown): err is NodeJS.ErrnoException & { path: string } {
  const e = err as NodeJS.ErrnoException;
  return !(err instanceof UserError) && err instanceof Error && typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code) && typeof e.path === 'string';
}

/** Calls whose failure without a path (a stream's write, fsync or close) is the file being written. */
const WRITE_CALLS = new Set(['write', 'writev', 'fsync', 'fdatasync', 'close', 'ftruncate']);

/**
 * A failed write of `target` (through the temporary `temp`, if any) as one line naming `target`; an error that is
 * not the file system's (the source stream's, a digest mismatch) is returned as it is.
 */
export function writeFailure(err: unknown, target: string, temp?: string): unknown {
  const e = err as NodeJS.ErrnoException;
  const ours = isFileSystemError(err) || (err instanceof Error && !(err instanceof UserError) && typeof e.code === 'string' && e.path === undefined && WRITE_CALLS.has(e.syscall ?? ''));
  if (!ours) return err;
  const shown = e.path === undefined || e.path === temp ? target : e.path;
  return new UserError(`${displayName(shown)}: cannot write: ${systemReason(err)}`, { cause: err });
}
