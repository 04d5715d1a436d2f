/**
 * The second, isolated run of publish's independent rebuild: a separate node process (nothing shared in memory with
 * the build) that takes a request as JSON on stdin, sets the umask it names before anything is written, rebuilds
 * the image from its recipe alone with its own cache, and prints the verdict as one JSON document on stdout. Its
 * time zone, locale, $TMPDIR, $HOME and working directory are the ones the parent gave it (isolated-rebuild.ts).
 * Exit 0 with a verdict; 2 with one line on stderr when the rebuild failed.
 */
import { diffJson } from '../compare/image-diff.js';
import { errorMessage, UserError } from '../errors.js';
import { ContentCache } from '../fetch/cache.js';
import { readSmall } from '../util/fs.js';
import { handleInterrupts } from '../util/fs.js';
import { formatRebuild, rebuildReference } from '../verify/rebuild.js';
import type { ChildRebuildRequest, ChildRebuildResult } from './isolated-rebuild.js';

async function main(): Promise<number> {
  handleInterrupts();
  const request = JSON.parse((await readSmall(process.stdin, 1024 * 1024, 'rebuild request')).toString('utf8')) as ChildRebuildRequest;
  process.umask(Number.parseInt(request.umask, 8));
  try {
    const result = await rebuildReference(request.reference, {
      cache: new ContentCache(request.cache),
      mirrors: request.mirrors,
      ...(request.keyringDir ? { keyringDir: request.keyringDir } : {}),
      ...(request.keyExpiry ? { keyExpiry: request.keyExpiry } : {}),
      ...(request.limits ? { limits: request.limits } : {}),
      noCommands: request.noCommands,
      log: (m) => process.stderr.write(`${m}\n`),
    });
    const answer: ChildRebuildResult = {
      reproducible: result.reproducible,
      manifest: result.manifest,
      rebuilt: result.rebuilt,
      notes: result.notes,
      text: formatRebuild(result),
      ...(result.diff ? { diff: diffJson(result.diff) } : {}),
    };
    process.stdout.write(`${JSON.stringify(answer)}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    process.stderr.write(`repro-oci: ${errorMessage(err)}\n`);
    return 2;
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`repro-oci: internal error (please report): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(3);
  },
);
