/**
 * Progress of the long phases: plain lines for logs, a bar redrawn in place on a terminal, nothing in mode none
 * or for a library caller that did not ask; always on stderr, so that `--json` stdout stays one JSON document; and
 * never a byte of difference in what is built.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeExample } from '../src/example/generate.js';
import { copy as copyImage, withProgress as libraryWithProgress } from '../src/index.js';
import { Progress, progressNote, setProgress, withProgress, type ProgressStream } from '../src/util/progress.js';
import { busyboxRepo, COMMANDS_SKIP } from './support/busybox.js';
import { CLI, makeTempDir, removeDir, run, runCli, runCliOk, tempDirFor, type RunResult } from './support/cli.js';
import { startRegistry } from './support/registry.js';

/** Collects what is written; a terminal or not, of a given width. */
class FakeStream implements ProgressStream {
  text = '';
  constructor(
    readonly isTTY = false,
    readonly columns?: number,
  ) {}

  write(text: string): boolean {
    this.text += text;
    return true;
  }

  /** What was written since the last take(). */
  take(): string {
    const text = this.text;
    this.text = '';
    return text;
  }
}

const ERASE = '\r\x1b[K';

test('plain: a phase has a start line, at most one line per interval and an end line; a brief step shows only when slow', async () => {
  const stream = new FakeStream();
  let now = 0;
  await withProgress({ mode: 'plain', stream, now: () => now }, async () => {
    const fetch = new Progress('fetch', { unit: 'packages' }).start(4);
    now = 1000;
    fetch.advance(); // within 5 s of the start: quiet
    const quick = new Progress('package a 1-1', { brief: true }).start(2048);
    quick.advance(2048);
    quick.stop(); // a quick step leaves no line
    now = 5000;
    fetch.advance();
    now = 6000;
    const slow = new Progress('package b 1-1', { brief: true }).start(3 * 1048576);
    fetch.advance(); // 1 s after the last line: quiet
    now = 11000;
    slow.advance(1048576);
    now = 12000;
    slow.advance(2 * 1048576);
    now = 13000;
    slow.stop();
    progressNote('fetched b');
    fetch.advance();
    fetch.stop();
    fetch.stop(); // idempotent
    const install = new Progress('install', { unit: 'packages' }).start(3);
    now = 13500;
    install.advance();
    install.stop(); // the work failed part way
  });
  assert.deepEqual(stream.take().split('\n'), [
    'fetch: started, 4 packages',
    'fetch: 2/4 packages (50%)',
    'package b 1-1: 1.0 MiB/3.0 MiB (33%)',
    'package b 1-1: 3.0 MiB, done in 7.0s, 438.9 KiB/s',
    'fetched b',
    'fetch: 4/4 packages (100%)',
    'fetch: 4/4 packages, done in 13.0s',
    'install: started, 3 packages',
    'install: stopped at 1/3 packages after 0.5s',
    '',
  ]);
});

test('tty: one line redrawn in place at most every 100 ms, a bar for the phase, notes above it, a line left per finished phase', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const stream = new FakeStream(true, 200);
  let now = 0;
  let leftover: Progress | undefined;
  await withProgress({ mode: 'tty', stream, now: () => now }, async () => {
    const fetch = new Progress('fetch', { unit: 'packages' }).start(4);
    assert.equal(stream.take(), `${ERASE}[--------------------] fetch: 0/4 packages 0%`);
    now = 40;
    fetch.advance();
    assert.equal(stream.take(), '', 'throttled');
    now = 100;
    t.mock.timers.tick(60); // the redraw that was held back
    assert.equal(stream.take(), `${ERASE}[#####---------------] fetch: 1/4 packages 25%`);
    now = 200;
    fetch.advance();
    assert.equal(stream.take(), `${ERASE}[##########----------] fetch: 2/4 packages 50%`);
    now = 300;
    // A name from outside cannot send escape sequences to the terminal.
    const download = new Progress('package \x1b[2Jevil 1-1', { brief: true }).start(2048);
    assert.equal(stream.take(), `${ERASE}[##########----------] fetch: 2/4 packages 50% | "package \\x1b[2Jevil 1-1": 0 B/2.0 KiB 0%`);
    progressNote('fetched evil');
    assert.equal(stream.take(), `${ERASE}fetched evil\n${ERASE}[##########----------] fetch: 2/4 packages 50% | "package \\x1b[2Jevil 1-1": 0 B/2.0 KiB 0%`);
    now = 400;
    download.advance(2048);
    download.stop(); // a brief step leaves no line
    assert.equal(stream.take(), `${ERASE}[##########----------] fetch: 2/4 packages 50% | "package \\x1b[2Jevil 1-1": 2.0 KiB/2.0 KiB 100%`);
    now = 500;
    fetch.advance(2);
    assert.equal(stream.take(), `${ERASE}[####################] fetch: 4/4 packages 100%`);
    fetch.stop();
    assert.equal(stream.take(), `${ERASE}fetch: 4/4 packages, done in 0.5s\n`, 'the bar erased, the phase left as a line');
    now = 600;
    leftover = new Progress('compress (gzip)').start(10 * 1048576);
    assert.equal(stream.take(), `${ERASE}[--------------------] compress (gzip): 0 B/10.0 MiB 0%`);
  });
  assert.equal(stream.take(), ERASE, 'the scope ended: the bar is erased');
  leftover!.advance(1048576);
  leftover!.stop();
  t.mock.timers.tick(1000);
  assert.equal(stream.take(), '', 'nothing after the scope ended');
});

