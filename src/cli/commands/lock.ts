import type { Command } from 'commander';
import { checkLockFile, lockSpecFile, staleLockMessage, type LockSpecResult } from '../../lock/lock.js';
import { UserError } from '../../errors.js';
import { note, printJson } from '../output.js';
import type { KeyExpiry } from '../../pacman/signature.js';
import { addRegistryOptions, keyExpiryOption, transportOptions, type RegistryCliOptions } from '../options.js';
import { DEFAULT_ARCHIVE_URL, lockFromImage } from '../../lock/from-image.js';

interface LockCliOptions extends RegistryCliOptions {
  output?: string;
  fromImage?: string;
  archive?: string;
  keyring?: string;
  keyringName?: string;
  platform?: string;
  update?: boolean;
  check?: boolean;
  snapshot?: string;
  json?: boolean;
  keyExpiry: KeyExpiry;
}

/** `lock --json` (docs/json-output.md): where the lock is, whether this run changed it, what moved, its packages. */
export function lockJson(result: Pick<LockSpecResult, 'lock' | 'path'> & Partial<LockSpecResult>): object {
  const { lock, previous } = result;
  return {
    lock: result.path,
    changed: result.changed ?? true,
    ...(lock.archive ? { archive: lock.archive } : {}),
    ...(previous ? { previous: { ...(previous.archive ? { archive: previous.archive } : {}), packages: previous.packages.length } } : {}),
    ...(result.packageChanges ? { changes: result.packageChanges.map((c) => ({ kind: c.kind, name: c.name, ...(c.before !== undefined ? { before: c.before } : {}), ...(c.after !== undefined ? { after: c.after } : {}) })) } : {}),
    packages: lock.packages.map((p) => ({
      name: p.name,
      version: p.version,
      arch: p.arch,
      repository: p.repository,
      filename: p.filename,
      sha256: p.sha256,
      csize: p.csize,
      isize: p.isize,
      reason: p.reason,
    })),
  };
}

const FROM_IMAGE_DEFAULT_OUTPUT = 'image.lock.json';

/** `lock --from-image REF`: every package of the image's database checked against the archive, or none written. */
async function lockImage(specPath: string | undefined, opts: LockCliOptions): Promise<void> {
  if (specPath !== undefined) throw new UserError('--from-image locks an image, not a spec: give one or the other');
  if (opts.update || opts.check || opts.snapshot !== undefined) throw new UserError('--from-image does not go with --update, --check or --snapshot');
  if (opts.keyring === undefined) throw new UserError('--from-image verifies every package signature: give the keyring (--keyring DIR, e.g. /usr/share/pacman/keyrings)');
  const result = await lockFromImage(opts.fromImage!, opts.output ?? FROM_IMAGE_DEFAULT_OUTPUT, {
    keyringDir: opts.keyring,
    ...(opts.keyringName !== undefined ? { keyringName: opts.keyringName } : {}),
    ...(opts.archive !== undefined ? { archive: opts.archive } : {}),
    ...(opts.platform !== undefined ? { platform: opts.platform } : {}),
    transport: transportOptions(opts),
    keyExpiry: opts.keyExpiry,
    log: note,
  });
  if (opts.json) printJson(lockJson(result));
  else process.stdout.write(`locked ${result.lock.packages.length} packages from ${opts.fromImage} to ${result.path}\n`);
}

const EXIT_STATUS = 'Exit status: 0 the lock is current (--check) or unchanged (--update); 1 it is missing or stale (--check) or was changed (--update); 2 an error (with --from-image: a package refused, all of them named, and nothing written).';

export function registerLock(program: Command): void {
  const command = program
    .command('lock')
    .description("Resolve a spec against its repositories (or archive snapshot) into a lock of exact package files; or, with --from-image, lock the packages an image's pacman database lists, each fetched from the Arch Linux Archive and checked against it")
    .argument('[spec]', 'SPEC.yaml (see schemas/spec.schema.json); not with --from-image')
    .option('-o, --output <file>', `lock file to write, or to compare with (default: SPEC.lock.json next to the spec; with --from-image, ${FROM_IMAGE_DEFAULT_OUTPUT})`)
    .option('--from-image <ref>', "lock an image without a spec: its pacman local database (all layers, whiteouts applied), every package fetched from the archive, its signature verified, and its .PKGINFO and .MTREE equal to the database's, or the package is refused")
    .option('--archive <url>', `with --from-image: the Arch Linux Archive holding packages/<first letter>/<name>/<file> and .sig (default ${DEFAULT_ARCHIVE_URL})`)
    .option('--keyring <dir>', 'with --from-image: keyring directory the package signatures must verify against (NAME.gpg, NAME-trusted, NAME-revoked)')
    .option('--keyring-name <name>', 'with --from-image: the keyring NAME (default archlinux)')
    .option('--platform <os/arch>', 'with --from-image: platform manifest to read when the reference names an index (default: the only image, else linux/amd64)');
  addRegistryOptions(command)
    .option('--update', 'resolve again, compare with the existing lock and print what changed (added, removed, name old → new), or "no change"')
    .option('--check', 'resolve nothing: check that the lock exists and was made for this spec (for CI)')
    .option('--snapshot <date>', 'resolve against this archive snapshot (YYYY-MM-DD) instead of the one in the spec')
    .addOption(keyExpiryOption())
    .option('--json', 'print the lock path, whether it changed, the changes (with --update) and the packages as JSON; with --check, the path and state')
    .addHelpText('after', `\n${EXIT_STATUS}`)
    .action(async (specPath: string | undefined, opts: LockCliOptions) => {
      if (opts.fromImage !== undefined) return lockImage(specPath, opts);
      for (const [given, flag] of [[opts.archive, '--archive'], [opts.keyring, '--keyring'], [opts.keyringName, '--keyring-name'], [opts.platform, '--platform'], [opts.creds, '--creds'], [opts.insecure, '--insecure']] as const) {
        if (given !== undefined) throw new UserError(`${flag} goes with --from-image`);
      }
      if (specPath === undefined) throw new UserError('lock needs a SPEC, or --from-image REF');
      if (opts.check) {
        if (opts.update || opts.snapshot !== undefined) throw new UserError('--check resolves nothing: it does not go with --update or --snapshot');
        const { path, state } = await checkLockFile(specPath, opts.output);
        if (opts.json) printJson({ lock: path, state });
        else process.stdout.write(state === 'missing' ? `no lock at ${path}\n` : state === 'stale' ? `${staleLockMessage(path)}\n` : `lock ${path} is current\n`);
        process.exitCode = state === 'current' ? 0 : 1;
        return;
      }
      const result = await lockSpecFile(specPath, { output: opts.output, update: opts.update, snapshot: opts.snapshot, keyExpiry: opts.keyExpiry, log: note });
      const { lock, path: output, previous, changes, changed } = result;
      if (previous && changed) process.exitCode = 1;
      if (opts.json) {
        printJson(lockJson(result));
        return;
      }
      if (!previous) {
        process.stdout.write(`locked ${lock.packages.length} packages to ${output}\n`);
        return;
      }
      if (!changed) {
        process.stdout.write('no change\n');
        return;
      }
      const from = previous.archive?.date;
      const to = lock.archive?.date;
      process.stdout.write(from && to && from !== to ? `snapshot ${from} → ${to}\n` : '');
      process.stdout.write(changes?.length ? `${changes.join('\n')}\n` : 'no package changes; other fields changed (spec digest, databases, keyring or URLs)\n');
    });
}
