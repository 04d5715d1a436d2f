import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJsonBytes } from '../../src/oci/canonical-json.js';
import { sha256 } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import type { Descriptor, ImageConfig, Index, Manifest } from '../../src/oci/types.js';
import type { TarSourceEntry } from '../../src/tar/entry.js';
import { encodeHeader } from '../../src/tar/writer.js';
import { CLI, run, type RunOptions, type RunResult } from './cli.js';

/** zstd's largest block: an RLE block of this many zeros costs 4 bytes on disk. */
const ZSTD_BLOCK = 128 * 1024;

/** One zstd block header (3 bytes, little-endian): last flag, type (0 raw, 1 RLE), size. */
function blockHeader(last: boolean, type: 0 | 1, size: number): Buffer {
  const value = (size << 3) | (type << 1) | (last ? 1 : 0);
  return Buffer.from([value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff]);
}

/**
 * A zstd frame written block by block: raw blocks for `raw` parts and RLE blocks for `zeros`, so that gigabytes
 * of zeros cost a few hundred kilobytes and no time to make (what a decompression bomb is).
 */
export function zstdFrame(parts: ({ raw: Buffer } | { zeros: number })[]): Buffer {
  const blocks: { type: 0 | 1; size: number; body: Buffer }[] = [];
  for (const part of parts) {
    if ('raw' in part) {
      for (let at = 0; at < part.raw.length; at += ZSTD_BLOCK) {
        const body = part.raw.subarray(at, at + ZSTD_BLOCK);
        blocks.push({ type: 0, size: body.length, body });
      }
    } else {
      for (let left = part.zeros; left > 0; left -= ZSTD_BLOCK) blocks.push({ type: 1, size: Math.min(left, ZSTD_BLOCK), body: Buffer.from([0]) });
    }
  }
  // Magic; frame header descriptor 0 (no content size, no checksum); window descriptor 2^17 (one block).
  const out: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3])];
  blocks.forEach((b, i) => out.push(blockHeader(i === blocks.length - 1, b.type, b.size), b.body));
  return Buffer.concat(out);
}

/** A member of a hand-made tar: small files carry content; `zeros` is a file of that many zero bytes. */
export type BombMember = { path: string; type?: 'dir' | 'file'; content?: string | Buffer } | { path: string; zeros: number };

function header(path: string, type: 'dir' | 'file', size: number): Buffer {
  const entry: TarSourceEntry = { path, type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, mtime: 1700000000, size };
  return encodeHeader(entry);
}

function tarParts(members: BombMember[]): ({ raw: Buffer } | { zeros: number })[] {
  const parts: ({ raw: Buffer } | { zeros: number })[] = [];
  let pending: Buffer[] = [];
  const flush = (): void => {
    if (pending.length) parts.push({ raw: Buffer.concat(pending) });
    pending = [];
  };
  for (const m of members) {
    if ('zeros' in m) {
      pending.push(header(m.path, 'file', m.zeros));
      flush();
      parts.push({ zeros: Math.ceil(m.zeros / 512) * 512 });
    } else {
      const content = Buffer.from(m.content ?? '');
      pending.push(header(m.path, m.type ?? 'file', m.type === 'dir' ? 0 : content.length));
      if (m.type !== 'dir') pending.push(content, Buffer.alloc((512 - (content.length % 512)) % 512));
    }
  }
  flush();
  parts.push({ zeros: 1024 });
  return parts;
}

/** A tar compressed as zstd by hand, its zero-filled members as RLE blocks. */
export function zstdTar(members: BombMember[]): Buffer {
  return zstdFrame(tarParts(members));
}

/** The same tar uncompressed (for small members only). */
export function plainTar(members: BombMember[]): Buffer {
  return Buffer.concat(tarParts(members).map((p) => ('raw' in p ? p.raw : Buffer.alloc(p.zeros))));
}

/** The digest of the uncompressed tar (a layer's diffID), hashed piece by piece: gigabytes of zeros cost no memory. */
export function tarDiffId(members: BombMember[]): string {
  const hash = createHash('sha256');
  const zeros = Buffer.alloc(1024 * 1024);
  for (const part of tarParts(members)) {
    if ('raw' in part) hash.update(part.raw);
    else for (let left = part.zeros; left > 0; left -= zeros.length) hash.update(zeros.subarray(0, Math.min(left, zeros.length)));
  }
  return `sha256:${hash.digest('hex')}`;
}

/**
 * Runs the CLI with a hook that reports the process's peak resident memory at exit, read from the kernel's
 * accounting (getrusage), so a test can bound what a command costs.
 */
export async function peakRss(args: readonly string[], options: RunOptions = {}): Promise<RunResult & { peakRssMb: number }> {
  const hook = `data:text/javascript,${encodeURIComponent("process.on('exit', () => process.stderr.write(`\\npeak-rss-kb=${process.resourceUsage().maxRSS}\\n`));")}`;
  const result = await run(process.execPath, ['--import', hook, CLI, ...args], options);
  const match = /\npeak-rss-kb=(\d+)\n$/.exec(result.stderr);
  if (!match) throw new Error(`no peak RSS reported (exit ${result.code ?? result.signal}): ${result.stderr}`);
  return { ...result, stderr: result.stderr.slice(0, match.index), peakRssMb: Math.round(Number(match[1]) / 1024) };
}

/** Writes a blob into a layout directory under its digest. */
function putBlob(dir: string, bytes: Buffer): Descriptor {
  const digest = sha256(bytes);
  writeFileSync(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
  return { mediaType: MediaType.OciManifest, digest, size: bytes.length };
}

/**
 * Writes a one-image OCI layout by hand (no verification, so tests can say anything): each layer's blob and the
 * diffID its config lists. Returns the manifest digest; the image is tagged `t`.
 */
export function writeLayout(dir: string, layers: { blob: Buffer; diffId: string; mediaType?: string }[]): string {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const config: ImageConfig = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId as `sha256:${string}`) } };
  const configDescriptor = { ...putBlob(dir, canonicalJsonBytes(config)), mediaType: MediaType.OciConfig };
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: configDescriptor,
    layers: layers.map((l) => ({ ...putBlob(dir, l.blob), mediaType: l.mediaType ?? MediaType.OciLayerZstd })),
  };
  const root = putBlob(dir, canonicalJsonBytes(manifest));
  const index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [{ ...root, annotations: { 'org.opencontainers.image.ref.name': 't' } }] };
  writeFileSync(join(dir, 'index.json'), canonicalJsonBytes(index));
  return root.digest;
}
