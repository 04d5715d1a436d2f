import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateExampleArchive } from '../src/example/generate.js';
import { fakeClockEnv, REPO_ROOT, runCli, runCliOk, runOk, tempDirFor } from './support/cli.js';

/**
 * `--output oci-import:DIR[:BRANCH]` against the real git, skopeo and jq: the commit hash is reproducible, the
 * repository is sound, and the layout at the commit — taken out the way docker-library's oci-import helper takes
 * it (`git archive GitCommit:Directory`) — is the image, before and after docker-library rewrites its index.
 */

const sha256 = (bytes: Buffer | string): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const git = async (dir: string, ...args: string[]): Promise<string> => (await runOk('git', ['-C', dir, ...args])).stdout;

/** docker-library's way to take the layout out of a commit: `git archive COMMIT:DIRECTORY | tar -x`. */
async function exportCommit(repo: string, commit: string, directory: string, into: string): Promise<void> {
  mkdirSync(into);
  const tar = join(into, '..', `${commit}.tar`);
  await runOk('git', ['-C', repo, 'archive', '--format=tar', '-o', tar, `${commit}:${directory === '.' ? '' : `${directory}/`}`]);
  await runOk('tar', ['-x', '-f', tar, '-C', into]);
}

/** Everything under a directory (names, sizes, contents' digests) and git's refs: "nothing touched" is this unchanged. */
function snapshot(dir: string): string {
  if (!existsSync(dir)) return 'absent';
  const info = statSync(dir);
  if (!info.isDirectory()) return `file ${sha256(readFileSync(dir))}`;
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const st = statSync(join(dir, path));
      if (st.isDirectory()) {
        out.push(`${path}/`);
        walk(path);
      } else out.push(`${path} ${st.size} ${sha256(readFileSync(join(dir, path)))}`);
    }
  };
  walk('');
  return out.join('\n');
}

/**
 * docker-library's rewrite of an oci-import layout (meta-scripts helpers/oci-import.sh, redone here with jq, not
 * copied): exactly one entry; its urls, data and annotations dropped; its platform set to the build's; the build
 * annotations added (created from the entry's SOURCE_DATE_EPOCH, which bashbrew takes from the commit's time);
 * then that index is pushed down into a blob and a new index.json names it.
 */
async function dockerLibraryRewrite(layout: string, build: object): Promise<{ indexDigest: string }> {
  const filter = `
    (env.BUILD | fromjson) as $b
    | if (.manifests | length) != 1 then error("oci-import takes exactly one manifest") else . end
    | .mediaType //= "application/vnd.oci.image.index.v1+json"
    | del(.manifests[].urls, .manifests[].data)
    | del(.manifests[0].annotations)
    | .manifests[0].platform = $b.source.arches[$b.build.arch].platform
    | .manifests[0].annotations += {
        "org.opencontainers.image.source": $b.source.entries[0].GitRepo,
        "org.opencontainers.image.revision": $b.source.entries[0].GitCommit,
        "org.opencontainers.image.created": ($b.source.entries[0].SOURCE_DATE_EPOCH | strftime("%Y-%m-%dT%H:%M:%SZ")),
        "org.opencontainers.image.version": (first($b.source.arches[$b.build.arch].tags[]) | sub("^.*:"; "")),
        "org.opencontainers.image.url": (first($b.source.arches[$b.build.arch].tags[]) | sub(":.*$"; "") | "https://hub.docker.com/_/" + .),
        "com.docker.official-images.bashbrew.arch": $b.build.arch,
        "org.opencontainers.image.base.name": "scratch"
      }`;
  const rewritten = (await runOk('jq', ['--tab', filter, join(layout, 'index.json')], { env: { BUILD: JSON.stringify(build) } })).stdoutBytes;
  const indexDigest = sha256(rewritten);
  writeFileSync(join(layout, 'blobs', 'sha256', indexDigest.slice(7)), rewritten);
  const outer = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: indexDigest, size: rewritten.length }] };
  writeFileSync(join(layout, 'index.json'), `${JSON.stringify(outer, null, '\t')}\n`);
  return { indexDigest };
}

