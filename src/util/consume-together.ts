/**
 * Hands one stream to two consumers in step: each chunk is read from the source once and given to both, and the
 * next is read only when both have taken it (or stopped reading), so at most one chunk is held. A consumer that
 * fails stops the other at its next read; the source is left for the caller to drain or close.
 */
export async function consumeTogether<A, B>(source: AsyncIterable<Buffer>, a: (s: AsyncIterable<Buffer>) => Promise<A>, b: (s: AsyncIterable<Buffer>) => Promise<B>): Promise<[A, B]> {
  const iterator = source[Symbol.asyncIterator]();
  const taken = [0, 0];
  const reading = [true, true];
  let fetched: { round: number; result: Promise<IteratorResult<Buffer>> } | undefined;
  let failed: { error: unknown } | undefined;
  let waiting: (() => void)[] = [];
  const wake = (): void => {
    const all = waiting;
    waiting = [];
    for (const resume of all) resume();
  };
  const branch = (k: number): AsyncIterable<Buffer> => ({
    [Symbol.asyncIterator]: () => ({
      next: async (): Promise<IteratorResult<Buffer>> => {
        const round = taken[k]!;
        // Chunk `round` may be read once the other branch has taken the one before it, or stopped.
        while (!failed && reading[1 - k] && taken[1 - k]! < round) await new Promise<void>((resume) => waiting.push(resume));
        if (failed) throw failed.error;
        if (fetched?.round !== round) fetched = { round, result: iterator.next() };
        taken[k] = round + 1;
        const result = await fetched.result;
        wake();
        return result;
      },
      return: async (): Promise<IteratorResult<Buffer>> => {
        reading[k] = false;
        wake();
        return { done: true, value: undefined };
      },
    }),
  });
  const settle = <T>(k: number, run: Promise<T>): Promise<T> =>
    run.then(
      (value) => {
        reading[k] = false;
        wake();
        return value;
      },
      (error: unknown) => {
        reading[k] = false;
        failed ??= { error };
        wake();
        throw error;
      },
    );
  const results = await Promise.allSettled([settle(0, a(branch(0))), settle(1, b(branch(1)))]);
  if (failed) throw failed.error;
  return [(results[0] as PromiseFulfilledResult<A>).value, (results[1] as PromiseFulfilledResult<B>).value];
}
