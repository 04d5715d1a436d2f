import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { registerArchCommands } from '../src/cli/commands/arch.js';

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
