#!/usr/bin/env node
// Thin launcher: the CLI is compiled from src/cli by `npm ci` (the prepare script).
import { internalErrorMessage, main } from '../dist/src/cli/main.js';
import { removeTemporariesAndExit } from '../dist/src/util/fs.js';

// Exit 1 means a negative verdict ("not reproducible", "different"); a crash outside main's own error handling
// (an error event nobody listened to) is a bug and must not be mistaken for one.
const crash = (err) => {
  process.stderr.write(internalErrorMessage(err));
  removeTemporariesAndExit(2);
};
// A reader that went away (`repro-oci diff … | head`) is not an error of ours: the rest of the output is dropped
// and the command still ends with its own exit code.
for (const stream of [process.stdout, process.stderr]) stream.on('error', (err) => {
  if (err.code !== 'EPIPE') crash(err);
});
process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);

process.exitCode = await main(process.argv.slice(2));
