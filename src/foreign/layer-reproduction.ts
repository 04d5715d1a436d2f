import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Duplex, PassThrough, Readable, Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { getCompressor } from '../compress/index.js';
import { decompressAuto, detectCompression } from '../compress/index.js';
import { UserError } from '../errors.js';
import { verifiedStream, type Digest } from '../oci/digest.js';
import { displayName } from '../util/raw-name.js';
import { detectTarConvention, writeTarInConvention, type ForeignTarEntry, type TarConvention } from './tar-convention.js';
import { walkTar, type RawEnd, type RawMember } from './tar-walk.js';

/**
 * The `layer` and `digest` levels of checking a foreign image (issue 13): the rootfs layer written again from the
 * verified tree in the conventions of the tool that wrote it, its diffID compared, and where the compressor is one
 * repro-oci can run byte for byte, the compressed blob's digest too. Every pass streams; the blob is checked
 * against its descriptor and its diffID before anything is concluded from it.
 */

export interface LayerBlob {
  digest: Digest;
  size: number;
  mediaType?: string;
  /** Opens the blob from its first byte; called once per pass (up to three times, plus one per compressor tried). */
  open(): AsyncIterable<Buffer>;
}

export interface FirstDifference {
  /** The member (path without `./`) where the layers first part, or `(end of archive)`. */
  member: string;
  /** Offset in the uncompressed layer of that member's first header block. */
  offset: number;
  /** What differs: `PAX record ctime`, `content`, `mode`, `not in the tree`, … */
  what: string;
}

export type DiffIdVerdict =
  | { verdict: 'identical'; diffID: Digest }
  | { verdict: 'differs'; diffID: Digest; rebuilt: Digest; first: FirstDifference }
  /** The tar's writer is none whose conventions are known here (convention.evidence says what was seen). */
  | { verdict: 'unknown writer'; diffID: Digest };

export type DigestVerdict =
  | { verdict: 'identical'; digest: Digest; compressor: string }
  | { verdict: 'differs'; digest: Digest; compressor: string; header: string; tried: string[] }
  | { verdict: 'not reproducible'; compressor: string; header: string; why: string }
  | { verdict: 'not reached'; why: string };

export interface LayerVerdict {
  convention: TarConvention;
  diffID: DiffIdVerdict;
  digest: DigestVerdict;
}

export interface ReproduceLayerOptions {
  what?: string;
  /** Most full recompressions tried after the prefix trials (each reads the whole tree); default 4. */
  maxFullTrials?: number;
  /** zstd program for CLI candidates; default `zstd` on PATH. */
  zstdCommand?: string;
  /** gzip program for GNU gzip candidates; default `gzip` on PATH. */
  gzipCommand?: string;
  /**
   * The convention and length found by a pass that already read the whole blob and matched it against its digest
   * and diffID (the merged view's): the blob is then not read again for them.
   */
  detected?: DetectedLayer;
}

/**
 * Input of the trial compressions that pick candidates before a full recompression: deflate decides within a
 * 32 KiB window, so 1 MiB tells gzip settings apart; zstd's long mode matches across megabytes.
 */
const PREFIX_BYTES = { gzip: 1024 * 1024, zstd: 8 * 1024 * 1024 };

function hashTap(source: AsyncIterable<Buffer>, hash: ReturnType<typeof createHash>): AsyncGenerator<Buffer> {
  return (async function* () {
    for await (const chunk of source) {
      hash.update(chunk);
      yield chunk;
    }
  })();
}

/** The blob's bytes checked against its descriptor, decompressed. */
function layerTar(blob: LayerBlob, what: string): AsyncGenerator<Buffer> {
  return decompressAuto(verifiedStream(blob.open(), blob.digest, blob.size, what), what);
}

async function headOf(source: AsyncIterable<Buffer>, length: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  const iterator = source[Symbol.asyncIterator]();
  try {
    while (got < length) {
      const next = await iterator.next();
      if (next.done) break;
      chunks.push(next.value);
      got += next.value.length;
    }
  } finally {
    await iterator.return?.();
  }
  return Buffer.concat(chunks).subarray(0, length);
}

/** What a pass over the layer found: its writer's convention and its uncompressed length. */
export interface DetectedLayer {
  convention: TarConvention;
  tarLength: number;
}

