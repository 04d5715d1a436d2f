import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareHookNames, hookTargets, HookError, parseHook, selectHooks, targetsInput, triggeredHooks, wordsplit, type HookDirEntry, type HookTransaction } from '../src/setup/alpm-hooks.js';
import { scriptletCommand, scriptletHasFunction } from '../src/setup/scriptlets.js';

/** Unit tests of the hook grammar, matching and ordering, with pacman's wording (lib/libalpm/hook.c). */

const text = (lines: string[]): Buffer => Buffer.from(`${lines.join('\n')}\n`);
const VALID = ['[Trigger]', 'Operation = Install', 'Type = Path', 'Target = usr/lib/*.so*', '', '[Action]', 'Description = Updating the cache', 'When = PostTransaction', 'Exec = /usr/bin/ldconfig -X'];

test('parseHook: a hook as alpm-hooks(5) writes it', () => {
  const { hook, warnings } = parseHook(text(['# comment', ...VALID, 'Depends = glibc', 'NeedsTargets']), 'x.hook');
  assert.deepEqual(warnings, []);
  assert.deepEqual(hook, {
    name: 'x.hook',
    description: 'Updating the cache',
    triggers: [{ operations: ['Install'], type: 'Path', targets: ['usr/lib/*.so*'] }],
    depends: ['glibc'],
    exec: ['/usr/bin/ldconfig', '-X'],
    when: 'PostTransaction',
    abortOnFail: false,
    needsTargets: true,
  });
});

test('parseHook: several triggers, repeated Operation lines, `File` as `Path`, whitespace and CRLF trimmed', () => {
  const { hook } = parseHook(Buffer.from('[Trigger]\r\n  Operation=Install \r\nOperation = Upgrade\nOperation = Install\nType = File\nTarget = a\n[Trigger]\nOperation = Remove\nType = Package\nTarget = b\nTarget = !c\n[Action]\nWhen = PreTransaction\nExec = /bin/true\nAbortOnFail\n'), 'y.hook');
  assert.deepEqual(hook.triggers, [
    { operations: ['Install', 'Upgrade'], type: 'Path', targets: ['a'] },
    { operations: ['Remove'], type: 'Package', targets: ['b', '!c'] },
  ]);
  assert.equal(hook.abortOnFail, true);
});