test('tty: a line never reaches the width of the terminal (it would wrap and break the redraw)', async () => {
  const stream = new FakeStream(true, 30);
  await withProgress({ mode: 'tty', stream }, async () => {
    const progress = new Progress('a rather long phase label', { unit: 'packages' }).start(12345);
    progress.stop();
  });
  const drawn = stream.text.split(ERASE).filter((s) => s && !s.endsWith('\n'));
  assert.ok(drawn.length > 0, stream.text);
  for (const line of drawn) assert.equal(line.length, 29, JSON.stringify(line));
});

test('auto is tty on a terminal and plain elsewhere; none, and a caller that did not ask, get nothing', async (t) => {
  const terminal = new FakeStream(true);
  const pipe = new FakeStream(false);
  for (const stream of [terminal, pipe]) {
    await withProgress({ mode: 'auto', stream }, async () => new Progress('install', { unit: 'packages' }).start(1).stop());
  }
  assert.ok(terminal.text.startsWith(`${ERASE}[--------------------] install: 0/1 packages 0%`), JSON.stringify(terminal.text));
  assert.match(pipe.text, /^install: started, 1 packages\ninstall: stopped at 0\/1 packages after /);

  const writes = t.mock.method(process.stderr, 'write', () => true);
  const none = new FakeStream(true);
  const outside = new Progress('fetch', { unit: 'packages' }).start(2);
  outside.advance(2);
  outside.stop();
  assert.equal(outside.active, false);
  await withProgress({ mode: 'none', stream: none }, async () => {
    const p = new Progress('fetch', { unit: 'packages' }).start(2);
    assert.equal(p.active, false);
    p.advance(2);
    p.stop();
  });
  writes.mock.restore();
  assert.equal(none.text, '');
  assert.equal(writes.mock.callCount(), 0, 'nothing went to stderr');
  assert.throws(() => setProgress('plain'), /outside withProgress/);
});

test('each scope has its own display: concurrent library calls do not mix', async () => {
  const a = new FakeStream();
  const b = new FakeStream();
  const task = async (label: string): Promise<void> => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    new Progress(label, { unit: 'steps' }).start(1).stop();
  };
  await Promise.all([libraryWithProgress({ mode: 'plain', stream: a }, () => task('alpha')), libraryWithProgress({ mode: 'plain', stream: b }, () => task('beta'))]);
  assert.match(a.text, /^alpha: started, 1 steps\nalpha: stopped at 0\/1 steps after \d+\.\ds\n$/);
  assert.match(b.text, /^beta: started, 1 steps\nbeta: stopped at 0\/1 steps after \d+\.\ds\n$/);
});

// The CLI, on the bundled example: every run below builds the same image.

let work: string;
let spec: string;
let packages: number;
const env = { SOURCE_DATE_EPOCH: undefined, REPRO_OCI_PROGRESS: undefined };

before(async () => {
  work = await makeTempDir('progress');
  spec = await writeExample(join(work, 'example'));
  await runCliOk(['lock', spec, '--progress=none'], { env });
  packages = (JSON.parse(await readFile(join(work, 'example', 'spec.lock.json'), 'utf8')) as { packages: unknown[] }).packages.length;
});
after(() => removeDir(work));