test('oci-import: two builds give one commit hash; git fsck; skopeo and rebuild read the commit; docker-library\'s index rewrite keeps the platform manifest digest', async (t) => {
  const work = await tempDirFor(t, 'oci-import');
  await generateExampleArchive(join(REPO_ROOT, 'examples/hello-arch/packages.yaml'), work);
  copyFileSync(join(REPO_ROOT, 'examples/hello-arch/spec.yaml'), join(work, 'spec.yaml'));
  const mirrors = ['--mirror', join(work, 'repo/hello-core/os/x86_64'), '--mirror', join(work, 'repo/hello-extra/os/x86_64')];
  const env = { REPRO_OCI_CACHE: join(work, 'cache'), SOURCE_DATE_EPOCH: undefined };
  await runCliOk(['lock', 'spec.yaml'], { cwd: work, env });

  // First build: plain. Second: another clock, time zone and umask, a hostile git setup in HOME and the
  // environment (an identity, signing, a hook that would leave a mark, another commit encoding, GIT_DIR).
  const first = await runCliOk(['build', 'spec.yaml', '-o', 'oci-import:one', '-o', 'oci:layout:t', '--json'], { cwd: work, env });
  const home = join(work, 'home');
  mkdirSync(join(home, 'hooks'), { recursive: true });
  const mark = join(work, 'hook-ran');
  writeFileSync(join(home, 'hooks', 'reference-transaction'), `#!/bin/sh\ntouch ${mark}\n`, { mode: 0o755 });
  writeFileSync(join(home, 'hooks', 'post-commit'), `#!/bin/sh\ntouch ${mark}\n`, { mode: 0o755 });
  writeFileSync(join(home, '.gitconfig'), `[user]\n\tname = Someone Else\n\temail = else@example.org\n[commit]\n\tgpgSign = true\n[core]\n\thooksPath = ${join(home, 'hooks')}\n[i18n]\n\tcommitEncoding = ISO-8859-1\n[init]\n\tdefaultBranch = trunk\n`);
  const second = await runCliOk(['build', 'spec.yaml', '-o', 'oci-import:two', '--json'], {
    cwd: work,
    env: { ...env, ...fakeClockEnv('2031-07-04 12:00:00'), HOME: home, TZ: 'Pacific/Chatham', GIT_AUTHOR_NAME: 'Intruder', GIT_COMMITTER_DATE: '2030-01-01T00:00:00Z', GIT_DIR: join(work, 'nowhere') },
  });
  const one = JSON.parse(first.stdout) as { manifest: { digest: string }; outputs: { reference: string; ociImport?: { commit: string; branch: string; architecture: string; parent: string | null; stanza: Record<string, string> } }[] };
  const two = JSON.parse(second.stdout) as typeof one;
  const manifestDigest = one.manifest.digest;
  assert.equal(two.manifest.digest, manifestDigest);
  const c1 = one.outputs[0]!.ociImport!;
  const c2 = two.outputs[0]!.ociImport!;
  assert.match(c1.commit, /^[0-9a-f]{40}$/);
  assert.equal(c2.commit, c1.commit, 'two builds into fresh repositories give the same commit');
  assert.equal(c1.branch, 'dist-amd64');
  assert.equal(c1.parent, null);
  assert.equal(existsSync(mark), false, 'no hook of the user ran');
  // The example uses the archlinux-docker preset, whose version label (SOURCE_DATE_EPOCH's day, `.0`) names the tag.
  assert.deepEqual(c1.stanza, { Tags: '20231114.0', Architectures: 'amd64', GitFetch: 'refs/heads/dist-amd64', GitCommit: c1.commit, Directory: '.', File: 'index.json', Builder: 'oci-import' });

  const repo = join(work, 'one');
  assert.equal(await git(repo, 'rev-parse', 'refs/heads/dist-amd64'), `${c1.commit}\n`);
  assert.equal(await git(repo, 'symbolic-ref', 'HEAD'), 'refs/heads/dist-amd64\n');
  await git(repo, 'fsck', '--strict', '--no-dangling');
  assert.equal(await git(repo, 'status', '--porcelain', '--untracked-files=all'), '', 'the working tree is the commit');
  const config = JSON.parse(readFileSync(join(work, 'layout', 'blobs', 'sha256', JSON.parse(readFileSync(join(work, 'layout', 'blobs', 'sha256', manifestDigest.slice(7)), 'utf8')).config.digest.slice(7)), 'utf8')) as { created: string };
  const epoch = Date.parse(config.created) / 1000;
  const commitObject = await git(repo, 'cat-file', 'commit', c1.commit);
  assert.match(commitObject, new RegExp(`^author repro-oci <repro-oci@invalid> ${epoch} \\+0000$`, 'm'));
  assert.match(commitObject, new RegExp(`^committer repro-oci <repro-oci@invalid> ${epoch} \\+0000$`, 'm'));
  assert.doesNotMatch(commitObject, /^(gpgsig|encoding) /m);
  assert.ok(commitObject.includes(`Manifest: ${manifestDigest}`));
  assert.equal(await git(repo, 'ls-tree', '--name-only', c1.commit), 'blobs\nindex.json\noci-layout\n');

  // The text stanza on stdout, after the digest.
  const plain = await runCliOk(['build', 'spec.yaml', '-o', 'oci-import:three'], { cwd: work, env });
  assert.equal(plain.stdout, `${manifestDigest}\n\nTags: 20231114.0\nArchitectures: amd64\nGitFetch: refs/heads/dist-amd64\nGitCommit: ${c1.commit}\nDirectory: .\nFile: index.json\nBuilder: oci-import\n`);

  // The layout at the commit, taken out as docker-library does, read by skopeo and by rebuild.
  const exported = join(work, 'exported');
  await exportCommit(repo, c1.commit, '.', exported);
  const raw = (await runOk('skopeo', ['inspect', '--raw', `oci:${exported}`])).stdoutBytes;
  assert.equal(sha256(raw), manifestDigest);
  await runOk('skopeo', ['copy', '--quiet', '--digestfile', join(work, 'skopeo.digest'), `oci:${exported}`, `oci:${join(work, 'skopeo-copy')}:x`]);
  assert.equal(readFileSync(join(work, 'skopeo.digest'), 'utf8'), manifestDigest);
  const rebuilt = await runCli(['rebuild', `oci:${exported}`, ...mirrors, '--json'], { cwd: work, env });
  assert.equal(rebuilt.code, 0, rebuilt.stderr);
  assert.equal((JSON.parse(rebuilt.stdout) as { reproducible: boolean }).reproducible, true);
  const direct = await runCli(['rebuild', 'oci-import:one:dist-amd64', ...mirrors], { cwd: work, env });
  assert.equal(direct.code, 0, direct.stderr);
  assert.match(direct.stdout, new RegExp(`reproducible: ${manifestDigest}`));

  // docker-library's rewrite: a new index (another digest), the same platform manifest underneath it.
  const commitTime = Number((await git(repo, 'log', '-1', '--format=%ct', c1.commit)).trim());
  assert.equal(commitTime, epoch, 'bashbrew dates the import by the commit: the image created time');
  const build = {
    build: { arch: 'amd64' },
    source: {
      entries: [{ GitRepo: 'https://gitlab.archlinux.org/archlinux/archlinux-docker-oci.git', GitFetch: 'refs/heads/dist-amd64', GitCommit: c1.commit, Directory: '.', File: 'index.json', Builder: 'oci-import', SOURCE_DATE_EPOCH: commitTime }],
      arches: { amd64: { tags: ['archlinux:base-20240320.0.1', 'archlinux:latest'], platform: { architecture: 'amd64', os: 'linux' }, lastStageFrom: 'scratch' } },
    },
  };
  const { indexDigest } = await dockerLibraryRewrite(exported, build);
  const top = JSON.parse((await runOk('skopeo', ['inspect', '--raw', `oci:${exported}`])).stdout) as { manifests: { digest: string; platform: object; annotations: Record<string, string> }[] };
  assert.notEqual(indexDigest, manifestDigest);
  assert.equal(top.manifests.length, 1);
  assert.equal(top.manifests[0]!.digest, manifestDigest, 'the rewritten index names the same manifest');
  assert.deepEqual(top.manifests[0]!.platform, { architecture: 'amd64', os: 'linux' });
  assert.equal(top.manifests[0]!.annotations['org.opencontainers.image.created'], config.created);
  assert.equal(top.manifests[0]!.annotations['org.opencontainers.image.revision'], c1.commit);
  // What `FROM archlinux@sha256:INDEX` pulls for linux/amd64: skopeo picks the platform's manifest, bytes unchanged.
  await runOk('skopeo', ['copy', '--quiet', '--override-os', 'linux', '--override-arch', 'amd64', '--digestfile', join(work, 'platform.digest'), `oci:${exported}`, `oci:${join(work, 'pulled')}:p`]);
  assert.equal(readFileSync(join(work, 'platform.digest'), 'utf8'), manifestDigest);
  const fromHub = await runCli(['rebuild', `oci:${exported}`, ...mirrors, '--platform', 'linux/amd64'], { cwd: work, env });
  assert.equal(fromHub.code, 0, fromHub.stderr);
  assert.match(fromHub.stdout, new RegExp(`reproducible: ${manifestDigest}`));

  // A second build on the existing branch: a new commit on top (its hash depends on the parent), tree updated.
  const next = JSON.parse((await runCliOk(['build', 'spec.yaml', '-o', 'oci-import:one', '--json', '--source-date-epoch', '1800000000'], { cwd: work, env })).stdout) as typeof one;
  const c3 = next.outputs[0]!.ociImport!;
  assert.equal(c3.parent, c1.commit);
  assert.equal(await git(repo, 'rev-parse', 'HEAD^'), `${c1.commit}\n`);
  assert.equal(await git(repo, 'status', '--porcelain', '--untracked-files=all'), '');
  assert.ok(readFileSync(join(repo, 'index.json'), 'utf8').includes(next.manifest.digest));
  await git(repo, 'fsck', '--strict', '--no-dangling');
  // The same image again on top of the same parent gives the same commit elsewhere: a clone at c1 as the start.
  await runOk('git', ['clone', '--quiet', '--branch', 'dist-amd64', join(work, 'two'), join(work, 'four')]);
  await git(join(work, 'four'), 'reset', '--quiet', '--hard', c1.commit);
  const again = JSON.parse((await runCliOk(['build', 'spec.yaml', '-o', 'oci-import:four', '--json', '--source-date-epoch', '1800000000'], { cwd: work, env })).stdout) as typeof one;
  assert.equal(again.outputs[0]!.ociImport!.commit, c3.commit);
});

