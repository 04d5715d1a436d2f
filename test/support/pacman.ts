import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoAddUnavailable } from './makepkg.js';
import { run, runCli, runOk, type RunResult } from './cli.js';

/**
 * Real pacman 6.0.2 (Debian's pacman-package-manager) next to repro-oci: a pacman.conf with per-repository
 * SigLevels, a gpgdir populated by real pacman-key, `pacman -Sy` into a temporary root; and the same through
 * `repro-oci lock` + `install --root`. Each returns the outcome and the local database entries written.
 */

export const TRANSACTION = ['--noconfirm', '--noprogressbar', '--noscriptlet'];

/** Why pacman cannot run here as these helpers need it, or undefined. */
export function pacmanUnavailable(): string | undefined {
  if (!existsSync('/usr/bin/pacman') || !existsSync('/usr/bin/pacman-key')) return 'pacman is not installed';
  if (process.getuid?.() !== 0) return 'pacman -S into a temp root and pacman-key need root here';
  return repoAddUnavailable();
}

/** A copy of pacman-key that populates from `importDir` (Debian's reads /usr/share/keyrings only). */
export function pacmanKeyFrom(importDir: string, into: string): string {
  const script = readFileSync('/usr/bin/pacman-key', 'utf8');
  const line = "local KEYRING_IMPORT_DIR='/usr/share/keyrings'";
  assert.ok(script.includes(line), 'pacman-key still names its import directory the way this test expects');
  const path = join(into, 'pacman-key');
  writeFileSync(path, script.replace(line, `local KEYRING_IMPORT_DIR='${importDir}'`), { mode: 0o755 });
  return path;
}

/** A pacman gpgdir set up by real `pacman-key --init` and `--populate NAME` from `keyringDir`. */
export async function populatedGpgdir(dir: string, keyringDir: string, name: string): Promise<{ gpgdir: string; populate: RunResult }> {
  const gpgdir = join(dir, 'gnupg');
  mkdirSync(gpgdir, { recursive: true });
  const pacmanKey = pacmanKeyFrom(keyringDir, dir);
  await runOk(pacmanKey, ['--gpgdir', gpgdir, '--init'], { env: { LC_ALL: 'C' } });
  const populate = await run(pacmanKey, ['--gpgdir', gpgdir, '--populate', name], { env: { LC_ALL: 'C' } });
  return { gpgdir, populate };
}

export interface RepoConf {
  name: string;
  /** A local directory holding NAME.db and the packages. */
  server: string;
  /** The repository's own SigLevel line, if any. */
  sigLevel?: string;
}

export interface InstallOutcome {
  result: RunResult;
  root: string;
  /** The local database's desc of `name-version`, when it was installed. */
  desc(nameVersion: string): string | undefined;
}

function outcome(result: RunResult, root: string): InstallOutcome {
  return {
    result,
    root,
    desc: (nameVersion) => {
      const path = join(root, 'var/lib/pacman/local', nameVersion, 'desc');
      return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
    },
  };
}

/** `pacman -Sy PACKAGES` into `dir`/root with [options] `sigLevel` and the repositories in order. */
export async function pacmanSync(dir: string, gpgdir: string, sigLevel: string, repos: readonly RepoConf[], packages: readonly string[]): Promise<InstallOutcome> {
  const root = join(dir, 'root');
  for (const sub of ['root/var/lib/pacman', 'cache', 'hooks']) mkdirSync(join(dir, sub), { recursive: true });
  const sections = repos.flatMap((r) => [`[${r.name}]`, ...(r.sigLevel === undefined ? [] : [`SigLevel = ${r.sigLevel}`]), `Server = file://${r.server}`]);
  writeFileSync(join(dir, 'pacman.conf'), ['[options]', 'Architecture = x86_64', `SigLevel = ${sigLevel}`, '', ...sections, ''].join('\n'));
  const args = ['--root', root, '--dbpath', join(root, 'var/lib/pacman'), '--config', join(dir, 'pacman.conf'), '--cachedir', join(dir, 'cache'), '--hookdir', join(dir, 'hooks'), '--gpgdir', gpgdir];
  return outcome(await run('pacman', [...args, ...TRANSACTION, '-Sy', ...packages], { env: { LC_ALL: 'C' } }), root);
}

/**
 * The same through repro-oci: a spec with the repositories (each with its own `sigLevel` when given) and the
 * keyring, then `lock` and `install --root`, with `extra` arguments for both. The lock's failure, else the install's.
 */
export async function reproLockInstall(
  dir: string,
  keyring: { dir: string; name: string },
  sigLevel: string,
  repos: readonly RepoConf[],
  packages: readonly string[],
  options: { extra?: string[]; sourceDateEpoch?: number } = {},
): Promise<InstallOutcome> {
  mkdirSync(dir, { recursive: true });
  const spec = join(dir, 'spec.yaml');
  const repositories = repos.map((r) => ({ name: r.name, servers: [r.server], ...(r.sigLevel === undefined ? {} : { sigLevel: r.sigLevel }) }));
  writeFileSync(spec, JSON.stringify({ architecture: 'x86_64', repositories, packages, sigLevel, keyring }));
  const env = { REPRO_OCI_CACHE: join(dir, 'cache'), SOURCE_DATE_EPOCH: String(options.sourceDateEpoch ?? 1700000000) };
  const root = join(dir, 'root');
  const locked = await runCli(['lock', spec, ...(options.extra ?? [])], { env });
  if (locked.code !== 0) return outcome(locked, root);
  return outcome(await runCli(['install', join(dir, 'spec.lock.json'), '--root', root, '--keyring', keyring.dir, ...(options.extra ?? [])], { env }), root);
}

/** A desc without pacman's clock (its %INSTALLDATE% is the time of the install; ours is SOURCE_DATE_EPOCH). */
export function withoutInstallDate(desc: string): string {
  return desc.replace(/%INSTALLDATE%\n\d+\n\n/, '%INSTALLDATE%\nN\n\n');
}