/** A pass of its own over the blob: checked against its digest and diffID, its writer's convention detected. */
async function detectLayerConvention(blob: LayerBlob, diffID: Digest, what: string): Promise<DetectedLayer> {
  const originalHash = createHash('sha256');
  let tarLength = 0;
  const counted = (async function* () {
    for await (const chunk of hashTap(layerTar(blob, what), originalHash)) {
      tarLength += chunk.length;
      yield chunk;
    }
  })();
  const convention = await detectTarConvention(counted, { what });
  const originalDiffID = `sha256:${originalHash.digest('hex')}` as Digest;
  if (originalDiffID !== diffID) throw new UserError(`${what}: uncompressed content is ${originalDiffID}, not its diffID ${diffID}`);
  return { convention, tarLength };
}

/**
 * Rebuilds a layer from `tree` (paths without `./`, contents opened lazily, possibly more than once) in the
 * conventions of the tool that wrote `blob`, and compares it at the diffID and digest levels.
 */
export async function reproduceLayer(tree: readonly ForeignTarEntry[], blob: LayerBlob, diffID: Digest, options: ReproduceLayerOptions = {}): Promise<LayerVerdict> {
  const what = options.what ?? `layer ${blob.digest}`;
  const { convention, tarLength } = options.detected ?? (await detectLayerConvention(blob, diffID, what));

  if (convention.tool === 'unknown') return { convention, diffID: { verdict: 'unknown writer', diffID }, digest: { verdict: 'not reached', why: 'the tar writer is not known' } };
  // The rebuilt tar against the layer: its digest, and member by member where they part.
  const diff = await compareLayers(convention, tree, () => layerTar(blob, what), diffID, what);
  if (diff.verdict === 'differs') return { convention, diffID: diff, digest: { verdict: 'not reached', why: 'the diffID differs' } };
  return { convention, diffID: diff, digest: await reproduceDigest(convention, tree, blob, tarLength, options, what) };
}

const FIELDS: [string, number, number][] = [
  ['name', 0, 100], ['mode', 100, 8], ['uid', 108, 8], ['gid', 116, 8], ['size', 124, 12], ['mtime', 136, 12],
  ['typeflag', 156, 1], ['link target', 157, 100], ['magic', 257, 8], ['uname', 265, 32], ['gname', 297, 32],
  ['devmajor', 329, 8], ['devminor', 337, 8], ['prefix', 345, 155], ['header padding', 500, 12],
];

function describeHeaderDifference(original: RawMember, rebuilt: RawMember): string | undefined {
  const recordsOf = (m: RawMember): [string, Buffer][] => m.metadata.flatMap((x) => x.records);
  const a = recordsOf(original);
  const b = recordsOf(rebuilt);
  const keysA = a.map(([k]) => k).join(' ');
  const keysB = b.map(([k]) => k).join(' ');
  if (keysA !== keysB) {
    const missing = a.filter(([k]) => !b.some(([kb]) => kb === k)).map(([k]) => k);
    const extra = b.filter(([k]) => !a.some(([ka]) => ka === k)).map(([k]) => k);
    if (missing.length || extra.length) return `PAX records: ${[...missing.map((k) => `${k} only in the layer`), ...extra.map((k) => `${k} only in the rebuilt`)].join(', ')}`;
    return `PAX record order (layer: ${keysA}; rebuilt: ${keysB})`;
  }
  for (let i = 0; i < a.length; i++) if (!a[i]![1].equals(b[i]![1])) return `PAX record ${a[i]![0]}`;
  const kinds = (m: RawMember): string => m.metadata.map((x) => x.typeflag).join('');
  if (kinds(original) !== kinds(rebuilt)) return `metadata headers (layer: ${kinds(original) || 'none'}; rebuilt: ${kinds(rebuilt) || 'none'})`;
  for (let i = 0; i < original.metadata.length; i++) {
    const field = FIELDS.find(([, s, w]) => !original.metadata[i]!.block.subarray(s, s + w).equals(rebuilt.metadata[i]!.block.subarray(s, s + w)));
    if (field) return `${original.metadata[i]!.typeflag} header ${field[0]}`;
    if (!original.metadata[i]!.data.equals(rebuilt.metadata[i]!.data)) return `${original.metadata[i]!.typeflag} header data`;
  }
  const field = FIELDS.find(([, s, w]) => !original.block.subarray(s, s + w).equals(rebuilt.block.subarray(s, s + w)));
  if (field) return field[0];
  return original.block.equals(rebuilt.block) ? undefined : 'header checksum';
}

