/**
 * Package version ordering exactly as pacman's `vercmp` (libalpm alpm_pkg_vercmp, an rpmvercmp descendant).
 * Everything works on UTF-8 bytes, because pacman does: separator runs are measured in bytes and only ASCII
 * letters and digits count as version characters.
 */

export type VersionOrder = -1 | 0 | 1;

/** `[epoch:]pkgver[-pkgrel]` split the way pacman splits it. */
export interface SplitVersion {
  /** "0" when absent or empty. */
  epoch: string;
  pkgver: string;
  /** Absent when there is no `-`; then pkgrel is not compared at all (so `1.5` equals `1.5-1`). */
  pkgrel: string | undefined;
}

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isAlpha = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isAlnum = (c: number): boolean => isDigit(c) || isAlpha(c);

/** pacman works on C strings: anything after a NUL is invisible to it. */
function cString(text: string): string {
  const nul = text.indexOf('\0');
  return nul === -1 ? text : text.slice(0, nul);
}

export function splitVersion(version: string): SplitVersion {
  const text = cString(version);
  let afterEpochDigits = 0;
  while (afterEpochDigits < text.length && isDigit(text.charCodeAt(afterEpochDigits))) afterEpochDigits++;
  // The release starts after the last dash; an epoch is only recognised as leading digits (possibly none) and ':'.
  const dash = text.lastIndexOf('-');
  const hasEpoch = text[afterEpochDigits] === ':';
  const pkgverStart = hasEpoch ? afterEpochDigits + 1 : 0;
  const pkgverEnd = dash === -1 ? text.length : dash;
  return {
    epoch: hasEpoch && afterEpochDigits > 0 ? text.slice(0, afterEpochDigits) : '0',
    pkgver: text.slice(pkgverStart, pkgverEnd),
    pkgrel: dash === -1 ? undefined : text.slice(dash + 1),
  };
}

function compareBytes(a: Uint8Array, b: Uint8Array): VersionOrder {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/**
 * Compares one version part (epoch, pkgver or pkgrel) segment by segment: digit runs numerically, letter runs
 * bytewise, a digit run beats a letter run, and a longer separator run before a segment wins.
 */
export function compareVersionPart(left: string, right: string): VersionOrder {
  const a = Buffer.from(cString(left), 'utf8');
  const b = Buffer.from(cString(right), 'utf8');
  if (a.equals(b)) return 0;
  const at = (s: Uint8Array, i: number): number => (i < s.length ? s[i]! : 0);

  let i = 0; // start of the next unread byte in a
  let j = 0;
  let segEndA = 0; // end of the previous segment, to measure separator runs
  let segEndB = 0;
  while (i < a.length && j < b.length) {
    while (i < a.length && !isAlnum(a[i]!)) i++;
    while (j < b.length && !isAlnum(b[j]!)) j++;
    if (i >= a.length || j >= b.length) break;
    if (i - segEndA !== j - segEndB) return i - segEndA < j - segEndB ? -1 : 1;

    // The segment's kind is decided by the left side; the right side's run of that kind may be empty.
    const numeric = isDigit(a[i]!);
    const sameKind = numeric ? isDigit : isAlpha;
    segEndA = i;
    segEndB = j;
    while (segEndA < a.length && sameKind(a[segEndA]!)) segEndA++;
    while (segEndB < b.length && sameKind(b[segEndB]!)) segEndB++;
    if (segEndB === j) return numeric ? 1 : -1;

    let startA = i;
    let startB = j;
    if (numeric) {
      while (startA < segEndA && a[startA] === 0x30) startA++;
      while (startB < segEndB && b[startB] === 0x30) startB++;
      const lengthA = segEndA - startA;
      const lengthB = segEndB - startB;
      if (lengthA !== lengthB) return lengthA > lengthB ? 1 : -1;
    }
    const order = compareBytes(a.subarray(startA, segEndA), b.subarray(startB, segEndB));
    if (order !== 0) return order;
    i = segEndA;
    j = segEndB;
  }
  if (i >= a.length && j >= b.length) return 0;
  // Leftovers: a letter segment left over is older (1.0rc < 1.0); anything else left over is newer.
  if ((i >= a.length && !isAlpha(at(b, j))) || isAlpha(at(a, i))) return -1;
  return 1;
}

/** Orders two full package versions like `vercmp a b`: -1 when a is older, 1 when newer, 0 when equal. */
export function vercmp(a: string, b: string): VersionOrder {
  if (cString(a) === cString(b)) return 0;
  const left = splitVersion(a);
  const right = splitVersion(b);
  const byEpoch = compareVersionPart(left.epoch, right.epoch);
  if (byEpoch !== 0) return byEpoch;
  const byPkgver = compareVersionPart(left.pkgver, right.pkgver);
  if (byPkgver !== 0 || left.pkgrel === undefined || right.pkgrel === undefined) return byPkgver;
  return compareVersionPart(left.pkgrel, right.pkgrel);
}