test('oci-import hostile targets: a file, a non-git directory, a bad branch, a dirty repository, a subdirectory of a repository, no git: one line, nothing touched', async (t) => {
  const work = await tempDirFor(t, 'oci-import-hostile');
  mkdirSync(join(work, 'rootfs', 'etc'), { recursive: true });
  writeFileSync(join(work, 'rootfs', 'etc', 'hello'), 'hi\n');
  const build = (output: string, extra: Record<string, string | undefined> = {}) => runCli(['build', '--rootfs', 'rootfs', '-o', output], { cwd: work, env: extra });
  const made = await build('oci-import:repo');
  assert.equal(made.code, 0, made.stderr);
  writeFileSync(join(work, 'a-file'), 'x');
  mkdirSync(join(work, 'not-git'));
  writeFileSync(join(work, 'not-git', 'notes'), 'mine');

  const cases: [string, RegExp, () => void][] = [
    ['oci-import:a-file', /^repro-oci: oci-import:a-file: exists and is not a directory\n$/, () => {}],
    ['oci-import:not-git', /^repro-oci: oci-import:not-git: exists, is not empty and is not a git repository\n$/, () => {}],
    ['oci-import:repo:a..b', /invalid branch name "a\.\.b"/, () => {}],
    ['oci-import:repo:with space', /invalid branch name "with space"/, () => {}],
    ['oci-import:repo:-x', /invalid branch name "-x"/, () => {}],
    ['oci-import:repo:x.lock', /invalid branch name "x\.lock"/, () => {}],
    ['oci-import:repo', /^repro-oci: oci-import:repo: has uncommitted changes \(git status\): commit, stash or remove them first\n$/, () => writeFileSync(join(work, 'repo', 'index.json'), '{}')],
    ['oci-import:repo', /has uncommitted changes/, () => writeFileSync(join(work, 'repo', 'stray'), 'x')],
    ['oci-import:repo/blobs', /^repro-oci: oci-import:repo\/blobs: exists, is not empty and is not a git repository\n$/, () => {}],
  ];
  for (const [output, expected, prepare] of cases) {
    await runOk('git', ['-C', join(work, 'repo'), 'reset', '--quiet', '--hard']);
    await runOk('git', ['-C', join(work, 'repo'), 'clean', '--quiet', '-fdx']);
    prepare();
    const before = snapshot(work);
    const result = await build(output);
    assert.equal(result.code, 2, `${output}: ${result.stderr}`);
    assert.match(result.stderr, expected, output);
    assert.equal(result.stderr.trim().split('\n').length, 1, `${output}: one line: ${result.stderr}`);
    assert.equal(snapshot(work), before, `${output}: nothing touched`);
  }

  // No git on PATH: said in one line, before any work.
  const noGit = join(work, 'empty-bin');
  mkdirSync(noGit);
  const missing = await build('oci-import:fresh', { PATH: noGit });
  assert.equal(missing.code, 2);
  assert.equal(missing.stderr, 'repro-oci: oci-import:fresh: needs git, which is not on PATH (Debian: apt-get install git)\n');
  assert.equal(existsSync(join(work, 'fresh')), false);

  // docker-library imports tar or gzip layers only, and one platform's image.
  writeFileSync(join(work, 'zstd.yaml'), 'layer:\n  compression: zstd\n');
  const before = snapshot(work);
  const zstd = await runCli(['build', '--rootfs', 'rootfs', '--config', 'zstd.yaml', '-o', 'oci-import:zstd-repo'], { cwd: work });
  assert.equal(zstd.code, 2);
  assert.match(zstd.stderr, /^repro-oci: oci-import:zstd-repo: docker-library's oci-import takes tar or gzip layers; layer 0 is application\/vnd\.oci\.image\.layer\.v1\.tar\+zstd/);
  assert.equal(snapshot(work), before, 'a refused import leaves nothing');
  assert.deepEqual(readdirSync(work).filter((n) => n.includes('.tmp-')), []);
});

test('oci-import into existing repositories: a bare one, HEAD on another branch, a SHA-256 one, a branch locked mid-write, an index as the root', async (t) => {
  const work = await tempDirFor(t, 'oci-import-repos');
  mkdirSync(join(work, 'rootfs', 'etc'), { recursive: true });
  writeFileSync(join(work, 'rootfs', 'etc', 'hello'), 'hi\n');
  const build = async (output: string): Promise<{ code: number | null; stderr: string; commit?: string }> => {
    const r = await runCli(['build', '--rootfs', 'rootfs', '-o', output, '--json'], { cwd: work });
    return { code: r.code, stderr: r.stderr, ...(r.code === 0 ? { commit: (JSON.parse(r.stdout) as { outputs: { ociImport: { commit: string } }[] }).outputs[0]!.ociImport.commit } : {}) };
  };
  const fresh = await build('oci-import:fresh');
  assert.equal(fresh.code, 0, fresh.stderr);

  // A bare repository (a mirror to push from): the same commit, on the named branch.
  await runOk('git', ['init', '--quiet', '--bare', join(work, 'bare.git')]);
  const bare = await build('oci-import:bare.git:dist-amd64');
  assert.equal(bare.commit, fresh.commit);
  assert.equal(await git(join(work, 'bare.git'), 'rev-parse', 'dist-amd64'), `${fresh.commit}\n`);

  // HEAD on another branch: only dist-amd64 moves (an orphan commit: the same hash); the checkout stays as it was.
  const other = join(work, 'other');
  await runOk('git', ['init', '--quiet', '--initial-branch=notes', other]);
  writeFileSync(join(other, 'README'), 'notes\n');
  await git(other, 'add', 'README');
  await runOk('git', ['-C', other, '-c', 'user.name=n', '-c', 'user.email=n@example.org', 'commit', '--quiet', '-m', 'notes']);
  const notesHead = await git(other, 'rev-parse', 'HEAD');
  const onOther = await build('oci-import:other');
  assert.equal(onOther.commit, fresh.commit);
  assert.equal(await git(other, 'rev-parse', 'HEAD'), notesHead);
  assert.deepEqual(readdirSync(other).sort(), ['.git', 'README']);
  assert.equal(await git(other, 'status', '--porcelain', '--untracked-files=all'), '');

  // SHA-256 repositories cannot give bashbrew a GitCommit.
  await runOk('git', ['init', '--quiet', '--object-format=sha256', join(work, 's256')]);
  const s256 = await build('oci-import:s256');
  assert.equal(s256.code, 2);
  assert.equal(s256.stderr, "repro-oci: oci-import:s256: a sha256 repository; bashbrew's GitCommit is a SHA-1 commit\n");

  // The branch moves last: when git cannot move it (another git holds its lock), the checkout is put back.
  writeFileSync(join(work, 'rootfs', 'etc', 'hello'), 'changed\n');
  const lock = join(work, 'fresh', '.git', 'refs', 'heads', 'dist-amd64.lock');
  writeFileSync(lock, '');
  const treeBefore = snapshot(join(work, 'fresh', 'blobs')) + readFileSync(join(work, 'fresh', 'index.json'), 'utf8');
  const locked = await build('oci-import:fresh');
  assert.equal(locked.code, 2);
  assert.match(locked.stderr, /^repro-oci: oci-import:fresh: git update-ref failed: .*dist-amd64\.lock.*\n$/);
  assert.equal(await git(join(work, 'fresh'), 'rev-parse', 'HEAD'), `${fresh.commit}\n`);
  assert.equal(await git(join(work, 'fresh'), 'status', '--porcelain', '--untracked-files=all'), '');
  assert.equal(snapshot(join(work, 'fresh', 'blobs')) + readFileSync(join(work, 'fresh', 'index.json'), 'utf8'), treeBefore);
  rmSync(lock);
  const unlocked = await build('oci-import:fresh');
  assert.equal(unlocked.code, 0, unlocked.stderr);
  assert.equal(await git(join(work, 'fresh'), 'rev-parse', 'HEAD^'), `${fresh.commit}\n`);

  // copy makes the same commit as build; one platform's image only: an index is refused.
  const layout = join(work, 'layout');
  await runCliOk(['build', '--rootfs', 'rootfs', '-o', `oci:${layout}:x`], { cwd: work });
  await runCliOk(['copy', `oci:${layout}:x`, 'oci-import:copied'], { cwd: work });
  const fresh2 = await build('oci-import:fresh2');
  assert.equal(await git(join(work, 'copied'), 'rev-parse', 'HEAD'), `${fresh2.commit}\n`);
  assert.equal(await git(join(work, 'copied'), 'rev-parse', 'HEAD^{tree}'), await git(join(work, 'fresh'), 'rev-parse', 'HEAD^{tree}'));
  const manifest = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')).manifests[0] as { digest: string; size: number; mediaType: string };
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ ...manifest, annotations: undefined, platform: { architecture: 'amd64', os: 'linux' } }] }));
  writeFileSync(join(layout, 'blobs', 'sha256', sha256(index).slice(7)), index);
  writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha256(index), size: index.length }] }));
  const refused = await runCli(['copy', `oci:${layout}`, 'oci-import:from-index'], { cwd: work });
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /^repro-oci: oci-import:from-index: docker-library's oci-import takes one platform's image, not an index \(application\/vnd\.oci\.image\.index\.v1\+json\): name one platform's manifest\n$/);
  assert.equal(existsSync(join(work, 'from-index')), false);
});