function build(name: string, args: string[], extraEnv: Record<string, string | undefined> = {}): Promise<RunResult> {
  return runCli(['build', spec, '--cache', join(work, 'cache'), '-o', `oci:${join(work, name)}:v1`, ...args], { env: { ...env, ...extraEnv } });
}

/** The plain lines of the phases a spec build runs, each phase started and done. */
const PLAIN_PHASE = (phase: string, what: string): RegExp[] => [
  new RegExp(`^${phase}: started, ${what}$`, 'm'),
  new RegExp(`^${phase}: [^\\n]*, done in \\d+\\.\\ds(, [\\d.]+ [KMG]?i?B/s)?$`, 'm'),
];

/** Files of an OCI layout, by path, with their bytes. */
async function layoutFiles(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) out.set(join(entry.parentPath, entry.name).slice(dir.length), await readFile(join(entry.parentPath, entry.name)));
  }
  return out;
}

test('build --json --progress=plain: stdout is the JSON alone, stderr has each phase; the image is the one none and tty build', async () => {
  const plain = await build('plain', ['--json', '--progress=plain']);
  assert.equal(plain.code, 0, plain.stderr);
  const json = JSON.parse(plain.stdout) as { manifest: { digest: string }; config: unknown; layers: unknown };
  for (const pattern of [
    ...PLAIN_PHASE('fetch', `${packages} packages`),
    ...PLAIN_PHASE('install', `${packages} packages`),
    ...PLAIN_PHASE('compress \\(gzip\\)', '[\\d.]+ KiB'),
  ]) assert.match(plain.stderr, pattern);
  // Nothing else on stderr: the phases' lines and the notes of the packages fetched into the empty cache.
  for (const line of plain.stderr.trimEnd().split('\n')) assert.match(line, /^(fetch|install|compress \(gzip\)): |^fetched /, line);
  assert.ok(plain.stderr.indexOf('fetch: started') < plain.stderr.indexOf('install: started'), 'in pipeline order');

  const none = await build('none', ['--progress=none']);
  assert.equal(none.code, 0, none.stderr);
  assert.equal(none.stderr, '', 'mode none: not a byte on stderr');
  assert.equal(none.stdout, `${json.manifest.digest}\n`);

  const tty = await build('tty', ['--progress', 'tty', '--json']);
  assert.equal(tty.code, 0, tty.stderr);
  const image = (j: typeof json): unknown => ({ manifest: j.manifest, config: j.config, layers: j.layers });
  assert.deepEqual(image(JSON.parse(tty.stdout) as typeof json), image(json), 'the same image: manifest, config, layers');
  assert.ok(tty.stderr.includes(`${ERASE}[`), JSON.stringify(tty.stderr));
  assert.match(tty.stderr.split(ERASE).join('\n'), /\ninstall: \d+\/\d+ packages, done in \d+\.\ds\n/, 'a finished phase is left as a line');
  assert.ok(!tty.stdout.includes('\r') && !tty.stdout.includes('\x1b'), 'no drawing on stdout');

  const plainFiles = await layoutFiles(join(work, 'plain'));
  for (const other of ['none', 'tty']) assert.deepEqual(await layoutFiles(join(work, other)), plainFiles, `${other}: the same bytes as plain`);
});

test('the default is auto (plain when stderr is not a terminal); REPRO_OCI_PROGRESS=0 is none and --progress wins over it, before or after the command', async () => {
  const auto = await build('auto', []);
  assert.equal(auto.code, 0, auto.stderr);
  assert.match(auto.stderr, /^install: started, /m);
  assert.ok(!auto.stderr.includes('\x1b'), 'no escape sequences into a pipe');

  const off = await build('off', [], { REPRO_OCI_PROGRESS: '0' });
  assert.equal(off.code, 0, off.stderr);
  assert.equal(off.stderr, '');

  const explicit = await runCli(['--progress=plain', 'install', join(work, 'example', 'spec.lock.json'), '--root', join(work, 'root'), '--cache', join(work, 'cache')], { env: { ...env, REPRO_OCI_PROGRESS: '0' } });
  assert.equal(explicit.code, 0, explicit.stderr);
  assert.match(explicit.stderr, new RegExp(`^install: ${packages}/${packages} packages, done in `, 'm'));
  assert.match(explicit.stderr, new RegExp(`^fetch: ${packages}/${packages} packages, done in `, 'm'));
});

