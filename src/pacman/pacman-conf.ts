import { posix } from 'node:path';
import { UserError } from '../errors.js';
import {
  applySigLevelTokens,
  BUILTIN_SIGLEVEL_FLAGS,
  emptySigLevelSetting,
  mergeSigLevel,
  sigLevelFromFlags,
  type SigLevel,
  type SigLevelSetting,
} from './siglevel.js';
import { byteOrder } from '../util/order.js';
import { displayName } from '../util/raw-name.js';
import { ownEntry } from '../util/lookup.js';
import { fnmatchRegex } from '../util/fnmatch.js';

/**
 * pacman.conf as pacman 6.0 reads it: an INI file where `#` starts a comment only at the start of a line, keys
 * and values are trimmed around the first `=`, list values split on spaces, `Include = glob` splices files in
 * (sharing the current section, so an included file may switch section for the rest of the includer), and
 * repositories keep file order.
 */

export type RepoUsage = 'Sync' | 'Search' | 'Install' | 'Upgrade';

export interface PacmanRepo {
  name: string;
  /** With `$arch` (first Architecture) and `$repo` expanded. */
  servers: string[];
  /** Resolved against [options]. */
  sigLevel: SigLevel;
  /** All four when the section has no Usage line. */
  usage: RepoUsage[];
}

export interface PacmanOptions {
  rootDir?: string;
  dbPath?: string;
  gpgDir?: string;
  logFile?: string;
  cacheDirs: string[];
  hookDirs: string[];
  holdPkg: string[];
  ignorePkg: string[];
  ignoreGroup: string[];
  noUpgrade: string[];
  noExtract: string[];
  /** `auto` already replaced by the machine architecture. */
  architectures: string[];
  xferCommand?: string;
  cleanMethod: string[];
  parallelDownloads: number;
  sigLevel: SigLevel;
  localFileSigLevel: SigLevel;
  remoteFileSigLevel: SigLevel;
  useSyslog: boolean;
  color: boolean;
  noProgressBar: boolean;
  checkSpace: boolean;
  verbosePkgLists: boolean;
  iLoveCandy: boolean;
  disableDownloadTimeout: boolean;
}

export interface PacmanConf {
  options: PacmanOptions;
  repos: PacmanRepo[];
  /** Unrecognised directives, which pacman warns about and ignores. */
  warnings: string[];
}

export interface PacmanConfSources {
  /** Reads a config file; a throw is reported as "could not be read". */
  readFile(path: string): string | Buffer | Promise<string | Buffer>;
  /** Lists a directory's entry names; needed only for Include patterns with wildcards. */
  listDirectory?(path: string): string[] | Promise<string[]>;
  /** What `Architecture = auto` means (uname -m); defaults to this machine's. */
  machine?: string;
}

const MAX_INCLUDE_DEPTH = 10;
const ALL_USAGE: RepoUsage[] = ['Sync', 'Search', 'Install', 'Upgrade'];

export function machineArchitecture(): string {
  const byNodeArch: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', ia32: 'i686', arm: 'armv7h', riscv64: 'riscv64' };
  return byNodeArch[process.arch] ?? process.arch;
}

interface RepoState {
  name: string;
  servers: string[];
  sigLevel: SigLevelSetting;
  usage: Set<RepoUsage>;
}

interface ParseState {
  section: string | undefined;
  repo: RepoState | undefined;
  depth: number;
}

/** Space-separated list, as pacman's strtok(" ") (tabs are not separators). */
const words = (value: string): string[] => value.split(' ').filter((w) => w !== '');

