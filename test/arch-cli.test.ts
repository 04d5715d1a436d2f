import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { registerArchCommands } from '../src/cli/commands/arch.js';
import { runCli } from './support/cli.js';

async function run(args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  registerArchCommands(program);
  let output = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    output += chunk.toString();
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(args, { from: 'user' });
  } finally {
    process.stdout.write = write;
  }
  return output;
}

test('arch vercmp prints -1, 0 or 1 like pacman', async () => {
  assert.equal(await run(['arch', 'vercmp', '1.0rc', '1.0']), '-1\n');
  assert.equal(await run(['arch', 'vercmp', '1.5', '1.5-1']), '0\n');
  assert.equal(await run(['arch', 'vercmp', '1:1.0', '2.0']), '1\n');
});

test('a crash outside the command (an error nobody listened to) exits 2 as an internal error, never 1', async () => {
  // An error thrown from a timer the command knows nothing about (as an unheard stream 'error' event would be), late
  // enough that the launcher has set up its handlers.
  const boom = `data:text/javascript,${encodeURIComponent("setTimeout(() => { throw new Error('boom'); }, 1500);")}`;
  const r = await runCli(['arch', 'vercmp', '1', '2'], { env: { NODE_OPTIONS: `--import=${boom}` } });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^repro-oci: internal error \(please report\): Error: boom\n/);
});
