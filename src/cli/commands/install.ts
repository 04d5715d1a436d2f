import type { Command } from 'commander';
import { keyExpiryOption, repeatable } from '../options.js';
import type { KeyExpiry } from '../../pacman/signature.js';
import { ContentCache } from '../../fetch/cache.js';
import { installLock, listLock, type ListedEntry, type TreeFromLockOptions } from '../../install/from-lock.js';
import { byteOrder } from '../../util/order.js';
import { note, printJson } from '../output.js';
import { displayName } from '../../util/raw-name.js';
import { checkNewDirectory } from '../../util/writable.js';
import { checkCache } from '../preflight.js';


interface TreeOptions {
  cache?: string;
  keyring?: string;
  keyExpiry: KeyExpiry;
  mirror: string[];
  noextract: string[];
  allowDevices?: boolean;
  sourceDateEpoch?: string;
  json?: boolean;
}

function addTreeOptions(command: Command): Command {
  return command
    .option('--cache <dir>', 'package cache (default: $REPRO_OCI_CACHE or ~/.cache/repro-oci)')
    .option('--keyring <dir>', "keyring directory matching the lock's keyring: NAME.gpg, and NAME-trusted and NAME-revoked when present (as pacman-key --populate)")
    .addOption(keyExpiryOption())
    .option('--mirror <url>', 'flat mirror (a URL or a directory) holding packages by file name, tried before the lock URLs (repeatable)', repeatable, [])
    .option('--noextract <pattern>', 'pacman.conf NoExtract pattern (repeatable)', repeatable, [])
    .option('--allow-devices', 'accept device nodes in packages')
    .option('--source-date-epoch <seconds>', "mtime for created directories and database files, and pacman's %INSTALLDATE% (default $SOURCE_DATE_EPOCH, else the lock's archive date, else its newest package build date)")
    .option('--json', 'print the result as JSON');
}

const log = note;

function libraryOptions(opts: TreeOptions): TreeFromLockOptions {
  return {
    cache: ContentCache.at(opts.cache),
    ...(opts.keyring ? { keyringDir: opts.keyring } : {}),
    keyExpiry: opts.keyExpiry,
    mirrors: opts.mirror,
    noExtract: opts.noextract,
    allowDevices: opts.allowDevices ?? false,
    ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}),
    ...(process.env.SOURCE_DATE_EPOCH !== undefined ? { sourceDateEpochEnv: process.env.SOURCE_DATE_EPOCH } : {}),
    log,
  };
}

function modeString(type: string, mode: number): string {
  const t = { dir: 'd', symlink: 'l', hardlink: 'h', char: 'c', block: 'b', fifo: 'p', file: '-' }[type] ?? '?';
  const bits = 'rwxrwxrwx'.split('').map((c, i) => (mode & (1 << (8 - i)) ? c : '-'));
  if (mode & 0o4000) bits[2] = bits[2] === 'x' ? 's' : 'S';
  if (mode & 0o2000) bits[5] = bits[5] === 'x' ? 's' : 'S';
  if (mode & 0o1000) bits[8] = bits[8] === 'x' ? 't' : 'T';
  return t + bits.join('');
}

/**
 * One entry of `ls --json` (docs/json-output.md). Names are byte strings: one that is not UTF-8 keeps each
 * invalid byte as the lone surrogate U+DC80 + byte, which JSON writes as `\udcXX` (Python's surrogateescape).
 */
export function entryJson(n: ListedEntry): object {
  return {
    path: `/${n.path}`,
    type: n.type,
    mode: n.mode.toString(8).padStart(4, '0'),
    uid: n.uid,
    gid: n.gid,
    size: n.size,
    mtime: n.mtime,
    ...(n.linkTarget !== undefined ? { linkTarget: n.type === 'hardlink' ? `/${n.linkTarget}` : n.linkTarget } : {}),
    ...(n.devMajor !== undefined ? { devMajor: n.devMajor, devMinor: n.devMinor } : {}),
    ...(n.xattrs && Object.keys(n.xattrs).length
      ? { xattrs: Object.fromEntries(Object.keys(n.xattrs).sort(byteOrder).map((k) => [k, n.xattrs![k]!.toString('base64')])) }
      : {}),
    owner: n.owner || null,
  };
}

export function registerInstall(program: Command): void {
  addTreeOptions(
    program
      .command('install')
      .description('Install the packages of a lock into a directory for inspection (as far as your privileges allow)')
      .argument('<lock>', 'lock file')
      .requiredOption('--root <dir>', 'empty or new directory to write the tree into'),
  ).action(async (lockPath: string, opts: TreeOptions & { root: string }) => {
    await checkNewDirectory(opts.root, `--root ${opts.root}`);
    await checkCache(opts.cache);
    const report = await installLock(lockPath, opts.root, libraryOptions(opts));
    if (opts.json) {
      const skipped = Object.fromEntries([...report.skipped].sort(([a], [b]) => byteOrder(a, b)));
      printJson({ root: opts.root, packages: report.packages, written: report.written, skipped });
      return;
    }
    process.stdout.write(`installed ${report.packages} packages, ${report.written} entries into ${opts.root}\n`);
    for (const [kind, count] of report.skipped) process.stdout.write(`not applied: ${count} × ${kind}\n`);
  });

  addTreeOptions(
    program
      .command('ls')
      .description('List the tree a lock installs: mode, owner, size, path, owning package')
      .argument('<lock>', 'lock file'),
  ).action(async (lockPath: string, opts: TreeOptions) => {
    await checkCache(opts.cache);
    const entries = await listLock(lockPath, libraryOptions(opts));
    if (opts.json) {
      printJson({ lock: lockPath, entries: entries.map(entryJson) });
      return;
    }
    const lines = entries.map((n) => {
      // Names are byte strings: shown unambiguously when they are not printable UTF-8.
      const link = n.type === 'symlink' ? ` -> ${displayName(n.linkTarget!)}` : n.type === 'hardlink' ? ` link to ${displayName(n.linkTarget!)}` : '';
      return `${modeString(n.type, n.mode)} ${n.uid}/${n.gid} ${String(n.size).padStart(10)} ${displayName(`/${n.path}`)}${link}  [${n.owner || 'pacman db'}]`;
    });
    process.stdout.write(`${lines.join('\n')}\n`);
  });
}
