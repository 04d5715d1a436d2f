import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { consumeTogether } from '../src/util/consume-together.js';

/**
 * consumeTogether, which lets the foreign check read a layer (merged view and tar convention) and a package file
 * (signature and metadata) once for two readers: both see every byte in order, the source is never read more than
 * a chunk ahead of the slower reader, a reader that stops early does not stall the other, and a failing reader
 * stops the other and its error is the one thrown.
 */

/** A source of `count` chunks that records how far it was read. */
function source(count: number): { chunks: AsyncIterable<Buffer>; read: () => number } {
  let read = 0;
  return {
    read: () => read,
    chunks: (async function* () {
      for (let i = 0; i < count; i++) {
        read++;
        yield Buffer.from([i]);
      }
    })(),
  };
}

async function collect(chunks: AsyncIterable<Buffer>, onChunk?: () => Promise<void> | void): Promise<number[]> {
  const out: number[] = [];
  for await (const chunk of chunks) {
    out.push(chunk[0]!);
    await onChunk?.();
  }
  return out;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('consumeTogether', () => {
  test('both readers get every chunk, in order, from one read of the source', async () => {
    const s = source(50);
    const [a, b] = await consumeTogether(s.chunks, (c) => collect(c), (c) => collect(c, tick));
    assert.deepEqual(a, range(50));
    assert.deepEqual(b, range(50));
    assert.equal(s.read(), 50);
  });

  test('in step: the source is never more than two chunks ahead of the slower reader', async () => {
    const s = source(40);
    let slowSeen = 0;
    let maxLead = 0;
    await consumeTogether(
      s.chunks,
      (c) => collect(c, () => void (maxLead = Math.max(maxLead, s.read() - slowSeen))),
      (c) =>
        collect(c, async () => {
          slowSeen++;
          for (let i = 0; i < 5; i++) await tick();
        }),
    );
    assert.ok(maxLead <= 2, `the source ran ${maxLead} chunks ahead`);
  });

  test('a reader that stops early leaves the rest to the other, which is not stalled', async () => {
    const s = source(30);
    const [first, all] = await consumeTogether(
      s.chunks,
      async (c) => {
        for await (const chunk of c) return chunk[0]; // stops at once, closing its side
        return -1;
      },
      (c) => collect(c, tick),
    );
    assert.equal(first, 0);
    assert.deepEqual(all, range(30));
  });

  test('a reader that returns without closing its side does not stall the other either', async () => {
    const s = source(10);
    const [, all] = await consumeTogether(
      s.chunks,
      async (c) => {
        const iterator = c[Symbol.asyncIterator]();
        await iterator.next();
        return 'done';
      },
      (c) => collect(c),
    );
    assert.deepEqual(all, range(10));
  });

  test("a failing reader stops the other at its next read, and its error is the one thrown", async () => {
    const s = source(1000);
    let otherSaw = 0;
    await assert.rejects(
      consumeTogether(
        s.chunks,
        (c) =>
          collect(c, () => {
            if (otherSaw >= 3) throw new Error('reader a: bad record');
          }),
        (c) => collect(c, () => void otherSaw++),
      ),
      /reader a: bad record/,
    );
    assert.ok(s.read() < 10, `the source was read ${s.read()} chunks after the failure`);
  });
});
