import { LEVELS, type Level } from './difference.js';
import type { DiffReport } from './image-diff.js';
import { byteOrder } from '../util/order.js';

/** What a diff found, in a few numbers and names; `text` is the line the CLI prints first. */
export interface DiffSummary {
  text: string;
  /** Differences per level. */
  counts: Record<Level, number>;
  packages: {
    added: { name: string; version: string }[];
    removed: { name: string; version: string }[];
    changed: { name: string; before: string; after: string }[];
  };
  /** Entry paths that differ (in any layer or the merged view, each once). */
  files: number;
  /**
   * Packages at the same version on both sides that own differing entries: what a rebuild that should have been
   * reproducible points at.
   */
  sameVersionDiffering: string[];
}

/**
 * Fields whose difference only follows from others: a manifest's config and layer descriptors change with the
 * blobs they name, and the config's diffIDs with the layers, which the layer and entry differences explain.
 */
const FOLLOWS: Partial<Record<Level, RegExp>> = {
  manifest: /^(config\.(digest|size)|layers\[\d+\](\.(digest|size))?)$/,
  config: /^rootfs\.diff_ids\[\d+\]$/,
};

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}

/** Up to three names, then an ellipsis. */
function some(names: string[]): string {
  return names.length > 3 ? `${names.slice(0, 3).join(', ')}, …` : names.join(', ');
}

export function summarizeDiff(report: Omit<DiffReport, 'summary'>): DiffSummary {
  const diffs = report.differences;
  const counts = Object.fromEntries(LEVELS.map((level) => [level, diffs.filter((d) => d.level === level).length])) as Record<Level, number>;
  const packageDiffs = diffs.filter((d) => d.level === 'package');
  const packages: DiffSummary['packages'] = {
    added: packageDiffs.filter((d) => d.kind === 'added').map((d) => ({ name: d.path, version: d.after as string })),
    removed: packageDiffs.filter((d) => d.kind === 'removed').map((d) => ({ name: d.path, version: d.before as string })),
    changed: packageDiffs.filter((d) => d.kind === 'changed').map((d) => ({ name: d.path, before: d.before as string, after: d.after as string })),
  };
  const entries = diffs.filter((d) => d.level === 'entry');
  const files = new Set(entries.map((d) => d.path)).size;
  const moved = new Set(packageDiffs.map((d) => d.path));
  const sameVersion = new Map<string, Set<string>>();
  for (const d of entries) {
    if (d.package === undefined || moved.has(d.package)) continue;
    sameVersion.set(d.package, (sameVersion.get(d.package) ?? new Set()).add(d.path));
  }
  const sameVersionDiffering = [...sameVersion.keys()].sort(byteOrder);
  const summary = { counts, packages, files, sameVersionDiffering };
  return { text: summaryText(report, summary, sameVersion), ...summary };
}

function summaryText(report: Omit<DiffReport, 'summary'>, summary: Omit<DiffSummary, 'text'>, sameVersion: Map<string, Set<string>>): string {
  if (report.same) return `same: ${report.a}`;
  const clauses: string[] = [];
  const { added, removed, changed } = summary.packages;
  if (changed.length) clauses.push(`${plural(changed.length, 'package', 'packages')} changed (${some(changed.map((p) => `${p.name} ${p.before} → ${p.after}`))})`);
  if (added.length) clauses.push(`${plural(added.length, 'package', 'packages')} added (${some(added.map((p) => `${p.name} ${p.version}`))})`);
  if (removed.length) clauses.push(`${plural(removed.length, 'package', 'packages')} removed (${some(removed.map((p) => `${p.name} ${p.version}`))})`);
  if (summary.files) {
    const inSameVersion = new Set([...sameVersion.values()].flatMap((paths) => [...paths])).size;
    const names = summary.sameVersionDiffering;
    const note = inSameVersion ? ` (${inSameVersion} in ${names.length === 1 ? 'package' : 'packages'} of unchanged version: ${some(names)})` : '';
    clauses.push(`${plural(summary.files, 'file differs', 'files differ')}${note}`);
  }
  const layerDiffs = report.differences.filter((d) => d.level === 'layer');
  const reachedLayers = report.manifests.a !== report.manifests.b;
  if (layerDiffs.length) {
    const count = layerDiffs.filter((d) => d.kind !== 'changed');
    const order = layerDiffs.filter((d) => d.kind === 'changed');
    if (count.length) clauses.push(`${plural(count.length, 'layer', 'layers')} on one side only`);
    if (order.length) clauses.push(`entry order differs (${order.map((d) => (d.layer === 'merged' ? 'merged' : `layer ${d.layer}`)).join(', ')})`);
  } else if (reachedLayers) {
    const layersDiffer = summary.files > 0 || report.differences.some((d) => d.level === 'config' && FOLLOWS.config!.test(d.path));
    clauses.push(layersDiffer ? 'layer content otherwise identical' : 'layers identical');
  }
  for (const n of report.notCompared) clauses.push(`layer ${n.layer} not held by ${n.side}: its entries not compared`);
  for (const level of ['index', 'manifest', 'config'] as const) {
    const own = report.differences.filter((d) => d.level === level && !FOLLOWS[level]?.test(d.path));
    if (own.length) clauses.push(`${level}: ${plural(own.length, 'field differs', 'fields differ')} (${some(own.map((d) => d.path))})`);
  }
  if (!reachedLayers) clauses.push('same manifest');
  return clauses.join('; ');
}