test('oci-import as a source from a stranger\'s repository: its smudge filter, hooks and extra files do not run or count; only the layout is read', async (t) => {
  const work = await tempDirFor(t, 'oci-import-hostile-source');
  mkdirSync(join(work, 'rootfs', 'etc'), { recursive: true });
  writeFileSync(join(work, 'rootfs', 'etc', 'hello'), 'hi\n');
  const made = await runCli(['build', '--rootfs', 'rootfs', '-o', 'oci-import:repo', '-o', 'oci:plain:t'], { cwd: work });
  assert.equal(made.code, 0, made.stderr);
  const digest = made.stdout.split('\n')[0]!;
  // The stranger's repository: a filter on every path in its own config, a checkout hook, and a link beside the layout.
  const repo = join(work, 'repo');
  const mark = join(work, 'ran');
  writeFileSync(join(repo, '.gitattributes'), '* filter=evil\n');
  symlinkSync('/etc/shadow', join(repo, 'stolen'));
  await git(repo, 'add', '.gitattributes', 'stolen');
  await runOk('git', ['-C', repo, '-c', 'user.name=s', '-c', 'user.email=s@example.org', '-c', 'core.hooksPath=/dev/null', 'commit', '--quiet', '-m', 'stranger']);
  await git(repo, 'config', 'filter.evil.smudge', `touch ${mark}; cat`);
  await git(repo, 'config', 'filter.evil.required', 'true');
  await git(repo, 'config', 'core.hooksPath', join(work, 'hooks'));
  mkdirSync(join(work, 'hooks'));
  writeFileSync(join(work, 'hooks', 'post-checkout'), `#!/bin/sh\ntouch ${mark}\n`, { mode: 0o755 });
  const branch = (await git(repo, 'rev-parse', '--abbrev-ref', 'HEAD')).trim();
  const read = await runCli(['inspect', `oci-import:repo:${branch}`, '--json'], { cwd: work });
  assert.equal(read.code, 0, read.stderr);
  assert.equal((JSON.parse(read.stdout) as { digest: string }).digest, digest, 'the image as built');
  assert.equal(existsSync(mark), false, 'no filter or hook of the repository ran');
  const copied = await runCli(['copy', `oci-import:repo:${branch}`, 'oci:copy:t'], { cwd: work });
  assert.equal(copied.code, 0, copied.stderr);
  assert.equal(existsSync(mark), false);
});
