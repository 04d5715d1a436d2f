import { UserError } from '../errors.js';

/**
 * What setup commands may use (docs/trust-model.md). They come from a spec, or from the recipe of someone else's
 * image: either way they are bounded, and a limit hit stops the whole sandbox.
 */
export interface SandboxLimits {
  /** Wall-clock time of each command, in milliseconds. */
  timeoutMs: number;
  /**
   * Bytes the commands may add to the tree (file sizes, plus 4 KiB for each new entry); also the size limit of
   * each file (RLIMIT_FSIZE) and of the sandbox's memory-backed /tmp and /dev/shm.
   */
  diskBytes: number;
  /** Address space of each process (RLIMIT_AS). */
  memoryBytes: number;
  /** Processes at once (RLIMIT_NPROC of the sandbox's own uid), bubblewrap's own two included. */
  processes: number;
}

const GIB = 1024 ** 3;

export const DEFAULT_LIMITS: SandboxLimits = { timeoutMs: 10 * 60_000, diskBytes: 4 * GIB, memoryBytes: 4 * GIB, processes: 1024 };

/** The CLI option that sets each limit, for messages. */
export const LIMIT_OPTIONS: Record<keyof SandboxLimits, string> = {
  timeoutMs: '--command-timeout',
  diskBytes: '--command-disk',
  memoryBytes: '--command-memory',
  processes: '--command-processes',
};

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: GIB, T: 1024 ** 4 };

/** `20M`, `4G`, `512K`, `1048576` (binary units; an optional `i`/`iB`/`B` suffix is accepted). */
export function parseSize(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  const value = match ? Number(match[1]) * UNITS[match[2]!.toUpperCase()]! : NaN;
  if (!Number.isSafeInteger(Math.floor(value)) || value < 1) throw new UserError(`${option} ${JSON.stringify(text)}: give a size such as 512M or 4G`);
  return Math.floor(value);
}

const DURATIONS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, '': 1000 };

/** `500ms`, `30s`, `10m`, `1h`; a bare number is seconds. */
export function parseDuration(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|)$/.exec(text.trim());
  const value = match ? Number(match[1]) * DURATIONS[match[2]!]! : NaN;
  if (!Number.isFinite(value) || value < 1 || value > 2 ** 31 - 1) throw new UserError(`${option} ${JSON.stringify(text)}: give a duration such as 30s or 10m`);
  return Math.round(value);
}

export function parseCount(text: string, option: string): number {
  const value = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < 3) throw new UserError(`${option} ${JSON.stringify(text)}: give a whole number of at least 3 (bubblewrap itself takes two)`);
  return value;
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

export function formatSize(bytes: number): string {
  for (const [unit, size] of [['TiB', 1024 ** 4], ['GiB', GIB], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} bytes`;
}

/** One limit as the user would write it back: `the time limit (10m, --command-timeout)`. */
export function describeLimit(limits: SandboxLimits, which: keyof SandboxLimits): string {
  const value = which === 'timeoutMs' ? formatDuration(limits.timeoutMs) : which === 'processes' ? String(limits.processes) : formatSize(limits[which]);
  return `${value}, ${LIMIT_OPTIONS[which]}`;
}

/** The limits from the CLI's options, defaults for those not given. */
export function limitsFromOptions(opts: { commandTimeout?: string; commandDisk?: string; commandMemory?: string; commandProcesses?: string }): SandboxLimits {
  return {
    timeoutMs: opts.commandTimeout !== undefined ? parseDuration(opts.commandTimeout, LIMIT_OPTIONS.timeoutMs) : DEFAULT_LIMITS.timeoutMs,
    diskBytes: opts.commandDisk !== undefined ? parseSize(opts.commandDisk, LIMIT_OPTIONS.diskBytes) : DEFAULT_LIMITS.diskBytes,
    memoryBytes: opts.commandMemory !== undefined ? parseSize(opts.commandMemory, LIMIT_OPTIONS.memoryBytes) : DEFAULT_LIMITS.memoryBytes,
    processes: opts.commandProcesses !== undefined ? parseCount(opts.commandProcesses, LIMIT_OPTIONS.processes) : DEFAULT_LIMITS.processes,
  };
}

/** All limits on one line, for the notice before commands run. */
export function summarizeLimits(limits: SandboxLimits): string {
  return `${formatDuration(limits.timeoutMs)} per command, ${formatSize(limits.diskBytes)} written, ${formatSize(limits.memoryBytes)} address space per process, ${limits.processes} processes`;
}
