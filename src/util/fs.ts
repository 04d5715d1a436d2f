import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { UserError } from '../errors.js';

/** A temporary sibling of `path`, on the same filesystem so that rename() is atomic. */
export function siblingTempPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Writes a file all-or-nothing: a temp sibling, fsync, then rename over the target. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const temp = siblingTempPath(path);
  try {
    await writeFile(temp, data, { mode: 0o644 });
    const handle = await open(temp, 'r+');
    await handle.sync();
    await handle.close();
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/** Streams into a temp sibling and renames it into place only when the whole stream succeeded. */
export async function streamToFileAtomic(path: string, source: Readable | AsyncIterable<Buffer>, transforms: NodeJS.ReadWriteStream[] = []): Promise<void> {
  const temp = siblingTempPath(path);
  try {
    await pipeline([source, ...transforms, createWriteStream(temp, { mode: 0o644 })] as NodeJS.ReadWriteStream[]);
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/** A private scratch directory, removed by the returned cleanup. */
export async function makeScratchDir(prefix: string): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `repro-oci-${prefix}-`));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

export async function ensureDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true });
}

/** Reads a whole stream that is known to be small (JSON documents), refusing more than `limit` bytes. */
export async function readSmall(source: AsyncIterable<Buffer>, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of source) {
    total += chunk.length;
    if (total > limit) throw new UserError(`${what}: larger than the ${limit}-byte limit`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
