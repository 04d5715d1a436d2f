import { formatStatus } from '../status/verdict.js';
import type { Descriptor } from '../oci/types.js';
import type { PublishResult } from './publish.js';

/** What `publish` prints: the checks, then what was pushed (or would be, or why nothing was). */
export function formatPublish(result: PublishResult): string {
  const lines: string[] = [];
  if (result.manifest) lines.push(`build: ${result.manifest.digest}`);
  if (result.rebuild) {
    const env = result.rebuild.environment;
    lines.push(`independent rebuild (separate process, TZ=${env.TZ} LC_ALL=${env.LC_ALL} umask ${env.umask}, empty cache): ${result.rebuild.reproducible ? `same digest ${result.rebuild.manifest}` : 'DIFFERENT'}`);
    if (!result.rebuild.reproducible) lines.push(result.rebuild.text.trimEnd());
  }
  if (result.packages) lines.push(formatStatus(result.packages).trimEnd());
  if (result.failed.length) {
    for (const f of result.failed) lines.push(`check failed: ${f.check}: ${f.message}`);
    lines.push('NOT published: nothing was pushed');
    return `${lines.join('\n')}\n`;
  }
  for (const d of result.destinations) {
    const where = `docker://${d.repository}${d.tag !== undefined ? `:${d.tag}` : `@${result.manifest!.digest}`}`;
    const referrers = d.referrers ? ` (referrers: ${d.referrers === 'api' ? 'referrers API' : 'sha256-<hex> tag index'})` : '';
    lines.push(`${result.published ? 'published' : 'would publish'} ${where}: image ${result.manifest!.digest}, recipe ${d.recipe.digest}, attestation ${d.attestation.digest}${referrers}`);
  }
  if (result.dryRun) lines.push('dry run: every check passed; nothing was pushed');
  return `${lines.join('\n')}\n`;
}

const descriptor = (d: Descriptor): { digest: string; mediaType: string; size: number; artifactType?: string } => ({
  digest: d.digest,
  mediaType: d.mediaType,
  size: d.size,
  ...(d.artifactType ? { artifactType: d.artifactType } : {}),
});

/** `publish --json` (docs/json-output.md). */
export function publishJson(result: PublishResult): object {
  return {
    published: result.published,
    dryRun: result.dryRun,
    failed: result.failed,
    ...(result.manifest ? { manifest: descriptor(result.manifest) } : {}),
    ...(result.recipe ? { recipe: result.recipe } : {}),
    ...(result.rebuild
      ? {
          rebuild: {
            ...(result.rebuild.manifest ? { manifest: result.rebuild.manifest } : {}),
            reproducible: result.rebuild.reproducible,
            environment: result.rebuild.environment,
            notes: result.rebuild.notes,
            ...(result.rebuild.diff ? { diff: result.rebuild.diff } : {}),
          },
        }
      : {}),
    ...(result.packages ? { packages: result.packages } : {}),
    destinations: result.destinations.map((d) => ({
      reference: d.reference,
      repository: d.repository,
      ...(d.tag !== undefined ? { tag: d.tag } : {}),
      recipe: descriptor(d.recipe),
      attestation: descriptor(d.attestation),
      ...(d.referrers ? { referrers: d.referrers } : {}),
    })),
    timings: result.timings,
  };
}