test("parseHook: pacman's errors, with the line", () => {
  const cases: [string[], RegExp][] = [
    [['Operation = Install'], /^hook x\.hook line 1: invalid option Operation$/],
    [['[Trigger]', 'Operation = Instal'], /^hook x\.hook line 2: invalid value Instal$/],
    [['[Trigger]', 'Type = Files'], /^hook x\.hook line 2: invalid value Files$/],
    [['[Trigger]', 'Targets = x'], /^hook x\.hook line 2: invalid option Targets$/],
    [['', '# c', '[Triggers]'], /^hook x\.hook line 3: invalid section Triggers$/],
    [['[Action]', 'When = Later'], /^hook x\.hook line 2: invalid value Later$/],
    [['[Action]', 'Exec = /bin/sh -c "unbalanced'], /^hook x\.hook line 2: invalid value \/bin\/sh -c "unbalanced$/],
    [['[Action]', 'Bogus'], /^hook x\.hook line 2: invalid option Bogus$/],
    [['[Trigger]', 'Operation'], /^hook x\.hook line 2: invalid value \(null\) for Operation$/],
    [['[Trigger]', 'Operation = Install', 'Type = Path', '[Action]', 'When = PostTransaction', 'Exec = /bin/true'], /^Missing trigger targets in hook: x\.hook$/],
    [['[Trigger]', 'Target = x', '[Action]'], /^Missing trigger type in hook: x\.hook; Missing trigger operation in hook: x\.hook; Missing Exec option in hook: x\.hook; Missing When option in hook: x\.hook$/],
  ];
  for (const [lines, message] of cases) assert.throws(() => parseHook(text(lines), 'x.hook'), (err: unknown) => err instanceof HookError && message.test(err.message), lines.join('|'));
});

test("parseHook: pacman's warnings; a file without triggers (a mask, /dev/null) is valid and never runs", () => {
  const { warnings } = parseHook(text(['[Trigger]', 'Operation = Install', 'Type = Path', 'Type = Package', 'Target = *', '[Action]', 'When = PreTransaction', 'When = PostTransaction', 'Exec = /a', 'Exec = /b', 'Description = a', 'Description = b', 'AbortOnFail']), 'w.hook');
  assert.deepEqual(warnings, [
    'hook w.hook line 4: overwriting previous definition of Type',
    'hook w.hook line 8: overwriting previous definition of When',
    'hook w.hook line 10: overwriting previous definition of Exec',
    'hook w.hook line 12: overwriting previous definition of Description',
    'AbortOnFail set for PostTransaction hook: w.hook',
  ]);
  const masked = parseHook(Buffer.alloc(0), 'm.hook').hook;
  assert.deepEqual(masked.triggers, []);
  assert.equal(masked.when, undefined);
  assert.deepEqual(parseHook(text(['[Action]', 'Description = only an action']), 'm.hook').hook.triggers, []);
});

test('parseHook: a line longer than pacman reads at once continues as the next line', () => {
  const long = `Target = ${'a'.repeat(5000)}`;
  assert.throws(() => parseHook(text(['[Trigger]', long]), 'l.hook'), /line 3: invalid option a+$/);
});

test('wordsplit: quotes group and are removed, a backslash escapes only a quote', () => {
  assert.deepEqual(wordsplit('  /bin/sh -c "echo \\"hi\\" there"  \'x y\' a\\"b c\\d '), ['/bin/sh', '-c', 'echo "hi" there', 'x y', 'a"b', 'c\\d']);
  assert.deepEqual(wordsplit('a"b c"d'), ['ab cd']);
  assert.deepEqual(wordsplit(''), []);
  assert.equal(wordsplit('"open'), undefined);
  assert.equal(wordsplit("x 'open"), undefined);
});

test("compareHookNames: pacman's order (suffix excluded, a prefix first)", () => {
  const names = ['b.hook', 'a-b.hook', '10-x.hook', 'a.hook', '9.hook', 'A.hook', '.hook'];
  assert.deepEqual(names.sort(compareHookNames), ['.hook', '10-x.hook', '9.hook', 'A.hook', 'a.hook', 'a-b.hook', 'b.hook']);
});

const file = (lines: string[]): HookDirEntry => ({ kind: 'file', content: text(lines) });
const pathHook = (target: string, when = 'PostTransaction'): HookDirEntry => file(['[Trigger]', 'Operation = Install', 'Type = Path', `Target = ${target}`, '[Action]', `When = ${when}`, 'Exec = /bin/true']);

test('selectHooks: later directories override, masks, non-hooks and directories skipped, errors reported', () => {
  const system = new Map<string, HookDirEntry>([
    ['b.hook', pathHook('b')],
    ['a.hook', pathHook('a')],
    ['masked.hook', pathHook('m')],
    ['broken-override.hook', pathHook('kept')],
    ['notes.txt', pathHook('x')],
    ['dir.hook', { kind: 'dir' }],
    ['dangling.hook', { kind: 'error', message: 'No such file or directory', file: '/usr/share/libalpm/hooks/dangling.hook' }],
  ]);
  const user = new Map<string, HookDirEntry>([
    ['a.hook', pathHook('a-from-user')],
    ['masked.hook', { kind: 'file', content: Buffer.alloc(0) }],
    // An override that does not parse is no override: pacman goes on to the earlier directory's file.
    ['broken-override.hook', file(['[Trigger]', 'Operation = Nope'])],
  ]);
  const { hooks, errors } = selectHooks([system, user]);
  assert.deepEqual(hooks.map((h) => [h.hook.name, h.hook.triggers[0]?.targets[0]]), [
    ['a.hook', 'a-from-user'],
    ['b.hook', 'b'],
    ['broken-override.hook', 'kept'],
    ['masked.hook', undefined],
  ]);
  assert.deepEqual(errors, ['hook broken-override.hook line 2: invalid value Nope', 'could not stat file /usr/share/libalpm/hooks/dangling.hook: No such file or directory']);
});

const TRANS: HookTransaction = {
  add: [
    { name: 'glibc', files: ['etc/', 'etc/ld.so.conf', 'usr/', 'usr/lib/', 'usr/lib/libc.so.6'] },
    { name: 'zlib', files: ['usr/', 'usr/lib/', 'usr/lib/libz.so.1', 'usr/share/doc/zlib/README'], oldFiles: ['usr/lib/libz.so.1', 'usr/lib/libz.so.0'] },
  ],
  remove: [{ name: 'oldpkg', files: ['usr/lib/libold.so'] }],
  noExtract: ['usr/share/doc/*'],
};

const hookOf = (lines: string[]): ReturnType<typeof parseHook>['hook'] => parseHook(text([...lines, '[Action]', 'When = PostTransaction', 'Exec = /bin/true', 'NeedsTargets']), 't.hook').hook;

test('hookTargets: Path triggers by operation, upgrade = a path both installed and removed; NoExtract does not count', () => {
  assert.deepEqual(hookTargets(hookOf(['[Trigger]', 'Operation = Install', 'Type = Path', 'Target = usr/lib/*']), TRANS).targets, ['usr/lib/', 'usr/lib/libc.so.6']);
  assert.deepEqual(hookTargets(hookOf(['[Trigger]', 'Operation = Upgrade', 'Type = Path', 'Target = usr/lib/*']), TRANS).targets, ['usr/lib/libz.so.1']);
  assert.deepEqual(hookTargets(hookOf(['[Trigger]', 'Operation = Remove', 'Type = Path', 'Target = usr/lib/*']), TRANS).targets, ['usr/lib/libold.so', 'usr/lib/libz.so.0']);
  assert.equal(hookTargets(hookOf(['[Trigger]', 'Operation = Install', 'Type = Path', 'Target = usr/share/doc/*']), TRANS).triggered, false);
  // `*` crosses `/` and matches nothing too; directories end in `/`; the usr/ of two packages is one target.
  assert.deepEqual(hookTargets(hookOf(['[Trigger]', 'Operation = Install', 'Operation = Upgrade', 'Type = Path', 'Target = usr/*']), TRANS).targets, ['usr/', 'usr/lib/', 'usr/lib/libc.so.6', 'usr/lib/libz.so.1']);
});

test('hookTargets: the last matching pattern decides, `!` excludes, `\\!` is a literal', () => {
  const trans: HookTransaction = { add: [{ name: 'p', files: ['a/x', 'a/skip-y', 'a/skip-keep', '!odd'] }], remove: [], noExtract: [] };
  const targets = (patterns: string[]): string[] => hookTargets(hookOf(['[Trigger]', 'Operation = Install', 'Type = Path', ...patterns.map((p) => `Target = ${p}`)]), trans).targets;
  assert.deepEqual(targets(['a/*', '!a/skip*']), ['a/x']);
  assert.deepEqual(targets(['a/*', '!a/skip*', 'a/skip-keep']), ['a/skip-keep', 'a/x']);
  assert.deepEqual(targets(['!a/skip*', 'a/*']), ['a/skip-keep', 'a/skip-y', 'a/x']);
  assert.deepEqual(targets(['\\!odd']), ['!odd']);
  assert.deepEqual(targets(['!*']), []);
});

test('hookTargets: Package triggers: install vs upgrade, removal of a package also added does not count', () => {
  const trans: HookTransaction = { add: [{ name: 'new', files: [] }, { name: 'up', files: [], oldFiles: [] }, { name: 'again', files: [] }], remove: [{ name: 'gone', files: [] }, { name: 'again', files: [] }], noExtract: [] };
  const targets = (op: string): string[] => hookTargets(hookOf(['[Trigger]', `Operation = ${op}`, 'Type = Package', 'Target = *']), trans).targets;
  assert.deepEqual(targets('Install'), ['again', 'new']);
  assert.deepEqual(targets('Upgrade'), ['up']);
  assert.deepEqual(targets('Remove'), ['gone']);
  // Without NeedsTargets there is no stdin, only the verdict.
  const plain = parseHook(text(['[Trigger]', 'Operation = Install', 'Type = Package', 'Target = n*', '[Action]', 'When = PostTransaction', 'Exec = /bin/true']), 'p.hook').hook;
  assert.deepEqual(hookTargets(plain, trans), { triggered: true, targets: [] });
});

test('triggeredHooks: only hooks of that time, in order, each with sorted unique targets; the stdin pacman writes', () => {
  const dir = new Map<string, HookDirEntry>([
    ['20-b.hook', pathHook('etc/*')],
    ['10-a.hook', pathHook('usr/lib/*')],
    ['05-pre.hook', pathHook('*', 'PreTransaction')],
    ['30-none.hook', pathHook('nothing/*')],
  ]);
  const selection = selectHooks([dir]);
  assert.deepEqual(triggeredHooks(selection, 'PostTransaction', TRANS).map((h) => h.hook.name), ['10-a.hook', '20-b.hook']);
  assert.deepEqual(triggeredHooks(selection, 'PreTransaction', TRANS).map((h) => h.hook.name), ['05-pre.hook']);
  assert.equal(targetsInput(['b', 'ü']).toString('utf8'), 'b\nü\n');
});

test("scriptlets: pacman's grep for the function (a name after '#' does not count) and its command line", () => {
  assert.equal(scriptletHasFunction(Buffer.from('post_install() {\n :\n}\n'), 'post_install'), true);
  assert.equal(scriptletHasFunction(Buffer.from('# pre_install is not here\npost_install() { :; }\n'), 'pre_install'), false);
  assert.equal(scriptletHasFunction(Buffer.from('x() { :; } # pre_install\n'), 'pre_install'), false);
  // Any mention counts, a call as much as a definition.
  assert.equal(scriptletHasFunction(Buffer.from('post_upgrade() { post_install; }\n'), 'post_install'), true);
  assert.deepEqual(scriptletCommand('pre_install', '1:2.0-3'), ['/bin/sh', '-c', '. /tmp/alpm_000000/.INSTALL; pre_install 1:2.0-3']);
});