async function contentDigest(member: RawMember): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of member.content()) hash.update(chunk);
  return hash.digest('hex');
}

function plain(name: string): string {
  let p = name;
  while (p.startsWith('./')) p = p.slice(2);
  return p.replace(/\/+$/, '') || '.';
}

/**
 * The rebuilt tar's digest against the diffID (which the original was matched against before): equal, the layer
 * is identical without reading it again; else the two are walked side by side for the first member where they part.
 */
async function compareLayers(convention: TarConvention, tree: readonly ForeignTarEntry[], original: () => AsyncIterable<Buffer>, diffID: Digest, what: string): Promise<DiffIdVerdict> {
  const rebuiltHash = createHash('sha256');
  for await (const chunk of writeTarInConvention(convention, tree)) rebuiltHash.update(chunk);
  if (`sha256:${rebuiltHash.digest('hex')}` === diffID) return { verdict: 'identical', diffID };
  return firstDifference(convention, tree, original(), diffID, what);
}

/** Walks the layer and the rebuilt tar side by side and names the first member where they part. */
async function firstDifference(convention: TarConvention, tree: readonly ForeignTarEntry[], original: AsyncIterable<Buffer>, diffID: Digest, what: string): Promise<DiffIdVerdict> {
  const rebuiltHash = createHash('sha256');
  const treePaths = new Set(tree.map((e) => e.path));
  const layer = walkTar(original, { what });
  const rebuilt = walkTar(hashTap(writeTarInConvention(convention, tree), rebuiltHash), { what: 'rebuilt layer' });
  let first: FirstDifference | undefined;
  try {
    for (;;) {
      const [a, b] = [await layer.next(), await rebuilt.next()];
      if (a.done || b.done) {
        if (!a.done) first = { member: plain(a.value.name), offset: a.value.offset, what: treePaths.has(plain(a.value.name)) ? 'missing from the rebuilt layer' : 'in the layer, not in the tree' };
        else if (!b.done) first = { member: plain(b.value.name), offset: (a.value as RawEnd).offset, what: 'in the tree, not in the layer' };
        else {
          const [ea, eb] = [a.value as RawEnd, b.value as RawEnd];
          if (ea.length !== eb.length || ea.zeroBlocks !== eb.zeroBlocks) first = { member: '(end of archive)', offset: ea.offset, what: `end blocks (layer: ${ea.zeroBlocks} zero blocks, ${ea.length} bytes; rebuilt: ${eb.zeroBlocks}, ${eb.length})` };
        }
        break;
      }
      const [ma, mb] = [a.value, b.value];
      const name = plain(ma.name);
      if (ma.name !== mb.name) {
        const why = !treePaths.has(name) && name !== '.' ? 'in the layer, not in the tree' : `order or name: the rebuilt layer has ${displayName(mb.name)} here`;
        first = { member: name, offset: ma.offset, what: why };
        break;
      }
      const header = describeHeaderDifference(ma, mb);
      if (header) {
        first = { member: name, offset: ma.offset, what: header };
        break;
      }
      if ((await contentDigest(ma)) !== (await contentDigest(mb))) {
        first = { member: name, offset: ma.offset, what: 'content' };
        break;
      }
    }
  } finally {
    await layer.return(undefined as never);
    await rebuilt.return(undefined as never);
  }
  const rebuiltDigest = `sha256:${rebuiltHash.digest('hex')}` as Digest;
  if (!first && rebuiltDigest === diffID) return { verdict: 'identical', diffID };
  return { verdict: 'differs', diffID, rebuilt: rebuiltDigest, first: first ?? { member: '(unknown)', offset: 0, what: 'bytes differ outside any member' } };
}

// ---------------------------------------------------------------------------------------------------------------
// The digest level.

interface Candidate {
  /** Human name, e.g. `zstd CLI v1.5.4 -8 --long=27 -T0`. */
  name: string;
  /** The compressor without its settings, for messages: `repro-oci zlib gzip`, `zstd CLI v1.5.4`. */
  family: string;
  stages(): (Transform | Duplex)[];
}

