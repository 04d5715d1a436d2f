import { UserError } from '../errors.js';
import { PathPatterns } from '../install/noextract.js';
import { byteOrder } from '../util/order.js';
import { decodeName, displayName, encodeName } from '../util/raw-name.js';

/**
 * ALPM hooks (alpm-hooks(5)) as libalpm 6.0–7.0 reads, matches, orders and runs them (lib/libalpm/hook.c), as pure
 * code: the parse of one hook file with pacman's messages and line numbers, the choice of hooks across hook
 * directories, trigger matching against a transaction, and the order they run in. Running them is
 * setup/scriptlets.ts's business.
 */

export type HookOperation = 'Install' | 'Upgrade' | 'Remove';
export type HookWhen = 'PreTransaction' | 'PostTransaction';

export interface HookTrigger {
  operations: HookOperation[];
  /** `File` is pacman's deprecated name for `Path`. */
  type?: 'Path' | 'Package';
  targets: string[];
}

export interface AlpmHook {
  /** The file name, `.hook` included (pacman names and sorts hooks by it). */
  name: string;
  description?: string;
  triggers: HookTrigger[];
  depends: string[];
  /** Exec split into words as pacman splits it (wordsplit); may be empty (pacman then fails to run it). */
  exec?: string[];
  when?: HookWhen;
  abortOnFail: boolean;
  needsTargets: boolean;
}

export interface ParsedHook {
  hook: AlpmHook;
  /** pacman's warnings (overwritten options, AbortOnFail on a PostTransaction hook). */
  warnings: string[];
}

/** A hook file pacman refuses, with pacman's message (`hook NAME line N: invalid value X`, `Missing When …`). */
export class HookError extends UserError {}

export const HOOK_SUFFIX = '.hook';
/** fgets buffer sizes: pacman reads hook files in lines of at most PATH_MAX - 1 bytes, scriptlets in 1023. */
const INI_LINE = 4096;

/** isspace() in the C locale. */
const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';

function strtrim(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isSpace(s[start])) start++;
  while (end > start && isSpace(s[end - 1])) end--;
  return s.slice(start, end);
}

/** The pieces fgets(buf, size) returns, one after the other: up to a newline (kept) or size - 1 bytes. */
export function fgetsChunks(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < bytes.length) {
    const newline = bytes.indexOf(0x0a, at);
    const end = Math.min(newline === -1 ? bytes.length : newline + 1, at + size - 1);
    out.push(bytes.subarray(at, end));
    at = end;
  }
  return out;
}

/**
 * pacman's wordsplit (src/common/util-common.c): words split at whitespace; single or double quotes group (and
 * are removed), a backslash escapes only a quote character. Undefined for an unbalanced quote (pacman: EINVAL).
 */
export function wordsplit(text: string): string[] | undefined {
  const words: string[] = [];
  let i = 0;
  while (isSpace(text[i])) i++;
  while (i < text.length) {
    let word = '';
    while (i < text.length && !isSpace(text[i])) {
      const c = text[i]!;
      if (c === "'" || c === '"') {
        i++;
        while (i < text.length && text[i] !== c) {
          if (text[i] === '\\' && text[i + 1] === c) i++;
          word += text[i++];
        }
        if (i >= text.length) return undefined;
        i++;
      } else {
        if (c === '\\' && (text[i + 1] === "'" || text[i + 1] === '"')) i++;
        word += text[i++];
      }
    }
    words.push(word);
    // pacman steps over exactly one separator and then any whitespace after it.
    if (i >= text.length) break;
    i++;
    while (isSpace(text[i])) i++;
  }
  return words;
}

/**
 * Parses one hook file as libalpm does (parse_ini + _alpm_hook_parse_cb + _alpm_hook_validate): the first error
 * stops the parse and is thrown as a HookError with pacman's wording; validation errors are all reported. A file
 * without any [Trigger] is valid and never runs: pacman's way to mask a hook of the same name (a link to
 * /dev/null reads as such a file).
 */
