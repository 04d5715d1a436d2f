import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import { displayName } from './raw-name.js';

/**
 * Progress of the long phases (fetch, install, setup, compress, push), drawn on stderr only, never on stdout (which
 * holds a command's result, or its `--json`). A library caller gets nothing unless it asks with withProgress(); the
 * CLI asks with `--progress`. Progress never feeds into any output: it only reads counts the work already has.
 *
 * - `tty`: one line redrawn in place (`\r`, erase line) at most every 100 ms: each running task's counts and
 *   percent, the first one with a bar; a finished phase leaves one line behind.
 * - `plain`: full lines for logs that are not a terminal (CI): a phase's start and finish, and between them at most
 *   one line every 5 s per task.
 * - `auto`: `tty` when the stream is a terminal, else `plain`. `none`: nothing.
 */

export const PROGRESS_MODES = ['auto', 'tty', 'plain', 'none'] as const;
export type ProgressMode = (typeof PROGRESS_MODES)[number];

/** Where progress goes: process.stderr, or anything that takes text and says whether it is a terminal. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  /** Width of the terminal; lines are cut to fit (default 80). */
  columns?: number;
}

export interface ProgressSettings {
  mode: ProgressMode;
  /** Default process.stderr. */
  stream?: ProgressStream;
  /** plain: least time between two lines of one task, in ms (default 5000). */
  plainIntervalMs?: number;
  /** tty: least time between two redraws, in ms (default 100). */
  redrawMs?: number;
  /** Milliseconds from any fixed origin (default performance.now); for tests. */
  now?: () => number;
}

export interface ProgressOptions {
  /** `bytes` (the default), or the noun of what is counted: `packages`, `commands`. */
  unit?: string;
  /**
   * One step among many in a phase (a package download): in plain mode it has no start and finish lines, only the
   * periodic ones when it is slow; on a terminal it leaves no line behind.
   */
  brief?: boolean;
}

interface Task {
  label: string;
  unit: string;
  brief: boolean;
  total: number | undefined;
  done: number;
  startedAt: number;
  /** plain: when its last line was written. */
  lastLine: number;
  /** plain: whether a periodic line was written (a brief task then also gets its finish line). */
  shown: boolean;
}

/** Draws tasks; one per progress scope. */
interface Display {
  readonly stream: ProgressStream;
  now(): number;
  begin(task: Task): void;
  update(task: Task): void;
  end(task: Task): void;
  /** Runs `write` (a note on stderr, a line on stdout) with the bar erased, so that neither runs into the other. */
  around(write: () => void): void;
  /** Erases what is drawn and stops timers; later calls do nothing. */
  close(): void;
}

