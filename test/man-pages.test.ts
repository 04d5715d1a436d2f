import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Command } from 'commander';
import { createProgram, invokedCommand } from '../src/cli/main.js';
import { EXAMPLES, leafCommands, pageName, renderManPages } from '../src/cli/man.js';
import { VERSION } from '../src/version.js';
import { REPO_ROOT, run } from './support/cli.js';

/**
 * The man pages are made from the live command definitions at build time (scripts/man-pages.ts, run by `npm run
 * build` and `prepare`) into man/, which package.json installs. These tests fail when a page on disk is stale, when
 * a command has no EXAMPLES or an example uses an option its command lacks, and when man-db cannot render a page.
 */

const program = await createProgram();
const pages = renderManPages(program, VERSION);
const MAN_DIR = join(REPO_ROOT, 'man');

/** Every spelling of every option a command takes (`-o`, `--output`, `--no-commands`, …), global ones (`--progress`) too. */
function flagsOf(command: Command): Set<string> {
  const help = command.createHelp();
  return new Set([...help.visibleOptions(command), ...help.visibleGlobalOptions(command)].flatMap((o) => [o.short, o.long].filter((f): f is string => !!f)));
}

test('every command has EXAMPLES, every example names a command and only options it has', () => {
  const commands = leafCommands(program);
  assert.ok(commands.length >= 12, 'the commands were found');
  assert.deepEqual(Object.keys(EXAMPLES).filter((k) => k !== '').sort(), commands.map((c) => c.path).sort(), 'EXAMPLES has one entry per command, and none for a command that is gone');
  const byPath = new Map(commands.map((c) => [c.path, c.command]));
  for (const [path, examples] of Object.entries(EXAMPLES)) {
    assert.ok(examples.length > 0, `${path || 'repro-oci'}: no examples`);
    for (const example of examples) {
      assert.match(example.says, /[:.]$/, `${path}: ${example.says}`);
      for (const line of example.command.split('\n')) {
        const used = leafCommands(program).filter((c) => line === `repro-oci ${c.path}` || line.startsWith(`repro-oci ${c.path} `));
        assert.equal(used.length, 1, `${JSON.stringify(line)} runs one known command`);
        if (path !== '') assert.equal(used[0]!.path, path, `an example of ${path} runs ${path}: ${line}`);
        const known = flagsOf(byPath.get(used[0]!.path)!);
        for (const flag of line.match(/(?<=\s)--?[A-Za-z][\w-]*/g) ?? []) assert.ok(known.has(flag), `${line}: ${flag} is not an option of ${used[0]!.path}`);
      }
    }
  }
});

test('the built man pages are current: man/ holds exactly the pages the command definitions make, and package.json installs them', () => {
  assert.ok(existsSync(MAN_DIR), 'man/ is missing: run npm run build');
  const onDisk = readdirSync(MAN_DIR).filter((n) => n.endsWith('.1')).sort();
  assert.deepEqual(onDisk, [...pages.keys()], 'man/ has other pages than the commands make: run npm run build');
  for (const [name, text] of pages) assert.equal(readFileSync(join(MAN_DIR, name), 'utf8'), text, `man/${name} is stale: run npm run build`);
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { man: string[]; files: string[]; scripts: Record<string, string> };
  assert.deepEqual([...pkg.man].sort(), [...pages.keys()].map((n) => `./man/${n}`), 'package.json "man" lists every page (a new command needs its page listed)');
  assert.ok(pkg.files.includes('man'), 'package.json "files" ships man/');
  for (const script of ['build', 'prepare']) assert.match(pkg.scripts[script]!, /&& node dist\/scripts\/man-pages\.js$/, `${script} makes the pages`);
});

test('the pages are deterministic and name every command and option', async () => {
  assert.deepEqual(renderManPages(await createProgram(), VERSION), pages, 'the same definitions give the same bytes');
  const main = pages.get('repro-oci.1')!;
  for (const { path, command } of leafCommands(program)) {
    assert.ok(main.includes(`.BR ${pageName(path).replace(/-/g, '\\-')} (1)`), `repro-oci(1) lists ${path}`);
    const page = pages.get(`${pageName(path)}.1`)!;
    for (const flag of flagsOf(command)) assert.ok(page.includes(flag.replace(/-/g, '\\-')), `${path}: ${flag}`);
    assert.ok(!/^[.'](?!\\"|TH |SH |TP|B |BR |I |PP|RS |RE|EX|EE|br)/m.test(page), `${path}: only the macros we write start a line`);
  }
});

test('man -l renders every page without a warning, with its sections, options and examples', { skip: !existsSync('/usr/bin/man') && 'man-db is not installed' }, async () => {
  for (const [name] of pages) {
    const file = join(MAN_DIR, name);
    const r = await run('man', ['--warnings', '-l', file], { env: { MANWIDTH: '200', MAN_KEEP_FORMATTING: undefined, PAGER: 'cat', LANG: 'C.UTF-8' } });
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    assert.equal(r.stderr, '', `${name}: groff warned`);
    const text = r.stdout; // plain: man-db drops bold and underline when its output is not a terminal
    for (const section of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'EXIT STATUS', 'EXAMPLES', 'SEE ALSO']) assert.match(text, new RegExp(`^${section}$`, 'm'), `${name}: ${section}`);
    const path = name === 'repro-oci.1' ? '' : leafCommands(program).find((c) => `${pageName(c.path)}.1` === name)!.path;
    // Copied from the page, an example runs as written: ASCII hyphens, no hyphenation, one line.
    for (const example of EXAMPLES[path]!) for (const line of example.command.split('\n')) assert.ok(text.includes(line), `${name}: ${line}`);
    if (path) {
      assert.match(text, /^OPTIONS$/m, name);
      for (const flag of flagsOf(leafCommands(program).find((c) => c.path === path)!.command)) assert.ok(text.includes(flag), `${name}: ${flag}`);
    }
  }
});

test('a command run alone is defined exactly as in the whole program: its page is the same, and it loads only its own module', async () => {
  assert.equal(invokedCommand(['--progress', 'none', 'status', 'lock.json']), 'status');
  assert.equal(invokedCommand(['--progress=plain', '-V']), undefined);
  assert.equal(invokedCommand(['--', 'build']), undefined);
  for (const { path } of leafCommands(program)) {
    const top = path.split(' ')[0]!;
    const alone = await createProgram(top);
    assert.ok(alone.commands.length < program.commands.length, `${top} alone registers fewer commands than the whole program`);
    const name = `${pageName(path)}.1`;
    assert.equal(renderManPages(alone, VERSION).get(name), pages.get(name), `${name}: the same definition when only ${top}'s module is loaded`);
  }
  assert.equal((await createProgram('no-such-command')).commands.length, program.commands.length, 'an unknown command loads them all, so commander can suggest one');
});
