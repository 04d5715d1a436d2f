import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_LIMITS, describeLimit, limitsFromOptions, parseDuration, parseSize } from '../src/setup/limits.js';
import { runCli } from './support/cli.js';

test('limit options: sizes and durations as written, defaults otherwise, one-line refusals', async () => {
  assert.equal(parseSize('20M', 'x'), 20 * 1024 ** 2);
  assert.equal(parseSize('4GiB', 'x'), 4 * 1024 ** 3);
  assert.equal(parseSize('1048576', 'x'), 1048576);
  assert.equal(parseDuration('500ms', 'x'), 500);
  assert.equal(parseDuration('10m', 'x'), 600_000);
  assert.equal(parseDuration('30', 'x'), 30_000);
  assert.deepEqual(limitsFromOptions({ commands: true } as never), DEFAULT_LIMITS);
  const limits = limitsFromOptions({ commandTimeout: '90s', commandDisk: '1536M', commandProcesses: '64' });
  assert.equal(describeLimit(limits, 'timeoutMs'), '90s, --command-timeout');
  assert.equal(describeLimit(limits, 'diskBytes'), '1536 MiB, --command-disk');
  assert.equal(describeLimit(limits, 'processes'), '64, --command-processes');
  for (const [option, value] of [['--command-timeout', '-1s'], ['--command-timeout', '10 years'], ['--command-disk', '0'], ['--command-memory', '4X'], ['--command-processes', '2']]) {
    const r = await runCli(['rebuild', 'oci:/nonexistent', option!, value!]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`^repro-oci: ${option} "${value}": give a [a-z ]+`));
    assert.equal(r.stderr.split('\n').length, 2);
  }
});
