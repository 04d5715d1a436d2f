import { UserError } from '../errors.js';
import { FieldCollector, parseKeyValueLines } from './key-value.js';

/** A package's `.BUILDINFO`, format 1 or 2 (2 adds startdir, buildtool and buildtoolver). */
export interface BuildInfo {
  format: 1 | 2;
  pkgname: string;
  pkgbase?: string;
  /** Full version, `[epoch:]pkgver-pkgrel`. */
  pkgver: string;
  pkgarch: string;
  pkgbuildSha256sum?: string;
  packager?: string;
  builddate?: number;
  builddir?: string;
  startdir?: string;
  buildtool?: string;
  buildtoolver?: string;
  buildenv: string[];
  options: string[];
  /** `name-version-arch` of every package installed in the build environment. */
  installed: string[];
  entries: Array<[string, string]>;
  warnings: string[];
}

const FORMAT_2_ONLY = new Set(['startdir', 'buildtool', 'buildtoolver']);

export function parseBuildInfo(input: Buffer | string, what = '.BUILDINFO'): BuildInfo {
  const { lines, warnings } = parseKeyValueLines(input, what);
  const fields = new FieldCollector(what);
  let format: 1 | 2 | undefined;
  const text: Partial<Record<string, string>> = {};
  let builddate: number | undefined;
  const buildenv: string[] = [];
  const options: string[] = [];
  const installed: string[] = [];
  const entries: Array<[string, string]> = [];
  for (const entry of lines) {
    entries.push([entry.key, entry.value]);
    switch (entry.key) {
      case 'format': {
        const value = fields.single(entry);
        if (value !== '1' && value !== '2') throw new UserError(`${what}: line ${entry.line}: unsupported format ${JSON.stringify(value)} (expected 1 or 2)`);
        format = value === '1' ? 1 : 2;
        break;
      }
      case 'builddate':
        builddate = fields.integer(entry);
        break;
      case 'buildenv':
        buildenv.push(entry.value);
        break;
      case 'options':
        options.push(entry.value);
        break;
      case 'installed':
        installed.push(entry.value);
        break;
      case 'pkgname':
      case 'pkgbase':
      case 'pkgver':
      case 'pkgarch':
      case 'pkgbuild_sha256sum':
      case 'packager':
      case 'builddir':
      case 'startdir':
      case 'buildtool':
      case 'buildtoolver':
        text[entry.key] = fields.single(entry);
        break;
      default:
        warnings.push(`${what}: line ${entry.line}: unknown key ${JSON.stringify(entry.key)}`);
    }
  }
  const chosen = fields.require(format, 'format');
  if (chosen === 1) {
    for (const key of FORMAT_2_ONLY) if (text[key] !== undefined) warnings.push(`${what}: ${key} is a format 2 field in a format 1 file`);
  }
  const info: BuildInfo = {
    format: chosen,
    pkgname: fields.require(text.pkgname, 'pkgname'),
    pkgver: fields.require(text.pkgver, 'pkgver'),
    pkgarch: fields.require(text.pkgarch, 'pkgarch'),
    buildenv,
    options,
    installed,
    entries,
    warnings,
  };
  if (text.pkgbase !== undefined) info.pkgbase = text.pkgbase;
  if (text.pkgbuild_sha256sum !== undefined) info.pkgbuildSha256sum = text.pkgbuild_sha256sum;
  if (text.packager !== undefined) info.packager = text.packager;
  if (builddate !== undefined) info.builddate = builddate;
  if (text.builddir !== undefined) info.builddir = text.builddir;
  if (text.startdir !== undefined) info.startdir = text.startdir;
  if (text.buildtool !== undefined) info.buildtool = text.buildtool;
  if (text.buildtoolver !== undefined) info.buildtoolver = text.buildtoolver;
  return info;
}
