/** Set by the CLI: a library caller's process never gets a progress line it did not ask for. */
let progressWanted = false;

/** Lets Progress draw on stderr (still only when it is a terminal and REPRO_OCI_PROGRESS is not 0). */
export function enableProgressDisplay(): void {
  progressWanted = true;
}

/**
 * A one-line download progress display on stderr when it is a terminal; silent otherwise (CI logs, pipes).
 * Redraws at most every 200 ms.
 */
export class Progress {
  private total: number | undefined;
  private done = 0;
  private lastDraw = 0;
  private readonly enabled = progressWanted && process.stderr.isTTY === true && process.env.REPRO_OCI_PROGRESS !== '0';

  constructor(private readonly label: string) {}

  start(total: number | undefined, already: number): void {
    this.total = total;
    this.done = already;
  }

  advance(bytes: number): void {
    this.done += bytes;
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.lastDraw < 200) return;
    this.lastDraw = now;
    const mib = (n: number): string => (n / 1048576).toFixed(1);
    const pct = this.total ? ` ${Math.floor((100 * this.done) / this.total)}%` : '';
    process.stderr.write(`\r\x1b[K${this.label}: ${mib(this.done)}${this.total ? `/${mib(this.total)}` : ''} MiB${pct}`);
  }

  stop(): void {
    if (this.enabled && this.lastDraw > 0) process.stderr.write('\r\x1b[K');
  }
}
