import { ownEntry } from '../util/lookup.js';
import { FieldCollector, parseKeyValueLines } from './key-value.js';
import { checkPackageName, checkPackageVersion } from './names.js';

/**
 * A package's `.PKGINFO`. Dependency-like lists stay as the strings makepkg wrote (parse them with
 * parseDependency); pacman copies them verbatim into its databases.
 */
export interface PkgInfo {
  pkgname: string;
  pkgbase?: string;
  /** Full version, `[epoch:]pkgver-pkgrel`. */
  pkgver: string;
  pkgdesc?: string;
  url?: string;
  builddate?: number;
  packager?: string;
  /** Installed size in bytes. */
  size?: number;
  arch?: string;
  license: string[];
  replaces: string[];
  groups: string[];
  conflicts: string[];
  provides: string[];
  backup: string[];
  depends: string[];
  optdepends: string[];
  makedepends: string[];
  checkdepends: string[];
  /** `key=value` extension data (pacman >= 6.1 writes `pkgtype=...`). */
  xdata: string[];
  /** Every `key = value` line in file order, for anything not modelled above. */
  entries: Array<[string, string]>;
  /** Unknown keys and malformed lines; libalpm logs and skips them. */
  warnings: string[];
}

type ListField = 'license' | 'replaces' | 'groups' | 'conflicts' | 'provides' | 'backup' | 'depends' | 'optdepends' | 'makedepends' | 'checkdepends' | 'xdata';

const LIST_KEYS: Record<string, ListField> = {
  license: 'license',
  replaces: 'replaces',
  group: 'groups',
  conflict: 'conflicts',
  provides: 'provides',
  backup: 'backup',
  depend: 'depends',
  optdepend: 'optdepends',
  makedepend: 'makedepends',
  checkdepend: 'checkdepends',
  xdata: 'xdata',
};

/** Keys libalpm accepts but that carry nothing we model (older makepkg versions wrote them). */
const IGNORED_KEYS = new Set(['basever', 'makepkgopt', 'commit']);

export function parsePkgInfo(input: Buffer | string, what = '.PKGINFO'): PkgInfo {
  const { lines, warnings } = parseKeyValueLines(input, what);
  const fields = new FieldCollector(what);
  const info: Omit<PkgInfo, 'pkgname' | 'pkgver'> & { pkgname?: string; pkgver?: string } = {
    license: [],
    replaces: [],
    groups: [],
    conflicts: [],
    provides: [],
    backup: [],
    depends: [],
    optdepends: [],
    makedepends: [],
    checkdepends: [],
    xdata: [],
    entries: [],
    warnings,
  };
  for (const entry of lines) {
    info.entries.push([entry.key, entry.value]);
    const list = ownEntry(LIST_KEYS, entry.key);
    if (list !== undefined) {
      info[list].push(entry.value);
      continue;
    }
    switch (entry.key) {
      case 'pkgname':
      case 'pkgbase':
      case 'pkgver':
      case 'pkgdesc':
      case 'url':
      case 'packager':
      case 'arch':
        info[entry.key] = fields.single(entry);
        break;
      case 'builddate':
      case 'size':
        info[entry.key] = fields.integer(entry);
        break;
      default:
        if (!IGNORED_KEYS.has(entry.key)) warnings.push(`${what}: line ${entry.line}: unknown key ${JSON.stringify(entry.key)}`);
    }
  }
  // The name and version become the local database's directory name: checked as makepkg writes them.
  const pkgname = checkPackageName(fields.require(info.pkgname, 'pkgname'), what);
  const pkgver = checkPackageVersion(fields.require(info.pkgver, 'pkgver'), what);
  return { ...info, pkgname, pkgver };
}
