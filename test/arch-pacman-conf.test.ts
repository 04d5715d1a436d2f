import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parsePacmanConf, type PacmanConfSources } from '../src/pacman/pacman-conf.js';
import { ARCH_LINUX_SIGLEVEL, BUILTIN_SIGLEVEL, formatSigLevel, parseSigLevel } from '../src/pacman/siglevel.js';

/** An in-memory file system for config files. */
function files(tree: Record<string, string>, machine = 'x86_64'): PacmanConfSources {
  return {
    machine,
    readFile: (path) => {
      const text = tree[path];
      if (text === undefined) throw new Error('no such file');
      return text;
    },
    listDirectory: (dir) => {
      const prefix = dir.endsWith('/') ? dir : `${dir}/`;
      const names = Object.keys(tree)
        .filter((p) => p.startsWith(prefix))
        .map((p) => p.slice(prefix.length).split('/')[0]!);
      return [...new Set(names)];
    },
  };
}

const ARCH_CONF = `#
# /etc/pacman.conf
#
[options]
#RootDir     = /
HoldPkg     = pacman glibc
Architecture = auto
IgnorePkg   = linux  linux-headers
IgnoreGroup = kde
NoUpgrade   = etc/passwd etc/group
NoExtract   = usr/share/help/* !usr/share/help/en*
CheckSpace
Color
ParallelDownloads = 5
DBPath = /first/
DBPath = /second/
SigLevel    = Required DatabaseOptional
LocalFileSigLevel = Optional
DownloadUser = alpm

  # an indented comment
[core]
Include = /etc/pacman.d/mirrorlist

[extra]
Include = /etc/pacman.d/mirrorlist

[custom]
SigLevel = Optional TrustAll
Server = file:///home/$repo/$arch # not a comment
Usage = Sync Install
`;

const MIRRORLIST = `## Worldwide
Server = https://geo.mirror.pkgbuild.com/$repo/os/$arch
#Server = https://disabled.example/$repo/os/$arch
Server = https://mirror.example/archlinux/$repo/os/$arch
`;

test('parsePacmanConf reads [options], repositories in order, includes and variables', async () => {
  const conf = await parsePacmanConf('/etc/pacman.conf', files({ '/etc/pacman.conf': ARCH_CONF, '/etc/pacman.d/mirrorlist': MIRRORLIST }, 'aarch64'));
  const { options } = conf;
  assert.deepEqual(options.holdPkg, ['pacman', 'glibc']);
  assert.deepEqual(options.architectures, ['aarch64']);
  assert.deepEqual(options.ignorePkg, ['linux', 'linux-headers']);
  assert.deepEqual(options.ignoreGroup, ['kde']);
  assert.deepEqual(options.noUpgrade, ['etc/passwd', 'etc/group']);
  assert.deepEqual(options.noExtract, ['usr/share/help/*', '!usr/share/help/en*']);
  assert.equal(options.checkSpace, true);
  assert.equal(options.color, true);
  assert.equal(options.useSyslog, false);
  assert.equal(options.parallelDownloads, 5);
  assert.equal(options.dbPath, '/first/');
  assert.deepEqual(options.sigLevel, ARCH_LINUX_SIGLEVEL);
  assert.deepEqual(formatSigLevel(options.sigLevel), ['PackageRequired', 'PackageTrustedOnly', 'DatabaseOptional', 'DatabaseTrustedOnly']);
  assert.deepEqual(formatSigLevel(options.localFileSigLevel), ['PackageOptional', 'PackageTrustedOnly', 'DatabaseOptional', 'DatabaseTrustedOnly']);
  assert.deepEqual(options.remoteFileSigLevel, options.sigLevel);

  assert.deepEqual(
    conf.repos.map((r) => r.name),
    ['core', 'extra', 'custom'],
  );
  const [core, extra, custom] = conf.repos;
  assert.deepEqual(core!.servers, ['https://geo.mirror.pkgbuild.com/core/os/aarch64', 'https://mirror.example/archlinux/core/os/aarch64']);
  assert.deepEqual(extra!.servers, ['https://geo.mirror.pkgbuild.com/extra/os/aarch64', 'https://mirror.example/archlinux/extra/os/aarch64']);
  assert.deepEqual(core!.sigLevel, options.sigLevel);
  assert.deepEqual(core!.usage, ['Sync', 'Search', 'Install', 'Upgrade']);
  assert.deepEqual(custom!.servers, ['file:///home/custom/aarch64 # not a comment']);
  assert.deepEqual(formatSigLevel(custom!.sigLevel), ['PackageOptional', 'PackageTrustAll', 'DatabaseOptional', 'DatabaseTrustAll']);
  assert.deepEqual(custom!.usage, ['Sync', 'Install']);
  assert.deepEqual(conf.warnings, ['config file /etc/pacman.conf, line 19: directive "DownloadUser" in section "options" not recognized']);
});

test('Include globs expand in sorted order and share the current section', async () => {
  const conf = await parsePacmanConf(
    '/etc/pacman.conf',
    files({
      '/etc/pacman.conf': '[options]\nArchitecture = x86_64 i686\nInclude = /etc/pacman.d/*.conf\nServer = http://after/$repo\n',
      '/etc/pacman.d/b.conf': '[b]\nServer = http://b/$arch\n',
      '/etc/pacman.d/a.conf': '[a]\nServer = http://a/$arch\n',
      '/etc/pacman.d/.hidden.conf': '[hidden]\n',
      '/etc/pacman.d/c.txt': '[c]\n',
    }),
  );
  assert.deepEqual(
    conf.repos.map((r) => [r.name, r.servers]),
    [
      ['a', ['http://a/x86_64']],
      ['b', ['http://b/x86_64', 'http://after/b']],
    ],
  );
});

