import { performance } from 'node:perf_hooks';

/**
 * Wall-clock milliseconds per phase of a command, in the order the phases ran. For reports (`--json`) only: a
 * timing never goes into an image, a lock or a recipe.
 */
export type Timings = Record<string, number>;

/** Runs `work` and adds its duration to `timings[phase]`, also when it throws. */
export async function timed<T>(timings: Timings, phase: string, work: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await work();
  } finally {
    timings[phase] = (timings[phase] ?? 0) + Math.round(performance.now() - start);
  }
}