test('auto on a real terminal draws the bar (script(1) gives stderr a pty) while the JSON goes to a file intact', { skip: !existsSync('/usr/bin/script') && 'needs script(1) (bsdutils)' }, async () => {
  const json = join(work, 'pty.json');
  const line = `"$0" "$1" build "$2" --cache "$3" -o "oci:$4:v1" --json > "$5"`;
  const shell = ['sh', '-c', line, process.execPath, CLI, spec, join(work, 'cache'), join(work, 'pty'), json].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const r = await run('script', ['-qec', shell, '/dev/null'], { env: { ...env, COLUMNS: '100' } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.ok(r.stdout.includes(`${ERASE}[`), JSON.stringify(r.stdout));
  assert.match(r.stdout, /install: \d+\/\d+ packages, done in /);
  JSON.parse(await readFile(json, 'utf8'));
});

test('an unknown mode is a one-line error, exit 2, before any work', async () => {
  for (const [args, extra, message] of [
    [['--progress=bogus'], {}, /^error: option '--progress <mode>' argument 'bogus' is invalid\. Allowed choices are auto, tty, plain, none\.\n$/],
    [[], { REPRO_OCI_PROGRESS: 'loud' }, /^repro-oci: REPRO_OCI_PROGRESS=loud: not one of 0, 1, auto, tty, plain, none\n$/],
  ] as const) {
    const r = await build('never', [...args], extra);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.stdout, '');
  }
  await assert.rejects(readdir(join(work, 'never')), { code: 'ENOENT' });
});

test('setup: the command runs counted (each command runs twice)', { skip: COMMANDS_SKIP }, async (t) => {
  const dir = await tempDirFor(t, 'progress-setup');
  await busyboxRepo(dir, ['sh', 'mkdir']);
  const commands = [['sh', '-c', 'mkdir -p /srv/a'], ['sh', '-c', 'mkdir -p /srv/b']];
  await writeFile(join(dir, 'spec.yaml'), `repositories: [{ name: core, servers: [repo/$repo/os/$arch] }]\npackages: [busybox]\nsigLevel: Never\nimage:\n  setup:\n    commands: ${JSON.stringify(commands)}\n`);
  const r = await runCli(['build', 'spec.yaml', '--json', '--progress=plain', '-o', `oci:${join(dir, 'out')}`], { cwd: dir, env: { ...env, REPRO_OCI_CACHE: join(dir, 'cache') } });
  assert.equal(r.code, 0, r.stderr);
  JSON.parse(r.stdout);
  assert.match(r.stderr, /^setup: started, 4 command runs\n/m);
  assert.match(r.stderr, /^setup: 4\/4 command runs, done in \d+\.\ds\n/m);
});

test('push: a line when each blob starts and ends, from the CLI; the library shows the bytes going up', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const layout = `oci:${join(work, 'plain')}:v1`;
  const r = await runCli(['copy', layout, `docker://${registry.host}/progress/hello:1`, '--json', '--progress=plain'], { env });
  assert.equal(r.code, 0, r.stderr);
  JSON.parse(r.stdout);
  const blob = `push ${registry.host}/progress/hello:1 blob [0-9a-f]{12}`;
  assert.equal(r.stderr.match(new RegExp(`^${blob}: started, `, 'gm'))?.length, 2, `config and layer:\n${r.stderr}`);
  assert.equal(r.stderr.match(new RegExp(`^${blob}: [\\d.]+ (B|KiB), done in `, 'gm'))?.length, 2, r.stderr);

  // Through the library, with a line per chunk (no interval): the bytes climb to the whole layer.
  const stream = new FakeStream();
  await libraryWithProgress({ mode: 'plain', stream, plainIntervalMs: 0 }, () => copyImage(layout, `docker://${registry.host}/progress/again:1`, { chunkSize: 1024 }));
  const byBlob = new Map<string, number[]>();
  for (const [, blob, percent] of stream.text.matchAll(/^push \S+ blob ([0-9a-f]{12}): \S+ K?i?B\/\S+ K?i?B \((\d+)%\)$/gm)) {
    byBlob.set(blob!, [...(byBlob.get(blob!) ?? []), Number(percent)]);
  }
  assert.equal(byBlob.size, 2, stream.text);
  assert.ok([...byBlob.values()].some((p) => p.length >= 3), `the layer goes up in several chunks:\n${stream.text}`);
  for (const percents of byBlob.values()) {
    assert.deepEqual([...percents].sort((x, y) => x - y), percents, 'rising');
    assert.equal(percents.at(-1), 100);
  }
});
