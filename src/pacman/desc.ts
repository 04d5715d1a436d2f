import { UserError } from '../errors.js';
import { displayName } from '../util/raw-name.js';
import { ownEntry } from '../util/lookup.js';
import { bytesToText } from './key-value.js';
import { checkPackageFilename, checkPackageName, checkPackageVersion } from './names.js';

/**
 * The `%KEY%` block format of pacman's databases (sync `desc`/`files`, local `desc`/`files`): a `%KEY%` line,
 * one value per line, and a blank line ending the block.
 */

export type DescBlocks = Map<string, string[]>;

const KEY_LINE = /^%([^%]+)%$/;

/** Parses blocks in file order. A value line outside a block, or a key given twice, is an error. */
export function parseDesc(input: Buffer | string, what: string): DescBlocks {
  const text = bytesToText(input, what);
  const blocks: DescBlocks = new Map();
  let current: string[] | undefined;
  text.split('\n').forEach((raw, index) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '') {
      current = undefined;
      return;
    }
    if (current !== undefined) {
      current.push(line);
      return;
    }
    const key = KEY_LINE.exec(line)?.[1];
    if (key === undefined) throw new UserError(`${what}: line ${index + 1}: expected a %KEY% line, found ${JSON.stringify(line)}`);
    if (blocks.has(key)) throw new UserError(`${what}: line ${index + 1}: ${displayName(`%${key}%`)} appears twice`);
    current = [];
    blocks.set(key, current);
  });
  return blocks;
}

/** Writes blocks in the given order, each followed by a blank line; keys without values are left out. */
export function writeDesc(blocks: Iterable<readonly [string, readonly string[]]>): string {
  let out = '';
  for (const [key, values] of blocks) {
    if (values.length === 0) continue;
    if (!/^[^%\n]+$/.test(key)) throw new UserError(`desc key ${JSON.stringify(key)} cannot be written`);
    for (const value of values) {
      // An empty value would end the block early; a newline would split it.
      if (value === '' || value.includes('\n')) throw new UserError(`desc %${key}%: value ${JSON.stringify(value)} cannot be written`);
    }
    out += `%${key}%\n${values.join('\n')}\n\n`;
  }
  return out;
}

/** A sync database package entry (`<name>-<version>/desc`). Lists are empty when absent. */
export interface SyncDesc {
  filename: string;
  name: string;
  base?: string;
  version: string;
  desc?: string;
  groups: string[];
  /** Package file size. */
  csize?: number;
  /** Installed size. */
  isize?: number;
  md5sum?: string;
  sha256sum?: string;
  /** Base64 of the detached signature. */
  pgpsig?: string;
  url?: string;
  license: string[];
  arch?: string;
  builddate?: number;
  packager?: string;
  replaces: string[];
  conflicts: string[];
  provides: string[];
  depends: string[];
  optdepends: string[];
  makedepends: string[];
  checkdepends: string[];
  /** `key=value` extension data (%DATA% or %XDATA%). */
  xdata: string[];
}

type SyncListField = 'groups' | 'license' | 'replaces' | 'conflicts' | 'provides' | 'depends' | 'optdepends' | 'makedepends' | 'checkdepends' | 'xdata';
type SyncTextField = 'filename' | 'name' | 'base' | 'version' | 'desc' | 'md5sum' | 'sha256sum' | 'pgpsig' | 'url' | 'arch' | 'packager';
type SyncNumberField = 'csize' | 'isize' | 'builddate';

const SYNC_LISTS: Record<string, SyncListField> = {
  GROUPS: 'groups',
  LICENSE: 'license',
  REPLACES: 'replaces',
  CONFLICTS: 'conflicts',
  PROVIDES: 'provides',
  DEPENDS: 'depends',
  OPTDEPENDS: 'optdepends',
  MAKEDEPENDS: 'makedepends',
  CHECKDEPENDS: 'checkdepends',
  DATA: 'xdata',
  XDATA: 'xdata',
};

const SYNC_TEXT: Record<string, SyncTextField> = {
  FILENAME: 'filename',
  NAME: 'name',
  BASE: 'base',
  VERSION: 'version',
  DESC: 'desc',
  MD5SUM: 'md5sum',
  SHA256SUM: 'sha256sum',
  PGPSIG: 'pgpsig',
  URL: 'url',
  ARCH: 'arch',
  PACKAGER: 'packager',
};

const SYNC_NUMBERS: Record<string, SyncNumberField> = { CSIZE: 'csize', ISIZE: 'isize', BUILDDATE: 'builddate' };

export interface TypedDesc<T> {
  value: T;
  /** Unknown keys; pacman skips them, so they are not errors. */
  warnings: string[];
}

function onlyValue(values: string[], key: string, what: string): string {
  if (values.length !== 1) throw new UserError(`${what}: %${key}% must have exactly one value, found ${values.length}`);
  return values[0]!;
}

/** Reads the typed fields of a sync db `desc`; FILENAME, NAME and VERSION are required. */
export function readSyncDesc(blocks: DescBlocks, what: string): TypedDesc<SyncDesc> {
  const warnings: string[] = [];
  const text: Partial<Record<SyncTextField, string>> = {};
  const numbers: Partial<Record<SyncNumberField, number>> = {};
  const lists: Record<SyncListField, string[]> = {
    groups: [],
    license: [],
    replaces: [],
    conflicts: [],
    provides: [],
    depends: [],
    optdepends: [],
    makedepends: [],
    checkdepends: [],
    xdata: [],
  };
  for (const [key, values] of blocks) {
    const list = ownEntry(SYNC_LISTS, key);
    const single = ownEntry(SYNC_TEXT, key);
    const number = ownEntry(SYNC_NUMBERS, key);
    if (list !== undefined) {
      lists[list].push(...values);
    } else if (single !== undefined) {
      text[single] = onlyValue(values, key, what);
    } else if (number !== undefined) {
      const value = onlyValue(values, key, what);
      if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value))) {
        throw new UserError(`${what}: %${key}% ${JSON.stringify(value)} is not a non-negative integer`);
      }
      numbers[number] = Number(value);
    } else {
      warnings.push(`${what}: unknown key %${key}% skipped`);
    }
  }
  for (const key of ['FILENAME', 'NAME', 'VERSION'] as const) {
    if (text[SYNC_TEXT[key]!] === undefined) throw new UserError(`${what}: required %${key}% is missing`);
  }
  // Name, version and file name become paths and URLs (the local database, a mirror's file): checked as pacman and makepkg do.
  const value: SyncDesc = { filename: checkPackageFilename(text.filename!, what), name: checkPackageName(text.name!, what), version: checkPackageVersion(text.version!, what), ...lists };
  for (const field of ['base', 'desc', 'md5sum', 'sha256sum', 'pgpsig', 'url', 'arch', 'packager'] as const) {
    if (text[field] !== undefined) value[field] = text[field];
  }
  for (const field of ['csize', 'isize', 'builddate'] as const) {
    if (numbers[field] !== undefined) value[field] = numbers[field];
  }
  return { value, warnings };
}

/** Reads a `files` entry: the %FILES% list (relative paths, directories ending in `/`) and %BACKUP% if any. */
export function readFilesEntry(blocks: DescBlocks, what: string): TypedDesc<{ files: string[]; backup: string[] }> {
  const warnings: string[] = [];
  for (const key of blocks.keys()) if (key !== 'FILES' && key !== 'BACKUP') warnings.push(`${what}: unknown key %${key}% skipped`);
  return { value: { files: blocks.get('FILES') ?? [], backup: blocks.get('BACKUP') ?? [] }, warnings };
}