export function parseHook(content: Buffer, name: string, file = name): ParsedHook {
  const hook: AlpmHook = { name, triggers: [], depends: [], abortOnFail: false, needsTargets: false };
  const warnings: string[] = [];
  const fail = (line: number, what: string): never => {
    throw new HookError(`hook ${displayName(file)} line ${line}: ${what}`);
  };
  const overwrite = (line: number, option: string): void => {
    warnings.push(`hook ${displayName(file)} line ${line}: overwriting previous definition of ${option}`);
  };
  let section: string | undefined;
  let lineNumber = 0;
  for (const chunk of fgetsChunks(content, INI_LINE)) {
    lineNumber++;
    const line = strtrim(decodeName(chunk));
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('[') && line.endsWith(']') && line.length > 1) {
      section = line.slice(1, -1);
      if (section === 'Trigger') hook.triggers.push({ operations: [], targets: [] });
      else if (section !== 'Action') fail(lineNumber, `invalid section ${section}`);
      continue;
    }
    const eq = line.indexOf('=');
    const key = strtrim(eq === -1 ? line : line.slice(0, eq));
    const value = eq === -1 ? undefined : strtrim(line.slice(eq + 1));
    if (section === undefined) fail(lineNumber, `invalid option ${key}`);
    // pacman dereferences the value of these keys unchecked (it would crash): refused here instead.
    const needValue = (): string => value ?? fail(lineNumber, `invalid value (null) for ${key}`);
    if (section === 'Trigger') {
      const trigger = hook.triggers[hook.triggers.length - 1]!;
      if (key === 'Operation') {
        const op = needValue();
        if (op !== 'Install' && op !== 'Upgrade' && op !== 'Remove') fail(lineNumber, `invalid value ${op}`);
        if (!trigger.operations.includes(op as HookOperation)) trigger.operations.push(op as HookOperation);
      } else if (key === 'Type') {
        const type = needValue();
        if (trigger.type !== undefined) overwrite(lineNumber, 'Type');
        if (type === 'Package') trigger.type = 'Package';
        else if (type === 'Path' || type === 'File') trigger.type = 'Path';
        else fail(lineNumber, `invalid value ${type}`);
      } else if (key === 'Target') trigger.targets.push(needValue());
      else fail(lineNumber, `invalid option ${key}`);
    } else if (key === 'When') {
      const when = needValue();
      if (hook.when !== undefined) overwrite(lineNumber, 'When');
      if (when !== 'PreTransaction' && when !== 'PostTransaction') fail(lineNumber, `invalid value ${when}`);
      hook.when = when as HookWhen;
    } else if (key === 'Description') {
      if (hook.description !== undefined) overwrite(lineNumber, 'Description');
      hook.description = needValue();
    } else if (key === 'Depends') hook.depends.push(needValue());
    else if (key === 'AbortOnFail') hook.abortOnFail = true;
    else if (key === 'NeedsTargets') hook.needsTargets = true;
    else if (key === 'Exec') {
      if (hook.exec !== undefined) overwrite(lineNumber, 'Exec');
      const words = value === undefined ? undefined : wordsplit(value);
      if (words === undefined) fail(lineNumber, `invalid value ${value ?? '(null)'}`);
      hook.exec = words;
    } else fail(lineNumber, `invalid option ${key}`);
  }
  validate(hook, displayName(file), warnings);
  return { hook, warnings };
}

function validate(hook: AlpmHook, file: string, warnings: string[]): void {
  if (hook.triggers.length === 0) return; // a triggerless hook masks, and is never run
  const errors: string[] = [];
  for (const trigger of hook.triggers) {
    if (trigger.targets.length === 0) errors.push(`Missing trigger targets in hook: ${file}`);
    if (trigger.type === undefined) errors.push(`Missing trigger type in hook: ${file}`);
    if (trigger.operations.length === 0) errors.push(`Missing trigger operation in hook: ${file}`);
  }
  if (hook.exec === undefined) errors.push(`Missing Exec option in hook: ${file}`);
  if (hook.when === undefined) errors.push(`Missing When option in hook: ${file}`);
  else if (hook.when !== 'PreTransaction' && hook.abortOnFail) warnings.push(`AbortOnFail set for PostTransaction hook: ${file}`);
  if (errors.length) throw new HookError(errors.join('; '));
}