test('pacman.conf errors name the file and line', async () => {
  const parse = (text: string, extra: Record<string, string> = {}) => parsePacmanConf('/p.conf', files({ '/p.conf': text, ...extra }));
  await assert.rejects(parse('Server = x\n'), /config file \/p\.conf, line 1: all directives must belong to a section/);
  await assert.rejects(parse('[options]\nSigLevel = Required Sometimes\n'), /config file \/p\.conf, line 2: invalid SigLevel value "Sometimes"/);
  await assert.rejects(parse('[core]\nServer = http://x/$arch\n'), /uses \$arch, but no Architecture is defined/);
  await assert.rejects(parse('[options]\nInclude = /missing\n'), /config file \/missing could not be read/);
  await assert.rejects(parse('[options]\nInclude = /p.conf\n'), /Include nested deeper than 10 levels/);
  await assert.rejects(parse('[core]\nUsage = Sometimes\n'), /Usage option "Sometimes" not recognized/);
  await assert.rejects(parse('[options]\nParallelDownloads = 0\n'), /ParallelDownloads must be positive/);
  await assert.rejects(parse('[core]\nServer\n'), /line 2: directive Server needs a value/);
});

test('parseSigLevel follows pacman: built-in Optional TrustedOnly, prefixes, later tokens win', () => {
  assert.deepEqual(BUILTIN_SIGLEVEL, { package: { check: 'optional', trustAll: false }, database: { check: 'optional', trustAll: false } });
  assert.deepEqual(ARCH_LINUX_SIGLEVEL, { package: { check: 'required', trustAll: false }, database: { check: 'optional', trustAll: false } });
  assert.deepEqual(parseSigLevel('Never'), { package: { check: 'never', trustAll: false }, database: { check: 'never', trustAll: false } });
  assert.deepEqual(parseSigLevel('Required PackageOptional DatabaseTrustAll'), {
    package: { check: 'optional', trustAll: false },
    database: { check: 'required', trustAll: true },
  });
  // Never keeps the optional flag underneath; Required clears it.
  assert.deepEqual(parseSigLevel('Never Required').package, { check: 'required', trustAll: false });
  assert.throws(() => parseSigLevel('PackageSometimes', 'repo core'), /repo core: invalid SigLevel value "PackageSometimes"/);
});

const ORACLE_CONFS = [
  '[options]\n[core]\nServer = http://x/\n',
  '[options]\nSigLevel = Never\nSigLevel = PackageOptional\nLocalFileSigLevel = TrustAll\n[core]\nSigLevel = DatabaseRequired\nServer = a\n',
  '[options]\nSigLevel = Required DatabaseOptional\nRemoteFileSigLevel = PackageNever DatabaseTrustAll\n[a]\nSigLevel = PackageTrustAll\n[b]\nSigLevel = Optional TrustedOnly DatabaseNever\n[c]\nSigLevel = Never Required\n',
  '[a]\nSigLevel = DatabaseNever\n[options]\nSigLevel = TrustAll PackageRequired\n',
];

test('resolved SigLevels match pacman-conf', async (t) => {
  if (!existsSync('/usr/bin/pacman-conf')) {
    t.skip('/usr/bin/pacman-conf is not installed; oracle comparison skipped');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'pacman-conf-'));
  try {
    for (const [index, text] of ORACLE_CONFS.entries()) {
      const path = join(dir, `${index}.conf`);
      writeFileSync(path, text);
      const query = (args: string[]): string[] =>
        execFileSync('pacman-conf', ['--config', path, ...args], { encoding: 'utf8' })
          .split('\n')
          .filter((l) => l !== '');
      const conf = await parsePacmanConf(path, files({ [path]: text }));
      assert.deepEqual(formatSigLevel(conf.options.sigLevel), query(['SigLevel']), `${index}.conf SigLevel`);
      // pacman-conf prints only the package half of the file levels, and nothing when they default to SigLevel.
      for (const key of ['LocalFileSigLevel', 'RemoteFileSigLevel'] as const) {
        const printed = query([key]);
        const ours = key === 'LocalFileSigLevel' ? conf.options.localFileSigLevel : conf.options.remoteFileSigLevel;
        const expected = printed.length > 0 ? printed : formatSigLevel(conf.options.sigLevel, ['package']);
        assert.deepEqual(formatSigLevel(ours, ['package']), expected, `${index}.conf ${key}`);
      }
      assert.deepEqual(query(['--repo-list']), conf.repos.map((r) => r.name), `${index}.conf repos`);
      for (const repo of conf.repos) {
        // A repository without its own SigLevel prints nothing; it uses [options].
        const printed = query(['--repo', repo.name, 'SigLevel']);
        assert.deepEqual(formatSigLevel(repo.sigLevel), printed.length > 0 ? printed : formatSigLevel(conf.options.sigLevel), `${index}.conf [${repo.name}]`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a repeated repository section keeps the first definition, as pacman registers only that one', async () => {
  const conf = await parsePacmanConf('/p.conf', files({ '/p.conf': '[core]\nServer = http://one/\n[core]\nServer = http://two/\n' }));
  assert.deepEqual(
    conf.repos.map((r) => r.servers),
    [['http://one/']],
  );
  assert.match(conf.warnings.join('\n'), /\[core\] is defined more than once/);
});
