import { UserError } from '../errors.js';

/**
 * What a package's name, version and file name may be. These become path components (the local database's
 * `<name>-<version>` directory, a mirror's `<mirror>/<filename>`), so each is checked wherever one arrives from
 * outside: a sync database, a `.PKGINFO`, a lock. The same patterns are in schemas/lock.schema.json.
 */

/** makepkg's lint_pkgbuild: alphanumerics and `@._+-`, not starting with `-` or `.` (so never `.` or `..`). */
export const PACKAGE_NAME = /^[A-Za-z0-9@_+][A-Za-z0-9@._+-]*$/;

/**
 * `[epoch:]pkgver-pkgrel` as makepkg writes it: epoch an integer, pkgver printable ASCII without `:`, `/`, `-`
 * or whitespace, pkgrel `integer[.integer]`.
 */
export const PACKAGE_VERSION = /^(?:[0-9]+:)?[!-,.0-9;-~]+-[0-9]+(?:\.[0-9]+)?$/;

/** libalpm's _alpm_validate_filename (sync databases): not starting with `.`, no `/`, at most NAME_MAX bytes; and no control characters. */
export const PACKAGE_FILENAME = /^[^./\p{Cc}][^/\p{Cc}]*$/u;
const NAME_MAX = 255;

export function checkPackageName(name: string, what: string): string {
  if (!PACKAGE_NAME.test(name)) throw new UserError(`${what}: package name ${JSON.stringify(name)} is not valid (letters, digits and @._+- only, not starting with - or .)`);
  return name;
}

export function checkPackageVersion(version: string, what: string): string {
  if (!PACKAGE_VERSION.test(version)) throw new UserError(`${what}: version ${JSON.stringify(version)} is not valid ([epoch:]pkgver-pkgrel, pkgver without : / - or spaces)`);
  return version;
}

export function checkPackageFilename(filename: string, what: string): string {
  if (!PACKAGE_FILENAME.test(filename) || Buffer.byteLength(filename) > NAME_MAX) {
    throw new UserError(`${what}: file name ${JSON.stringify(filename)} is not valid (no /, not starting with ., at most ${NAME_MAX} bytes)`);
  }
  return filename;
}
