import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Lock, LockedPackage } from '../lock/lock.js';
import { isUrl, resolveLocation } from '../lock/spec.js';
import { UserError } from '../errors.js';

/**
 * Which package URLs a recipe read from an image may make us contact (docs/trust-model.md). The recipe is the
 * image author's text: its URLs are allowed only under the Arch Linux Archive and under locations the user names
 * (`--mirror`, `--allow-url`). Anything else — another host, loopback, a file: URL, a relative path — is never
 * contacted: it is dropped before fetching, so nothing about its target (existence, size) can show.
 */
export const ARCHIVE_URL = 'https://archive.archlinux.org/';

const SCHEMES = new Set(['http:', 'https:', 'file:']);

/** A location prefix, parsed once: an origin (or file:) and a path that ends at a segment boundary. */
interface Prefix {
  protocol: string;
  origin: string;
  path: string;
}

function parsePrefix(text: string, what: string): Prefix {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UserError(`${what} ${JSON.stringify(text)}: not an absolute URL (http://, https:// or file://)`);
  }
  if (!SCHEMES.has(url.protocol)) throw new UserError(`${what} ${JSON.stringify(text)}: only http, https and file URLs can be allowed`);
  if (url.search || url.hash || url.username || url.password) throw new UserError(`${what} ${JSON.stringify(text)}: a prefix has no query, fragment or credentials`);
  // `/repo` allows /repo/… but not /repository/…: a prefix always ends at a '/'.
  const path = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
  return { protocol: url.protocol, origin: url.protocol === 'file:' ? 'file:' : url.origin, path };
}

export class UrlPolicy {
  private readonly prefixes: Prefix[];

  /** `allowed`: the user's --allow-url prefixes; `mirrors`: the user's --mirror base URLs, resolved (allowed too). */
  constructor(allowed: string[], mirrors: string[] = []) {
    this.prefixes = [
      parsePrefix(ARCHIVE_URL, 'archive URL'),
      ...mirrors.map((m) => parsePrefix(m, '--mirror')),
      ...allowed.map((a) => parsePrefix(a, '--allow-url')),
    ];
  }

  /** Whether `url` (absolute) lies under an allowed prefix, compared after URL normalization (`..`, case, ports). */
  allows(url: string): boolean {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return false;
    }
    if (!SCHEMES.has(parsed.protocol) || parsed.username || parsed.password) return false;
    const origin = parsed.protocol === 'file:' ? 'file:' : parsed.origin;
    // A file: URL with a host (file://server/…) names another machine: never allowed.
    if (parsed.protocol === 'file:' && parsed.host) return false;
    return this.prefixes.some((p) => p.origin === origin && p.protocol === parsed.protocol && parsed.pathname.startsWith(p.path));
  }
}

/** What to allow so that `url` would be fetched: its directory (file:) or its origin (http, https). */
function suggestion(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.protocol === 'file:') return pathToFileURL(`${dirname(fileURLToPath(parsed))}/`).href;
    if (parsed.protocol === 'http:' || parsed.protocol === 'https:') return `${parsed.origin}/`;
  } catch {
    // Not a URL we could ever allow: only a mirror helps.
  }
  return 'PREFIX';
}

/** A package none of whose recipe URLs is allowed: it can only come from the cache or a --mirror. */
export interface RefusedPackage {
  pkg: LockedPackage;
  /** The recipe's own URLs for it, resolved (relative paths become file: URLs), as text to show. */
  urls: string[];
}

/**
 * The lock to fetch from: each package's URLs cut down to those `policy` allows. A relative path is relative to the
 * directory of the spec the image was built from, which the image does not record: it is resolved against `baseDir`
 * when the caller knows that directory, and otherwise kept as written, which no policy allows (never against the
 * current directory, which has nothing to do with the image). Pure: nothing is contacted. Packages left without a
 * URL are returned in `refused` (they may still be cached, or come from a mirror). `dropped` counts the URLs not
 * used, `unresolved` those of them that are relative paths left unresolved.
 */
export function applyUrlPolicy(lock: Lock, baseDir: string | undefined, policy: UrlPolicy): { lock: Lock; refused: RefusedPackage[]; dropped: number; unresolved: number } {
  const refused: RefusedPackage[] = [];
  let dropped = 0;
  let unresolved = 0;
  const packages = lock.packages.map((pkg) => {
    const raw: unknown[] = Array.isArray(pkg.urls) ? pkg.urls : [];
    const resolved = raw.map((u) => (typeof u !== 'string' ? JSON.stringify(u) : baseDir === undefined ? u : resolveLocation(u, baseDir)));
    const urls = resolved.filter((u) => policy.allows(u));
    dropped += resolved.length - urls.length;
    if (baseDir === undefined) unresolved += raw.filter((u) => typeof u === 'string' && !isUrl(u)).length;
    if (urls.length === 0) refused.push({ pkg, urls: resolved });
    return { ...pkg, urls };
  });
  return { lock: { ...lock, packages }, refused, dropped, unresolved };
}

/** The one line for a package that no allowed location holds; it echoes the recipe's text and nothing else. */
export function refusedPackageError(refused: RefusedPackage): UserError {
  const { pkg, urls } = refused;
  const shown = urls.length ? urls.map((u) => JSON.stringify(u)).join(', ') : 'none';
  const written: unknown[] = Array.isArray(pkg.urls) ? pkg.urls : [];
  if (written.length && written.every((u) => typeof u === 'string' && !isUrl(u)) && urls.every((u) => !isUrl(u))) {
    // Only a mirror can stand in for a path whose base directory is unknown: the package is looked up by file name.
    return new UserError(`package ${pkg.name} ${pkg.version}: the recipe names it only by a path relative to the spec it was built from (${shown}), which a rebuild does not resolve; give --mirror DIR, a directory that holds ${JSON.stringify(pkg.filename)}`);
  }
  return new UserError(`package ${pkg.name} ${pkg.version}: none of the recipe's URLs is allowed (${shown}); give --mirror URL or --allow-url ${suggestion(urls.find(isUrl) ?? '')}`);
}
