import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/**
 * Starting a process costs the starter a fork of itself, and a fork's cost grows with the starter's memory: a
 * build holding a tree's model (hundreds of MB) pays ~10 ms per process, on its one thread, while a small process
 * pays ~2 ms, on its own. A transaction starts a sandbox for every scriptlet and hook (tens to hundreds, twice),
 * so it starts them through a Spawner: a small node process that starts each one and reports how it ended. It
 * exits when its input closes (this process ending, however it ends), and the sandboxes' bubblewrap dies with it
 * (--die-with-parent).
 */

/** A process being run: how it ends, and a way to kill it. */
export interface RunningProcess {
  ended: Promise<{ code: number | null; signal: string | null }>;
  /** SIGKILL (nothing else is needed of it). */
  kill(): void;
}

export interface ProcessRequest {
  argv: string[];
  uid?: number;
  gid?: number;
  stdin?: Buffer;
  /** Output as it comes, in chunks. */
  onStdout: (chunk: Buffer) => void;
  onStderr: (chunk: Buffer) => void;
}

/** Starts a process from this one (what a Spawner does from its own). */
export function startHere(request: ProcessRequest): RunningProcess {
  const [file, ...args] = request.argv;
  const child = spawn(file!, args, { stdio: [request.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], ...(request.uid !== undefined ? { uid: request.uid, gid: request.gid } : {}) });
  return watchChild(child, request);
}

function watchChild(child: ChildProcess, request: Pick<ProcessRequest, 'stdin' | 'onStdout' | 'onStderr'>): RunningProcess {
  if (request.stdin && child.stdin) {
    child.stdin.on('error', () => {}); // a command that does not read its input closes the pipe early
    child.stdin.end(request.stdin);
  }
  child.stdout!.on('data', request.onStdout);
  child.stderr!.on('data', request.onStderr);
  const ended = new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  return { ended, kill: () => child.kill('SIGKILL') };
}

/** What the spawner process says: a process ended, or could not start (its errno code). */
type Report = { id: number; out?: string; err?: string } | { id: number; code: number | null; signal: string | null } | { id: number; error: string; message: string };

export class Spawner {
  private next = 0;
  private readonly runs = new Map<number, { request: ProcessRequest; resolve: (r: { code: number | null; signal: string | null }) => void; reject: (e: Error) => void }>();
  private failure: Error | undefined;

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => this.report(JSON.parse(line) as Report));
    child.on('error', (err) => this.fail(err));
    child.on('close', () => this.fail(new Error('the process spawner exited')));
  }

  static start(): Spawner {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, REPRO_OCI_SPAWNER: '1' } });
    return new Spawner(child);
  }

  run(request: ProcessRequest): RunningProcess {
    const id = this.next++;
    const ended = new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.runs.set(id, { request, resolve, reject });
      this.send({ id, argv: request.argv, uid: request.uid, gid: request.gid, stdin: request.stdin?.toString('base64') });
    });
    return { ended, kill: () => this.send({ id, kill: true }) };
  }

  close(): void {
    this.child.stdin!.end();
  }

  private send(message: object): void {
    if (!this.failure) this.child.stdin!.write(`${JSON.stringify(message)}\n`);
  }

  private report(report: Report): void {
    const run = this.runs.get(report.id);
    if (!run) return;
    if ('out' in report && report.out !== undefined) run.request.onStdout(Buffer.from(report.out, 'base64'));
    else if ('err' in report && report.err !== undefined) run.request.onStderr(Buffer.from(report.err, 'base64'));
    else if ('error' in report) {
      this.runs.delete(report.id);
      run.reject(Object.assign(new Error(report.message), { code: report.error }));
    } else if ('code' in report) {
      this.runs.delete(report.id);
      run.resolve({ code: report.code, signal: report.signal });
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const run of this.runs.values()) run.reject(this.failure);
    this.runs.clear();
  }
}

/** The spawner process: one request per line on stdin, reports as lines on stdout. */
function serve(): void {
  const running = new Map<number, RunningProcess>();
  const say = (report: Report): boolean => process.stdout.write(`${JSON.stringify(report)}\n`);
  createInterface({ input: process.stdin })
    .on('line', (line) => {
      const request = JSON.parse(line) as { id: number; argv?: string[]; uid?: number; gid?: number; stdin?: string; kill?: boolean };
      if (request.kill) return running.get(request.id)?.kill();
      let started: RunningProcess;
      try {
        started = startHere({
          argv: request.argv!,
          ...(request.uid !== undefined ? { uid: request.uid, gid: request.gid! } : {}),
          ...(request.stdin !== undefined ? { stdin: Buffer.from(request.stdin, 'base64') } : {}),
          onStdout: (chunk) => say({ id: request.id, out: chunk.toString('base64') }),
          onStderr: (chunk) => say({ id: request.id, err: chunk.toString('base64') }),
        });
      } catch (err) {
        say({ id: request.id, error: (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN', message: (err as Error).message });
        return;
      }
      running.set(request.id, started);
      started.ended.then(
        (end) => say({ id: request.id, ...end }),
        (err: NodeJS.ErrnoException) => say({ id: request.id, error: err.code ?? 'EUNKNOWN', message: err.message }),
      ).finally(() => running.delete(request.id));
    })
    // This process's input closed: whoever started it is gone or done; what it started dies with it.
    .on('close', () => {
      for (const run of running.values()) run.kill();
      process.exit(0);
    });
}

if (process.env.REPRO_OCI_SPAWNER === '1' && process.argv[1] === fileURLToPath(import.meta.url)) serve();