const GLOB_CHARS = /[*?[]/;

/** Expands an Include pattern like glob(3) with GLOB_NOCHECK: no match leaves the pattern itself. */
async function expandInclude(pattern: string, sources: PacmanConfSources, where: string): Promise<string[]> {
  if (!GLOB_CHARS.test(pattern)) return [pattern];
  if (sources.listDirectory === undefined) throw new UserError(`${where}: Include pattern ${JSON.stringify(pattern)} needs directory listing, which is not available here`);
  const absolute = pattern.startsWith('/');
  let candidates = [absolute ? '/' : ''];
  for (const segment of pattern.split('/').filter((s) => s !== '')) {
    const next: string[] = [];
    for (const base of candidates) {
      if (!GLOB_CHARS.test(segment)) {
        next.push(posix.join(base, segment));
        continue;
      }
      let names: string[];
      try {
        names = await sources.listDirectory(base === '' ? '.' : base);
      } catch {
        continue;
      }
      const matcher = fnmatchRegex(segment, { pathname: true });
      // Like glob(3), wildcards do not match a leading dot.
      for (const name of names) if (matcher.test(name) && !(name.startsWith('.') && !segment.startsWith('.'))) next.push(posix.join(base, name));
    }
    candidates = next;
  }
  const sorted = candidates.sort(byteOrder);
  return sorted.length > 0 ? sorted : [pattern];
}

export async function parsePacmanConf(path: string, sources: PacmanConfSources): Promise<PacmanConf> {
  const machine = sources.machine ?? machineArchitecture();
  const warnings: string[] = [];
  const repos: RepoState[] = [];
  const options: Omit<PacmanOptions, 'sigLevel' | 'localFileSigLevel' | 'remoteFileSigLevel'> = {
    cacheDirs: [],
    hookDirs: [],
    holdPkg: [],
    ignorePkg: [],
    ignoreGroup: [],
    noUpgrade: [],
    noExtract: [],
    architectures: [],
    cleanMethod: [],
    parallelDownloads: 1,
    useSyslog: false,
    color: false,
    noProgressBar: false,
    checkSpace: false,
    verbosePkgLists: false,
    iLoveCandy: false,
    disableDownloadTimeout: false,
  };
  let sigLevel: SigLevelSetting = { flags: BUILTIN_SIGLEVEL_FLAGS, mask: 0 };
  let localFileSigLevel = emptySigLevelSetting();
  let remoteFileSigLevel = emptySigLevelSetting();

  const FLAGS: Record<string, keyof PacmanOptions> = {
    UseSyslog: 'useSyslog',
    Color: 'color',
    NoProgressBar: 'noProgressBar',
    CheckSpace: 'checkSpace',
    VerbosePkgLists: 'verbosePkgLists',
    ILoveCandy: 'iLoveCandy',
    DisableDownloadTimeout: 'disableDownloadTimeout',
  };
  const LISTS: Record<string, 'holdPkg' | 'ignorePkg' | 'ignoreGroup' | 'noUpgrade' | 'noExtract' | 'cacheDirs' | 'hookDirs'> = {
    HoldPkg: 'holdPkg',
    IgnorePkg: 'ignorePkg',
    IgnoreGroup: 'ignoreGroup',
    NoUpgrade: 'noUpgrade',
    NoExtract: 'noExtract',
    CacheDir: 'cacheDirs',
    HookDir: 'hookDirs',
  };
  // The first value wins for these, as in pacman (which reserves them for command-line overrides).
  const FIRST_WINS: Record<string, 'rootDir' | 'dbPath' | 'gpgDir' | 'logFile'> = { RootDir: 'rootDir', DBPath: 'dbPath', GPGDir: 'gpgDir', LogFile: 'logFile' };

  function optionDirective(key: string, value: string | undefined, where: string): void {
    if (value === undefined) {
      const flag = ownEntry(FLAGS, key);
      if (flag === undefined) warnings.push(`${where}: directive ${JSON.stringify(key)} in section "options" not recognized`);
      else (options as Record<string, unknown>)[flag] = true;
      return;
    }
    const list = ownEntry(LISTS, key);
    if (list !== undefined) {
      options[list].push(...words(value));
      return;
    }
    const firstWins = ownEntry(FIRST_WINS, key);
    if (firstWins !== undefined) {
      options[firstWins] ??= value;
      return;
    }
    switch (key) {
      case 'Architecture':
        for (const arch of words(value)) options.architectures.push(arch === 'auto' ? machine : arch);
        return;
      case 'XferCommand':
        options.xferCommand = value;
        return;
      case 'CleanMethod':
        for (const method of words(value)) {
          if (method !== 'KeepInstalled' && method !== 'KeepCurrent') throw new UserError(`${where}: invalid CleanMethod ${JSON.stringify(method)}`);
          options.cleanMethod.push(method);
        }
        return;
      case 'SigLevel':
        sigLevel = applySigLevelTokens(sigLevel, words(value), where);
        return;
      case 'LocalFileSigLevel':
        localFileSigLevel = applySigLevelTokens(localFileSigLevel, words(value), where);
        return;
      case 'RemoteFileSigLevel':
        remoteFileSigLevel = applySigLevelTokens(remoteFileSigLevel, words(value), where);
        return;
      case 'ParallelDownloads': {
        if (!/^[+-]?[0-9]+$/.test(value)) throw new UserError(`${where}: invalid ParallelDownloads ${JSON.stringify(value)}`);
        const number = Number(value);
        if (number < 1) throw new UserError(`${where}: ParallelDownloads must be positive, not ${value}`);
        if (number > 2 ** 31 - 1) throw new UserError(`${where}: ParallelDownloads ${value} is too large`);
        options.parallelDownloads = number;
        return;
      }
      default:
        warnings.push(`${where}: directive ${JSON.stringify(key)} in section "options" not recognized`);
    }
  }

  function repoDirective(repo: RepoState, key: string, value: string | undefined, where: string): void {
    const known = key === 'Server' || key === 'SigLevel' || key === 'Usage';
    if (!known) {
      warnings.push(`${where}: directive ${JSON.stringify(key)} in section ${JSON.stringify(repo.name)} not recognized`);
      return;
    }
    if (value === undefined) throw new UserError(`${where}: directive ${key} needs a value`);
    if (key === 'Server') repo.servers.push(value);
    else if (key === 'SigLevel') repo.sigLevel = applySigLevelTokens(repo.sigLevel, words(value), where);
    else {
      for (const usage of words(value)) {
        if (usage === 'All') ALL_USAGE.forEach((u) => repo.usage.add(u));
        else if ((ALL_USAGE as string[]).includes(usage)) repo.usage.add(usage as RepoUsage);
        else throw new UserError(`${where}: Usage option ${JSON.stringify(usage)} not recognized`);
      }
    }
  }

  async function parseFile(file: string, state: ParseState): Promise<void> {
    let raw: string | Buffer;
    try {
      raw = await sources.readFile(file);
    } catch (err) {
      throw new UserError(`config file ${displayName(file)} could not be read: ${displayName((err as Error).message)}`);
    }
    const lines = (typeof raw === 'string' ? raw : raw.toString('utf8')).split('\n');
    for (let index = 0; index < lines.length; index++) {
      const line = lines[index]!.trim();
      const where = `config file ${displayName(file)}, line ${index + 1}`;
      if (line === '' || line.startsWith('#')) continue;
      if (line.startsWith('[') && line.endsWith(']') && line.length >= 2) {
        const name = line.slice(1, -1);
        if (name === '') throw new UserError(`${where}: empty section name`);
        state.section = name;
        if (name === 'options') state.repo = undefined;
        else {
          state.repo = { name, servers: [], sigLevel: emptySigLevelSetting(), usage: new Set() };
          repos.push(state.repo);
        }
        continue;
      }
      const eq = line.indexOf('=');
      const key = (eq === -1 ? line : line.slice(0, eq)).trim();
      const value = eq === -1 ? undefined : line.slice(eq + 1).trim();
      if (key === 'Include') {
        if (value === undefined) throw new UserError(`${where}: directive Include needs a value`);
        if (state.depth >= MAX_INCLUDE_DEPTH) throw new UserError(`${where}: Include nested deeper than ${MAX_INCLUDE_DEPTH} levels`);
        state.depth++;
        for (const included of await expandInclude(value, sources, where)) await parseFile(included, state);
        state.depth--;
        continue;
      }
      if (state.section === undefined) throw new UserError(`${where}: all directives must belong to a section`);
      if (state.repo === undefined) optionDirective(key, value, where);
      else repoDirective(state.repo, key, value, where);
    }
  }

  await parseFile(path, { section: undefined, repo: undefined, depth: 0 });

  // pacman registers the first section of a name; registering a second one fails and it carries on without it.
  const seen = new Set<string>();
  const uniqueRepos = repos.filter((repo) => {
    if (seen.has(repo.name)) {
      warnings.push(`${path}: repository [${repo.name}] is defined more than once; the later definition is ignored`);
      return false;
    }
    seen.add(repo.name);
    return true;
  });
  const resolvedRepos = uniqueRepos.map((repo): PacmanRepo => {
    const servers = repo.servers.map((server) => {
      if (server.includes('$arch') && options.architectures.length === 0) {
        throw new UserError(`${path}: mirror ${JSON.stringify(server)} uses $arch, but no Architecture is defined`);
      }
      const withArch = options.architectures.length > 0 ? server.split('$arch').join(options.architectures[0]!) : server;
      return withArch.split('$repo').join(repo.name);
    });
    return {
      name: repo.name,
      servers,
      sigLevel: sigLevelFromFlags(mergeSigLevel(sigLevel.flags, repo.sigLevel)),
      usage: repo.usage.size === 0 ? [...ALL_USAGE] : ALL_USAGE.filter((u) => repo.usage.has(u)),
    };
  });
  return {
    options: {
      ...options,
      sigLevel: sigLevelFromFlags(sigLevel.flags),
      localFileSigLevel: sigLevelFromFlags(mergeSigLevel(sigLevel.flags, localFileSigLevel)),
      remoteFileSigLevel: sigLevelFromFlags(mergeSigLevel(sigLevel.flags, remoteFileSigLevel)),
    },
    repos: resolvedRepos,
    warnings,
  };
}
