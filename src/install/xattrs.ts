import { constants } from 'node:os';
import { join } from 'node:path';
import { compareNames, displayName, hasRawBytes } from '../util/raw-name.js';

/**
 * Extended attributes written to disk as pacman restores them (libarchive's ARCHIVE_EXTRACT_XATTR): every one the
 * package holds — user.*, and trusted.* and security.* where privileges allow — each on its own, so that one that
 * fails (user.* on a symlink, which Linux refuses; anything on a file system without xattrs) leaves the others,
 * and never through a symlink. pacman warns about each failure; here they are gathered into one summary.
 *
 * Node has no xattr calls: @napi-rs/xattr (prebuilt N-API binaries, lsetxattr underneath) provides them. On a
 * platform it has no binary for, nothing is applied and the summary says why.
 */

type XattrApi = typeof import('@napi-rs/xattr');

let api: Promise<XattrApi | undefined> | undefined;

function loadApi(): Promise<XattrApi | undefined> {
  api ??= import('@napi-rs/xattr').then(
    (module) => module,
    () => undefined,
  );
  return api;
}

/** The attributes that could not be set, grouped by name, kind of entry and reason. */
export class XattrFailures {
  private readonly groups = new Map<string, number>();
  count = 0;

  add(name: string, entryType: string, reason: string): void {
    const key = `${displayName(name)} on ${entryType}: ${reason}`;
    this.groups.set(key, (this.groups.get(key) ?? 0) + 1);
    this.count++;
  }

  /** One line: `extended attributes (user.s on 2 symlink(s): Operation not permitted (EPERM); …)`. */
  summary(maxGroups = 4): string {
    const groups = [...this.groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const shown = groups.slice(0, maxGroups).map(([key, n]) => key.replace(/ on ([a-z]+):/, ` on ${n} $1(s):`));
    if (groups.length > maxGroups) shown.push(`and ${groups.length - maxGroups} more kind(s)`);
    return `extended attributes (${shown.join('; ')})`;
  }
}

/** `Operation not permitted (os error 1)` → `Operation not permitted (EPERM)`. */
function reasonOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const match = /^(.*) \(os error (\d+)\)$/.exec(message);
  if (!match) return message;
  const code = Object.entries(constants.errno).find(([, n]) => n === Number(match[2]))?.[0];
  return code ? `${match[1]} (${code})` : match[1]!;
}

/**
 * Sets `xattrs` on the entry at tree path `path` under `root` (not following a symlink there); what fails goes to
 * `failures`. Call it after chown (which clears security.capability) and before chmod (user.* needs write
 * permission).
 */
export async function applyXattrs(root: string, path: string, entryType: string, xattrs: Record<string, Buffer>, failures: XattrFailures): Promise<void> {
  const names = Object.keys(xattrs).sort(compareNames);
  const xattr = await loadApi();
  for (const name of names) {
    if (xattr === undefined) failures.add(name, entryType, `no extended attribute support for ${process.platform}-${process.arch} (@napi-rs/xattr)`);
    // The library takes text; a name that is not UTF-8 has no text form.
    else if (hasRawBytes(path) || hasRawBytes(name)) failures.add(name, entryType, 'path or attribute name is not UTF-8');
    else {
      try {
        await xattr.setAttribute(join(root, path), name, xattrs[name]!);
      } catch (err) {
        failures.add(name, entryType, reasonOf(err));
      }
    }
  }
}
