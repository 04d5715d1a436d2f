/** Pulls exact byte counts out of a stream of chunks: the base of every binary format parser here. */
export class ByteReader {
  private readonly iterator: AsyncIterator<Buffer>;
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;
  /** Bytes consumed so far. */
  offset = 0;

  constructor(source: AsyncIterable<Buffer | Uint8Array>) {
    this.iterator = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.iterator.next();
    if (next.done) {
      this.ended = true;
      return false;
    }
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array);
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    return true;
  }

  /** Exactly n bytes; fewer only when the stream ends first (the caller decides whether that is an error). */
  async read(n: number): Promise<Buffer> {
    while (this.pending.length < n) if (!(await this.fill())) break;
    const take = Math.min(n, this.pending.length);
    const out = this.pending.subarray(0, take);
    this.pending = this.pending.subarray(take);
    this.offset += take;
    return out;
  }

  /** Up to n bytes as they arrive, without gathering them; stops early only at the end of the stream. */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.pending.length === 0 && !(await this.fill())) return;
      const take = Math.min(left, this.pending.length);
      const out = this.pending.subarray(0, take);
      this.pending = this.pending.subarray(take);
      this.offset += take;
      left -= take;
      yield out;
    }
  }

  /** Skips n bytes; returns how many were actually there. */
  async skip(n: number): Promise<number> {
    let skipped = 0;
    for await (const chunk of this.chunks(n)) skipped += chunk.length;
    return skipped;
  }

  /** Releases the underlying source (for example when a parser stops early on an error). */
  async close(): Promise<void> {
    await this.iterator.return?.();
  }
}