interface Identified {
  /** Who wrote it, as far as the header tells: `Go compress/gzip or klauspost/pgzip`, `zstd`. */
  compressor: string;
  /** The header fields that say so. */
  header: string;
  candidates: Candidate[];
  /** Why nothing here can reproduce it, when that is known before trying. */
  notReproducible?: string;
  /** Candidates need the whole input (a pledged content size): no trial on a prefix. */
  exactLength?: boolean;
}

function commandStage(command: string, args: string[]): Duplex {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const output = new PassThrough();
  child.stdout.pipe(output, { end: false });
  const duplex = Duplex.from({ writable: child.stdin, readable: output });
  child.on('error', (err) => duplex.destroy(err));
  child.on('close', (code) => (code === 0 ? output.end() : output.destroy(new Error(`${command} exited ${code}: ${stderr.trim()}`))));
  child.stdin.on('error', () => {});
  return duplex;
}

function programVersion(command: string, args: string[], pattern: RegExp): string | undefined {
  const run = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000 });
  if (run.status !== 0) return undefined;
  return pattern.exec(`${run.stdout}${run.stderr}`)?.[1];
}

/** Drops a gzip member header of `length` bytes from a candidate's output and puts the original's in its place. */
class ReplaceGzipHeader extends Transform {
  private skip: number;
  private started = false;

  constructor(private readonly header: Buffer, length: number) {
    super();
    this.skip = length;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (!this.started) {
      this.started = true;
      this.push(this.header);
    }
    const drop = Math.min(this.skip, chunk.length);
    this.skip -= drop;
    done(null, chunk.subarray(drop));
  }
}

function gzipHeaderLength(head: Buffer): number | undefined {
  if (head.length < 10) return undefined;
  const flags = head[3]!;
  let at = 10;
  if (flags & 4) {
    if (head.length < at + 2) return undefined;
    at += 2 + head.readUInt16LE(at);
  }
  for (const bit of [8, 16]) {
    if (!(flags & bit)) continue;
    const nul = head.indexOf(0, at);
    if (nul === -1) return undefined;
    at = nul + 1;
  }
  if (flags & 2) at += 2;
  return at <= head.length ? at : undefined;
}

const GZIP_OS: Record<number, string> = { 0: 'FAT', 3: 'Unix', 7: 'Macintosh', 11: 'NTFS', 255: 'unknown' };

function identifyGzip(head: Buffer, options: ReproduceLayerOptions): Identified {
  const headerLength = gzipHeaderLength(head);
  const flags = head[3] ?? 0;
  const mtime = head.length >= 8 ? head.readUInt32LE(4) : 0;
  const xfl = head[8] ?? 0;
  const os = head[9] ?? 0;
  const header = `gzip OS=${os} (${GZIP_OS[os] ?? 'other'}), XFL=${xfl}, mtime=${mtime}${flags & 8 ? ', with a file name' : ''}`;
  // Go's compress/gzip (and pgzip, built on it) writes OS 255; GNU gzip, pigz and zlib write the host's (3 on Unix).
  const compressor = os === 255 ? 'Go compress/gzip' : os === 3 ? 'GNU gzip, pigz or zlib' : 'gzip';
  if (headerLength === undefined || head[2] !== 8) return { compressor, header, candidates: [], notReproducible: 'malformed gzip header' };
  const original = head.subarray(0, headerLength);
  // XFL 2 is written for the slowest level, 4 for the fastest (GNU gzip and zlib alike): try the level it implies first.
  const levels = xfl === 2 ? [9] : xfl === 4 ? [1] : [6, 5, 7, 8, 4, 3, 2];
  const candidates: Candidate[] = [];
  const replace = (length: number): Transform => new ReplaceGzipHeader(original, length);
  for (const level of levels) {
    for (const parallel of [false, true]) {
      const c = getCompressor('gzip', level, parallel);
      candidates.push({ name: `repro-oci ${c.identity}`, family: "repro-oci's zlib gzip", stages: () => [...c.createStages(), replace(10)] });
    }
  }
  const gzip = options.gzipCommand ?? 'gzip';
  // GNU gzip writes the host's OS byte; only repro-oci's gzip, of those here, writes 255 as Go does.
  const version = os === 255 ? undefined : programVersion(gzip, ['--version'], /gzip ([0-9.]+)/);
  // GNU gzip first when the OS byte says Unix: it is the likelier writer there.
  if (version) for (const level of [...levels].reverse()) candidates.unshift({ name: `GNU gzip ${version} -${level} -n`, family: `GNU gzip ${version}`, stages: () => [commandStage(gzip, [`-${level}`, '-n', '-c']), replace(10)] });
  // A Go writer's deflate is its own (compress/flate): nothing here produces it, so say so instead of trying hard.
  return { compressor, header, candidates };
}