/**
 * pacman's hook order (_alpm_hook_cmp): by file name without the `.hook` suffix, byte by byte, a name that is a
 * prefix of another first — so `a.hook` runs before `a-b.hook`, although `.` sorts after `-`.
 */
export function compareHookNames(a: string, b: string): number {
  const x = encodeName(a.slice(0, a.length - HOOK_SUFFIX.length));
  const y = encodeName(b.slice(0, b.length - HOOK_SUFFIX.length));
  const common = Buffer.compare(x.subarray(0, Math.min(x.length, y.length)), y.subarray(0, Math.min(x.length, y.length)));
  if (common !== 0) return common;
  return x.length === y.length ? 0 : x.length < y.length ? -1 : 1;
}

/** One entry of a hook directory as stat(2) (which follows symlinks) sees it; `file` names it in messages. */
export type HookDirEntry = ({ kind: 'file'; content: Buffer } | { kind: 'dir' } | { kind: 'error'; message: string }) & { file?: string };

export interface HookSelection {
  /** Usable hooks in pacman's run order. */
  hooks: ParsedHook[];
  /** Files pacman could not stat or parse: they make a PreTransaction run fail (and are skipped PostTransaction). */
  errors: string[];
}

/**
 * The hooks pacman runs from its hook directories (in pacman's order: the system directory, then each HookDir):
 * the last directory is read first and a name already read is skipped, so a later directory overrides an earlier
 * one — but only with a hook that parses (pacman adds a name once its file is parsed). Names must end in `.hook`;
 * directories are skipped. The result is sorted with compareHookNames.
 */
export function selectHooks(dirs: ReadonlyArray<ReadonlyMap<string, HookDirEntry>>): HookSelection {
  const chosen = new Map<string, ParsedHook>();
  const errors: string[] = [];
  for (const dir of [...dirs].reverse()) {
    // readdir order does not matter: within one directory names are unique.
    for (const [name, entry] of dir) {
      if (name.length < HOOK_SUFFIX.length || !name.endsWith(HOOK_SUFFIX) || chosen.has(name)) continue;
      if (entry.kind === 'error') {
        errors.push(`could not stat file ${displayName(entry.file ?? name)}: ${entry.message}`);
        continue;
      }
      if (entry.kind === 'dir') continue;
      try {
        chosen.set(name, parseHook(entry.content, name, entry.file));
      } catch (err) {
        if (!(err instanceof HookError)) throw err;
        errors.push(err.message);
      }
    }
  }
  return { hooks: [...chosen.values()].sort((a, b) => compareHookNames(a.hook.name, b.hook.name)), errors };
}

/** What a transaction does, as hook triggers see it. */
export interface HookTransaction {
  /** Packages installed or upgraded, in transaction order, each with its file list (directories end in `/`). */
  add: { name: string; files: readonly string[]; oldFiles?: readonly string[] }[];
  remove: { name: string; files: readonly string[] }[];
  /** pacman.conf NoExtract: files it matches do not count as installed. */
  noExtract: readonly string[];
}

interface Matched {
  triggered: boolean;
  matches: string[];
}

/** The files a transaction extracts (NoExtract left out), worked out once per transaction: every Path trigger of every hook looks at them. */
const extractedFiles = new WeakMap<HookTransaction, string[]>();

function extracted(trans: HookTransaction): string[] {
  let files = extractedFiles.get(trans);
  if (!files) {
    const noExtract = new PathPatterns(trans.noExtract);
    files = trans.add.flatMap((pkg) => pkg.files.filter((file) => !noExtract.matches(file)));
    extractedFiles.set(trans, files);
  }
  return files;
}

/** Path triggers' matches, by trigger: both runs of a transaction read the same hooks, each of them a walk of every file. */
const pathMatches = new WeakMap<HookTransaction, Map<string, Matched>>();

