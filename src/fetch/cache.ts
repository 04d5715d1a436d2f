import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { markIsGone, ownerMark } from '../util/process-owner.js';
import { digestHex, type Digest } from '../oci/digest.js';
import { VerifiedFile } from './verified-file.js';

/**
 * The content-addressed cache every command shares, possibly several processes at once:
 * - `blobs/sha256/<hex>` holds bytes that were verified on the way in; they are hashed in full again before each
 *   use (the directory is not trusted to stay intact), and an entry that does not match is evicted.
 * - `partial/<hex>.<pid>-<random>.part` is one process's download; a partial whose process is gone is adopted
 *   by the next download of the same blob, which resumes it.
 * Everything enters and leaves by rename(), so no process ever sees another's half-written or half-removed file.
 * Location: --cache, else $REPRO_OCI_CACHE, else $XDG_CACHE_HOME/repro-oci, else ~/.cache/repro-oci.
 */
export class ContentCache {
  /** Directories this process made or found already: mkdir once each, not once per entry. */
  private readonly madeDirs = new Set<string>();

  constructor(readonly root: string) {}

  private async makeDir(dir: string): Promise<void> {
    if (this.madeDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.madeDirs.add(dir);
  }

  static at(dir?: string): ContentCache {
    const env = process.env;
    const root = dir ?? env.REPRO_OCI_CACHE ?? join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'repro-oci');
    return new ContentCache(root);
  }

  path(digest: Digest): string {
    return join(this.root, 'blobs', 'sha256', digestHex(digest));
  }

  /**
   * The path of the cached blob after hashing all of it, or undefined when it is not cached. An entry that does
   * not match (truncated, altered, forged, not a file) is evicted, which `log` is told in one line.
   */
  async lookup(digest: Digest, size: number | undefined, log: (message: string) => void): Promise<string | undefined> {
    const path = this.path(digest);
    let entry: VerifiedFile;
    let why: string | undefined;
    try {
      entry = await VerifiedFile.open(path, digest, size);
      why = await entry.mismatch();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw cacheError(path, err);
    }
    if (!why) return path;
    await this.evict(path, entry.identity);
    log(`cache: ${path} was corrupt (${why}): removed, fetching again`);
    return undefined;
  }

  /**
   * A new partial file of this process for `digest`: a dead process's partial when there is one to resume
   * (taken by rename, so two processes never adopt the same one; other dead ones are removed), else a name
   * that does not exist yet.
   */
  async partial(digest: Digest, options: { resume?: boolean } = {}): Promise<string> {
    const dir = join(this.root, 'partial');
    const mine = join(dir, `${digestHex(digest)}.${uniqueSuffix()}.part`);
    await this.makeDir(dir).catch((err: unknown) => {
      throw cacheError(dir, err);
    });
    // Small answers (`resume: false`) are never resumed: no scan of the directory, which thousands would repeat.
    if (options.resume === false) return mine;
    const ours = new RegExp(`^${digestHex(digest)}\\.(.+)-[0-9a-f]{12}\\.part$`);
    let adopted = false;
    for (const name of await readdir(dir)) {
      const owner = ours.exec(name)?.[1];
      if (owner === undefined || !markIsGone(owner)) continue;
      if (adopted) await rm(join(dir, name), { force: true });
      else adopted = await rename(join(dir, name), mine).then(() => true, () => false);
    }
    return mine;
  }

  /**
   * Moves a complete partial into the cache after hashing all of it and running `check` on it (a signature).
   * A mismatch or a failed check deletes it. Another process may have stored the same blob meanwhile: rename()
   * replaces it atomically with identical bytes, and a reader holding it open keeps reading what it opened.
   */
  async promote(partial: string, digest: Digest, size: number | undefined, what: string, check?: (file: string) => Promise<void>): Promise<string> {
    const target = this.path(digest);
    try {
      await (await VerifiedFile.open(partial, digest, size)).verify(what);
      await check?.(partial);
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
    await this.place(partial, target);
    return target;
  }

  /**
   * Renames a complete file of this process to `target` in one step (its directory made first), replacing what
   * was there: a reader sees the old file or the new one, never a mix.
   */
  async place(partial: string, target: string): Promise<void> {
    await this.makeDir(dirname(target));
    try {
      await rename(partial, target);
    } catch (err) {
      // Something that is not a file took the name meanwhile (a directory): it goes, then the file goes in.
      if (!['EISDIR', 'ENOTEMPTY', 'EEXIST', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '')) throw cacheError(target, err);
      await this.evict(target);
      await rename(partial, target).catch((again: unknown) => {
        throw cacheError(target, again);
      });
    }
  }

  /**
   * Removes an entry without disturbing a process that is reading it: renamed away first (readers keep their
   * open file), then deleted. With `identity`, only that very file goes: a copy another process stored
   * meanwhile is put back. Leftovers of processes that died while evicting are deleted too.
   */
  async evict(path: string, identity?: string): Promise<void> {
    const stillJudged = async (at: string): Promise<boolean> => {
      const info = await lstat(at).catch(() => undefined);
      return info !== undefined && (identity === undefined || `${info.dev}:${info.ino}` === identity);
    };
    if (!(await stillJudged(path))) return; // already gone, or replaced by another process's copy
    const trash = join(this.root, 'trash');
    await mkdir(trash, { recursive: true });
    const away = join(trash, uniqueSuffix());
    try {
      await rename(path, away);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw cacheError(path, err);
    }
    if (!(await stillJudged(away))) {
      // Another process stored a fresh copy just before the rename: it goes back (it is judged on use).
      await rename(away, path).catch(() => undefined);
    }
    for (const name of await readdir(trash)) {
      const owner = /^(.+)-[0-9a-f]{12}$/.exec(name)?.[1];
      if (join(trash, name) === away || (owner !== undefined && markIsGone(owner))) await rm(join(trash, name), { recursive: true, force: true });
    }
  }
}

/**
 * `<owner mark>-<random>`: unique among processes sharing the cache, and tells a later process whether its owner
 * is gone (util/process-owner: pid, start time, boot and pid namespace, so that a reused pid or a process of
 * another container sharing the cache is never taken for dead). Without /proc: `unowned-…`, never judged.
 */
function uniqueSuffix(): string {
  return `${ownerMark() ?? 'unowned'}-${randomBytes(6).toString('hex')}`;
}

export function cacheError(path: string, err: unknown): UserError {
  const code = (err as NodeJS.ErrnoException).code;
  return new UserError(`cache: ${path}: ${code ?? (err as Error).message}`, { cause: err });
}
