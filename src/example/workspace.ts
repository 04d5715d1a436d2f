import { copyFile, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { exists, settled, siblingTempPath } from '../util/fs.js';
import { checkNewDirectory } from '../util/writable.js';
import { EXAMPLE_DIR, generateExampleArchive, writeExample, type GeneratedRepository } from './generate.js';

/**
 * A workspace made by `repro-oci example --dir DIR`: the bundled example kept where a user can change it and build
 * again. Everything in it is relative to it, so it can be moved; its README.md says what to run next.
 */
export const WORKSPACE_FILES = {
  packages: 'packages.yaml',
  spec: 'spec.yaml',
  lock: 'spec.lock.json',
  readme: 'README.md',
  /** The OCI image layout; the example's image is tagged `hello`. */
  image: 'image',
} as const;

/** The tag of the example's image in the workspace's layout, and the tag the README builds the changed image as. */
export const WORKSPACE_TAG = 'hello';
const CHANGED_TAG = 'changed';

/** The flat mirrors (one per repository) that hold the workspace's packages by file name, as `--mirror` takes them. */
export const WORKSPACE_MIRRORS = ['repo/hello-core/os/x86_64', 'repo/hello-extra/os/x86_64'];

/**
 * The workspace's README.md. Its `sh` blocks are run as written, in order, in the workspace (test/example-workspace
 * runs them and checks each `# exit N` it states), so every command here must stay true.
 */
export function workspaceReadme(): string {
  const mirrors = WORKSPACE_MIRRORS.map((m) => `--mirror ${m}`).join(' ');
  return `# The repro-oci example, as a workspace

\`repro-oci example --dir\` made this directory: the bundled example, kept for you to change and build again.
Everything in it is relative to it; you may move it.

| path | what it is |
| --- | --- |
| \`${WORKSPACE_FILES.packages}\` | the example's Arch packages: names, versions, dependencies, files |
| \`repo/\` | the package archive generated from \`${WORKSPACE_FILES.packages}\`: two local pacman repositories (\`repo/hello-core/os/x86_64/\`, \`repo/hello-extra/os/x86_64/\`), package files and databases |
| \`${WORKSPACE_FILES.spec}\` | the image spec: its repositories (\`repo/$repo/os/$arch\`), the packages to install, the image settings |
| \`${WORKSPACE_FILES.lock}\` | the lock: every package file, its sha256 and its (relative) URL |
| \`${WORKSPACE_FILES.image}/\` | an OCI image layout; the tag \`${WORKSPACE_TAG}\` is the image built from the lock |

Run the commands below in this directory, in order. \`repro-oci\` is the command you ran \`example\` with: as
installed by \`npm install -g\`, or write \`npx repro-oci\` while this directory is inside the project's checkout (as
the project README's \`hello-ws\` is). The comment after each command says what it does and its exit status.

## Rebuild the image from itself

The image carries its recipe (spec, lock, SOURCE_DATE_EPOCH); \`rebuild\` trusts nothing else. The recipe names
the packages by paths relative to the spec it was built from, which a rebuild does not resolve: \`--mirror\` says
where to find them by file name (from another directory, give the paths to this one).

\`\`\`sh
repro-oci rebuild oci:${WORKSPACE_FILES.image}:${WORKSPACE_TAG} ${mirrors}   # exit 0, prints: reproducible: sha256:…
\`\`\`

## Change a package

Change libgreeting's greeting and raise its pkgrel (2.1-3 → 2.1-4), as a packager would; then generate \`repo/\`
again from \`${WORKSPACE_FILES.packages}\`. The old package file stays, so the old image still rebuilds; the
databases list only the new one.

\`\`\`sh
sed -i -e 's/hello, reproducible world/hello, changed world/' -e 's/"2.1-3"/"2.1-4"/' ${WORKSPACE_FILES.packages}   # exit 0
repro-oci example --dir . --repo-only   # exit 0, prints each repository's package files
\`\`\`

## Lock and build again

\`lock --update\` moves the lock to what the repositories now hold and prints each change; it exits 1 because the
lock changed (0 would mean "no change"). \`build\` adds the new image to the layout under another tag.

\`\`\`sh
repro-oci lock ${WORKSPACE_FILES.spec} --update   # exit 1, prints: libgreeting 2.1-3 → 2.1-4
repro-oci build ${WORKSPACE_FILES.spec} -o oci:${WORKSPACE_FILES.image}:${CHANGED_TAG}   # exit 0, prints the new image's digest
\`\`\`

## See \`diff\` explain it

\`diff\` compares the two images down to their files and pacman's view of them: the package that changed, and each
differing file with the package that owns it. It exits 1 because they differ.

\`\`\`sh
repro-oci diff oci:${WORKSPACE_FILES.image}:${WORKSPACE_TAG} oci:${WORKSPACE_FILES.image}:${CHANGED_TAG}   # exit 1, names libgreeting 2.1-3 → 2.1-4 and usr/lib/libgreeting.txt
\`\`\`

## Both images still rebuild

\`\`\`sh
repro-oci rebuild oci:${WORKSPACE_FILES.image}:${WORKSPACE_TAG} ${mirrors}   # exit 0: the old packages are still in repo/
repro-oci rebuild oci:${WORKSPACE_FILES.image}:${CHANGED_TAG} ${mirrors}   # exit 0
\`\`\`

Next: edit \`${WORKSPACE_FILES.spec}\` (packages, \`image:\` settings, setup) and build again; see \`repro-oci --help\`,
\`man repro-oci\`, and the project's README for real Arch Linux specs (\`examples/archlinux-base.yaml\`).
`;
}

/**
 * Writes the workspace's sources into `dir` (which exists and is empty): packages.yaml (the bundled one), the
 * package archive generated from it, spec.yaml and README.md. Returns the spec's path.
 */
export async function writeWorkspaceSources(dir: string): Promise<string> {
  const spec = await writeExample(dir);
  await copyFile(join(EXAMPLE_DIR, 'packages.yaml'), join(dir, WORKSPACE_FILES.packages));
  await writeFile(join(dir, WORKSPACE_FILES.readme), workspaceReadme());
  return spec;
}

/** `example --dir DIR --repo-only`: the package archive generated again from the workspace's (edited) packages.yaml. */
export async function regenerateWorkspaceRepository(dir: string): Promise<GeneratedRepository[]> {
  const packages = join(dir, WORKSPACE_FILES.packages);
  if (!(await exists(packages))) throw new UserError(`--repo-only: ${packages} does not exist (make a workspace first: repro-oci example --dir DIR)`);
  return generateExampleArchive(packages, dir);
}

/** Checks, before any work, that `dir` can become a workspace: new, or an empty directory, in a writable place. */
export async function checkWorkspaceDirectory(dir: string): Promise<void> {
  if (await exists(join(dir, WORKSPACE_FILES.packages))) {
    throw new UserError(`--dir ${dir}: already a workspace (to generate its package archive again after editing ${WORKSPACE_FILES.packages}: repro-oci example --dir ${dir} --repo-only)`);
  }
  await checkNewDirectory(dir, `--dir ${dir}`);
}

/**
 * A directory beside `dir` to make the workspace in, and `commit` to put it in place: renamed to `dir`, or — when
 * `dir` is an existing empty directory, perhaps the user's current one — its entries moved into it. An interrupted
 * or failed run leaves nothing at `dir`.
 */
export function stagedWorkspace(dir: string): { path: string; commit: () => Promise<void>; discard: () => Promise<void> } {
  const target = resolve(dir);
  const path = siblingTempPath(target);
  return {
    path,
    commit: async () => {
      const existing = await stat(target).catch(() => undefined);
      if (existing?.isDirectory()) {
        for (const name of await readdir(path)) await rename(join(path, name), join(target, name));
        await rmdir(path);
      } else {
        await rename(path, target);
      }
      settled(path);
    },
    discard: async () => {
      await rm(path, { recursive: true, force: true });
      settled(path);
    },
  };
}