function identifyZstd(head: Buffer, tarLength: number, options: ReproduceLayerOptions): Identified {
  const fhd = head[4] ?? 0;
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd >> 5) & 1;
  const checksum = (fhd >> 2) & 1;
  const dictionary = fhd & 3;
  let windowLog: number | undefined;
  if (!singleSegment && head.length > 5) windowLog = 10 + (head[5]! >> 3);
  const mantissa = !singleSegment && head.length > 5 ? head[5]! & 7 : 0;
  const hasSize = fcsFlag !== 0 || singleSegment === 1;
  const fields = `window 2^${windowLog ?? '?'}${mantissa ? `+${mantissa}/8` : ''}, checksum ${checksum ? 'on' : 'off'}, content size ${hasSize ? 'recorded' : 'absent'}${dictionary ? ', dictionary' : ''}`;
  const compressor = 'zstd';
  const header = `zstd ${fields}`;
  if (dictionary) return { compressor, header, candidates: [], notReproducible: 'compressed with a dictionary' };
  if (mantissa) return { compressor, header, candidates: [], notReproducible: `a window size (2^${windowLog}+${mantissa}/8) the zstd CLI does not choose` };
  const candidates: Candidate[] = [];
  // Levels: archlinux-docker's -8 first, then the defaults of zstd (3) and of common tools.
  const levels = [8, 3, 19, 1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18];
  // A window beyond what levels up to 19 choose is --long's; a single-segment frame hides it, so both are tried.
  const longs = windowLog === undefined ? [['--long=27'], []] : windowLog >= 24 ? [[`--long=${windowLog}`]] : [[]];
  // A recorded content size is what the CLI writes for a file it was given (archlinux-docker's `zstd … FILE.tar`).
  const size = hasSize ? [`--stream-size=${tarLength}`] : [];
  const zstd = options.zstdCommand ?? 'zstd';
  const version = programVersion(zstd, ['--version'], /(v[0-9.]+)/);
  const check = checksum ? [] : ['--no-check'];
  if (version) {
    for (const level of levels) {
      for (const long of longs) {
        for (const threads of ['-T0', '--single-thread']) {
          const flags = [`-${level}`, ...long, threads, ...check, ...size];
          candidates.push({ name: `zstd CLI ${version} ${flags.join(' ')}`, family: `zstd CLI ${version}`, stages: () => [commandStage(zstd, [...flags, '-q', '-c'])] });
        }
      }
    }
  }
  if (checksum && !hasSize && windowLog !== undefined && windowLog < 24) {
    for (const level of levels) {
      const c = getCompressor('zstd', level);
      candidates.push({ name: `repro-oci ${c.identity}`, family: "repro-oci's zstd", stages: () => c.createStages() });
    }
  }
  if (candidates.length === 0) return { compressor, header, candidates, notReproducible: `no zstd compressor here writes ${fields}${version ? '' : ' (zstd CLI not installed)'}` };
  return { compressor, header, candidates, exactLength: hasSize };
}

async function compressToBuffer(input: Buffer, stages: (Transform | Duplex)[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      done();
    },
  });
  await pipeline([Readable.from([input]), ...stages, sink] as unknown as NodeJS.ReadWriteStream[]);
  return Buffer.concat(chunks);
}

async function compressedDigest(source: AsyncIterable<Buffer>, stages: (Transform | Duplex)[]): Promise<Digest> {
  const hash = createHash('sha256');
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done();
    },
  });
  await pipeline([Readable.from(source), ...stages, sink] as unknown as NodeJS.ReadWriteStream[]);
  return `sha256:${hash.digest('hex')}` as Digest;
}