function matchPath(trigger: HookTrigger, targets: PathPatterns, trans: HookTransaction): Matched {
  let known = pathMatches.get(trans);
  if (!known) pathMatches.set(trans, (known = new Map()));
  const key = JSON.stringify([trigger.operations, trigger.targets]);
  let matched = known.get(key);
  if (!matched) known.set(key, (matched = matchPathNow(trigger, targets, trans)));
  return matched;
}

function matchPathNow(trigger: HookTrigger, targets: PathPatterns, trans: HookTransaction): Matched {
  const install: string[] = [];
  const removed: string[] = [];
  for (const file of extracted(trans)) if (targets.matches(file)) install.push(file);
  for (const pkg of trans.add) for (const file of pkg.oldFiles ?? []) if (targets.matches(file)) removed.push(file);
  for (const pkg of trans.remove) for (const file of pkg.files) if (targets.matches(file)) removed.push(file);
  // A path both installed and removed is an upgrade of it; it then counts as neither of the others.
  const installSet = new Set(install);
  const removedSet = new Set(removed);
  const upgrade = [...installSet].filter((p) => removedSet.has(p)).sort(byteOrder);
  const lists: Record<HookOperation, string[]> = {
    Install: install.filter((p) => !removedSet.has(p)),
    Upgrade: upgrade,
    Remove: removed.filter((p) => !installSet.has(p)),
  };
  const ops = trigger.operations.filter((op) => lists[op].length > 0);
  return { triggered: ops.length > 0, matches: ops.flatMap((op) => lists[op]) };
}

function matchPackage(trigger: HookTrigger, targets: PathPatterns, trans: HookTransaction): Matched {
  const matches: string[] = [];
  const ops = new Set(trigger.operations);
  for (const pkg of trans.add) {
    if (!targets.matches(pkg.name)) continue;
    if (pkg.oldFiles ? ops.has('Upgrade') : ops.has('Install')) matches.push(pkg.name);
  }
  if (ops.has('Remove')) {
    const added = new Set(trans.add.map((p) => p.name));
    for (const pkg of trans.remove) if (targets.matches(pkg.name) && !added.has(pkg.name)) matches.push(pkg.name);
  }
  return { triggered: matches.length > 0, matches };
}

/**
 * Whether a hook is triggered by the transaction (any of its triggers matches) and, for NeedsTargets, the
 * targets fed to it on stdin: every trigger's matches (file paths or package names) byte-sorted and unique.
 * Targets use pacman's pattern rules: fnmatch without flags, the last matching pattern decides, `!` negates.
 */
export function hookTargets(hook: AlpmHook, trans: HookTransaction): { triggered: boolean; targets: string[] } {
  let triggered = false;
  const matches: string[] = [];
  for (const trigger of hook.triggers) {
    const targets = new PathPatterns(trigger.targets);
    const result = trigger.type === 'Package' ? matchPackage(trigger, targets, trans) : matchPath(trigger, targets, trans);
    if (!result.triggered) continue;
    triggered = true;
    if (!hook.needsTargets) break;
    matches.push(...result.matches);
  }
  return { triggered, targets: hook.needsTargets ? [...new Set(matches)].sort(byteOrder) : [] };
}

/** The hooks of a selection that run at `when` for the transaction, in order, with their stdin targets. */
export function triggeredHooks(selection: HookSelection, when: HookWhen, trans: HookTransaction): { hook: AlpmHook; targets: string[] }[] {
  const out: { hook: AlpmHook; targets: string[] }[] = [];
  for (const { hook } of selection.hooks) {
    if (hook.when !== when) continue;
    const { triggered, targets } = hookTargets(hook, trans);
    if (triggered) out.push({ hook, targets });
  }
  return out;
}

/** What pacman writes to a NeedsTargets hook's stdin: one target per line. */
export function targetsInput(targets: readonly string[]): Buffer {
  return Buffer.concat(targets.map((t) => encodeName(`${t}\n`)));
}