/** `12.3 MiB`: binary units, one decimal from KiB up. */
export function formatBytes(n: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  if (n < 1024) return `${n} B`;
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** The total as shown: never below what is done (a total may be an estimate, as a layer's tar size is). */
function shownTotal(task: Task): number | undefined {
  return task.total === undefined ? undefined : Math.max(task.total, task.done);
}

/** `3/12 packages`, `1.2 MiB/4.5 MiB`, `7 commands`, `1.2 MiB`. */
function amount(task: Task): string {
  const total = shownTotal(task);
  if (task.unit === 'bytes') return total === undefined ? formatBytes(task.done) : `${formatBytes(task.done)}/${formatBytes(total)}`;
  return total === undefined ? `${task.done} ${task.unit}` : `${task.done}/${total} ${task.unit}`;
}

/** Whole percent, rounded down: 100 only once everything is done. */
function percent(task: Task): number | undefined {
  const total = shownTotal(task);
  if (total === undefined) return undefined;
  return total === 0 ? 100 : Math.floor((100 * task.done) / total);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/**
 * What a finished phase leaves: `fetch: 12/12 packages, done in 0.4s` (bytes also get their rate), or, when it
 * stopped short of its total (the work failed), `fetch: stopped at 3/12 packages after 0.2s`.
 */
function finishLine(task: Task, now: number): string {
  const elapsed = now - task.startedAt;
  if (task.total !== undefined && task.done < task.total) return `${task.label}: stopped at ${amount(task)} after ${seconds(elapsed)}`;
  if (task.unit !== 'bytes') return `${task.label}: ${amount(task)}, done in ${seconds(elapsed)}`;
  const rate = elapsed >= 1000 ? `, ${formatBytes(Math.round((task.done * 1000) / elapsed))}/s` : '';
  return `${task.label}: ${formatBytes(task.done)}, done in ${seconds(elapsed)}${rate}`;
}

class PlainDisplay implements Display {
  private closed = false;

  constructor(
    readonly stream: ProgressStream,
    private readonly intervalMs: number,
    readonly now: () => number,
  ) {}

  private line(text: string): void {
    if (!this.closed) this.stream.write(`${text}\n`);
  }

  begin(task: Task): void {
    task.lastLine = task.startedAt;
    if (task.brief) return;
    const total = shownTotal(task);
    const size = total === undefined ? '' : task.unit === 'bytes' ? `, ${formatBytes(total)}` : `, ${total} ${task.unit}`;
    this.line(`${task.label}: started${size}`);
  }

  update(task: Task): void {
    const now = this.now();
    if (now - task.lastLine < this.intervalMs) return;
    task.lastLine = now;
    task.shown = true;
    const pct = percent(task);
    this.line(`${task.label}: ${amount(task)}${pct === undefined ? '' : ` (${pct}%)`}`);
  }

  end(task: Task): void {
    if (!task.brief || task.shown) this.line(finishLine(task, this.now()));
  }

  around(write: () => void): void {
    write();
  }

  close(): void {
    this.closed = true;
  }
}

const BAR_WIDTH = 20;

class TtyDisplay implements Display {
  private readonly tasks: Task[] = [];
  private drawn = false;
  private lastDraw = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly stream: ProgressStream,
    private readonly redrawMs: number,
    readonly now: () => number,
  ) {}

  /** The line: each running task, the first with a total also as a bar; cut to the terminal's width. */
  render(): string {
    const parts = this.tasks.map((task) => {
      const pct = percent(task);
      return `${task.label}: ${amount(task)}${pct === undefined ? '' : ` ${pct}%`}`;
    });
    const barred = this.tasks.findIndex((t) => t.total !== undefined);
    if (barred >= 0) {
      const filled = Math.floor((percent(this.tasks[barred]!)! * BAR_WIDTH) / 100);
      parts[barred] = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${parts[barred]}`;
    }
    // One character short of the width: a line that fills it would wrap, and `\r` would then redraw the last row only.
    return parts.join(' | ').slice(0, Math.max(1, (this.stream.columns ?? 80) - 1));
  }

  private draw(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.lastDraw = this.now();
    if (this.tasks.length === 0) {
      this.erase();
      return;
    }
    this.stream.write(`\r\x1b[K${this.render()}`);
    this.drawn = true;
  }

  private erase(): void {
    if (this.drawn && !this.closed) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }

  /** Redraws now when the last redraw is old enough, else once the interval has passed (unless one is due already). */
  private schedule(): void {
    if (this.closed) return;
    const wait = this.lastDraw + this.redrawMs - this.now();
    if (wait <= 0) this.draw();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.draw(), wait);
      this.timer.unref();
    }
  }

  begin(task: Task): void {
    this.tasks.push(task);
    this.schedule();
  }

  update(): void {
    this.schedule();
  }

  end(task: Task): void {
    if (this.closed) return;
    const index = this.tasks.indexOf(task);
    if (index >= 0) this.tasks.splice(index, 1);
    if (!task.brief) this.around(() => this.stream.write(`${finishLine(task, this.now())}\n`));
    else if (this.tasks.length === 0) this.draw();
    else this.schedule();
  }

  around(write: () => void): void {
    this.erase();
    write();
    if (this.tasks.length) this.draw(); // draw() does nothing once closed
  }

  close(): void {
    clearTimeout(this.timer);
    this.erase();
    this.closed = true;
  }
}

/** The display for `settings`, or undefined for none. */
export function createDisplay(settings: ProgressMode | ProgressSettings): Display | undefined {
  const s = typeof settings === 'string' ? { mode: settings } : settings;
  const stream = s.stream ?? process.stderr;
  const now = s.now ?? (() => performance.now());
  const mode = s.mode === 'auto' ? (stream.isTTY === true ? 'tty' : 'plain') : s.mode;
  switch (mode) {
    case 'none':
      return undefined;
    case 'plain':
      return new PlainDisplay(stream, s.plainIntervalMs ?? 5000, now);
    case 'tty':
      return new TtyDisplay(stream, s.redrawMs ?? 100, now);
    default:
      throw new Error(`progress mode ${String(mode)}: not one of ${PROGRESS_MODES.join(', ')}`);
  }
}

/** The display of the current scope; the holder is mutable so that the CLI can set the mode once it has parsed its options. */
const scope = new AsyncLocalStorage<{ display: Display | undefined }>();

/**
 * Runs `work` with progress shown as `settings` say (e.g. `'auto'`: on stderr, a bar on a terminal, lines
 * otherwise). Everything `work` starts, directly or not, reports there; other calls are not affected. What is drawn
 * is erased when `work` ends.
 */
export async function withProgress<T>(settings: ProgressMode | ProgressSettings, work: () => Promise<T>): Promise<T> {
  const holder = { display: createDisplay(settings) };
  try {
    return await scope.run(holder, work);
  } finally {
    holder.display?.close();
  }
}

/**
 * Changes the progress of the current withProgress() scope: for the CLI, which runs its command line in a scope and
 * learns `--progress` only once commander has parsed it. Tasks already running keep the display they had.
 */
export function setProgress(settings: ProgressMode | ProgressSettings): void {
  const holder = scope.getStore();
  if (!holder) throw new Error('setProgress outside withProgress');
  holder.display?.close();
  holder.display = createDisplay(settings);
}

/**
 * Writes a line of text (a note; by default where progress goes, else on stderr; the CLI's stdout too) with the
 * current scope's bar erased before and drawn again after, so that neither cuts into the other.
 */
export function progressNote(text: string, stream?: ProgressStream): void {
  const display = scope.getStore()?.display;
  const write = (): unknown => (stream ?? display?.stream ?? process.stderr).write(`${text}\n`);
  if (display) display.around(write);
  else write();
}

/**
 * One task's progress: `new Progress('fetch', { unit: 'packages' }).start(12)`, then advance() as the work goes
 * and stop() when it ends (in a `finally`: stop() is idempotent). Outside a withProgress() scope, or in mode none,
 * every call does nothing and reads no clock.
 */
export class Progress {
  private readonly display = scope.getStore()?.display;
  private readonly task: Task;
  private state: 'new' | 'running' | 'stopped' = 'new';

  /** `label` may hold names from outside (packages, registries): it is shown escaped, so no control character reaches a terminal. */
  constructor(label: string, options: ProgressOptions = {}) {
    this.task = { label: displayName(label), unit: options.unit ?? 'bytes', brief: options.brief ?? false, total: undefined, done: 0, startedAt: 0, lastLine: 0, shown: false };
  }

  /** Whether anything is shown: a caller may skip work done only for progress (a counting stage) when not. */
  get active(): boolean {
    return this.display !== undefined;
  }

  /** `total` when known (bytes, or items of the unit); `already` is done before the start (a resumed download). */
  start(total?: number, already = 0): this {
    if (this.state !== 'new') return this;
    this.state = 'running';
    this.task.total = total;
    this.task.done = already;
    if (this.display) {
      this.task.startedAt = this.display.now();
      this.display.begin(this.task);
    }
    return this;
  }

  advance(amount = 1): void {
    if (this.state !== 'running') return;
    this.task.done += amount;
    this.display?.update(this.task);
  }

  stop(): void {
    if (this.state !== 'running') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopped';
    this.display?.end(this.task);
  }
}