/**
 * Whether a candidate could have made the blob, from the start of the rebuilt tar: its output must equal
 * the blob's start except for the tail it flushed early (the whole of it when the layer is that small). Trials
 * too small to tell pass.
 */
async function prefixTrial(candidate: Candidate, prefix: Buffer, blobHead: Buffer, whole: boolean): Promise<boolean> {
  let out: Buffer;
  try {
    out = await compressToBuffer(prefix, candidate.stages());
  } catch {
    return false;
  }
  if (whole) return out.equals(blobHead);
  const margin = Math.max(Math.floor(out.length / 4), Math.min(1024 * 1024, Math.floor(out.length / 2)));
  const compared = out.length - margin;
  return compared <= 64 || out.subarray(0, compared).equals(blobHead.subarray(0, compared));
}

async function reproduceDigest(convention: TarConvention, tree: readonly ForeignTarEntry[], blob: LayerBlob, tarLength: number, options: ReproduceLayerOptions, what: string): Promise<DigestVerdict> {
  const blobHead = await headOf(verifiedStream(blob.open(), blob.digest, blob.size, what), PREFIX_BYTES.zstd + 1024 * 1024);
  const kind = detectCompression(blobHead);
  if (kind === 'none') return { verdict: 'identical', digest: blob.digest, compressor: 'none (uncompressed: the digest is the diffID)' };
  if (kind === 'xz') return { verdict: 'not reproducible', compressor: 'xz', header: 'xz', why: 'no xz compressor here' };
  const identified = kind === 'gzip' ? identifyGzip(blobHead, options) : identifyZstd(blobHead, tarLength, options);
  const { compressor, header } = identified;
  if (identified.notReproducible) return { verdict: 'not reproducible', compressor, header, why: identified.notReproducible };

  const prefixBytes = PREFIX_BYTES[kind];
  const prefix = identified.exactLength ? undefined : await headOf(writeTarInConvention(convention, tree), prefixBytes);
  const whole = tarLength <= prefixBytes && blob.size <= blobHead.length;
  const tried: string[] = [];
  for (const candidate of identified.candidates) {
    if (tried.length >= (options.maxFullTrials ?? 4)) break;
    if (prefix && !(await prefixTrial(candidate, prefix, blobHead, whole))) continue;
    tried.push(candidate.name);
    const digest = await compressedDigest(writeTarInConvention(convention, tree), candidate.stages()).catch(() => undefined);
    if (digest === blob.digest) return { verdict: 'identical', digest, compressor: candidate.name };
  }
  if (tried.length > 0) return { verdict: 'differs', digest: blob.digest, compressor, header, tried };
  const tools = [...new Set(identified.candidates.map((c) => c.family))].join(', ');
  const why = compressor === 'Go compress/gzip'
    ? `a deflate of Go's own, which none of the compressors here (${tools}) writes; ${header}`
    : `none of the ${identified.candidates.length} settings of ${tools} here gives these bytes; ${header}`;
  return { verdict: 'not reproducible', compressor, header, why };
}

/** Each level in words: the tar writer, the diffID and the digest verdicts. */
export function describeLayerVerdict(verdict: LayerVerdict): { tar: string; diffID: string; digest: string } {
  const d = verdict.diffID;
  const diffID =
    d.verdict === 'identical' ? 'identical'
    : d.verdict === 'differs' ? `differs (first at ${displayName(d.first.member)}: ${d.first.what})`
    : `not compared (unknown tar writer: ${verdict.convention.evidence.join('; ')})`;
  const g = verdict.digest;
  const digest =
    g.verdict === 'identical' ? `identical (${g.compressor})`
    : g.verdict === 'differs' ? `differs (${g.header}; tried ${g.tried.join(', ')})`
    : g.verdict === 'not reproducible' ? `not reproducible (${g.compressor}: ${g.why})`
    : `not reached (${g.why})`;
  return { tar: verdict.convention.summary, diffID, digest };
}

/** One line per level. */
export function formatLayerVerdict(verdict: LayerVerdict): string {
  const { tar, diffID, digest } = describeLayerVerdict(verdict);
  return `tar: ${tar}\ndiffID: ${diffID}\ndigest: ${digest}`;
}
