import { jsonText, LEVELS, type Difference } from './difference.js';
import type { DiffReport } from './image-diff.js';
import type { DiffSummary } from './summary.js';
import { describeSkipped } from '../transports/platform-manifest.js';

const MARKS = { added: '+', removed: '-', changed: '~' } as const;

/** A value in text: strings of entries as they are (paths are printed already), everything else as JSON. */
function showField(field: string, value: unknown): string {
  if (value === null || value === undefined) return '(none)';
  if (field === 'mode' && typeof value === 'number') return value.toString(8).padStart(4, '0');
  if (field === 'sha256' && typeof value === 'string') return value.slice(0, 16);
  return typeof value === 'string' ? value : jsonText(value);
}

function fieldChanges(before: Record<string, unknown>, after: Record<string, unknown>): string {
  return Object.keys(after)
    .map((field) => `${field} ${showField(field, before[field])} → ${showField(field, after[field])}`)
    .join(', ');
}

/** One difference as the CLI prints it: `+`, `-` or `~`, the path as `--ignore` takes it, then the values. */
export function formatDifference(d: Difference): string {
  const mark = MARKS[d.kind];
  const owner = d.package !== undefined && d.level === 'entry' ? ` [${d.package}]` : '';
  const before = d.before as Record<string, unknown>;
  const after = d.after as Record<string, unknown>;
  switch (d.level) {
    case 'entry':
      if (d.kind === 'changed') return `${mark} ${d.path}: ${fieldChanges(before, after)}${owner}`;
      return `${mark} ${d.path} (${String((before ?? after)['type'])})${owner}`;
    case 'package':
      return d.kind === 'changed' ? `${mark} ${d.path} ${String(d.before)} → ${String(d.after)}` : `${mark} ${d.path} ${String(d.before ?? d.after)}`;
    case 'layer':
      if (d.kind === 'changed') return `${mark} ${d.path}: entry order differs from ${String(before['entryOrder'])} (${String(after['entryOrder'])} in b)`;
      return `${mark} ${d.path} ${String((before ?? after)['digest'])}`;
    default:
      if (d.kind === 'changed') return `${mark} ${d.path}: ${jsonText(d.before)} → ${jsonText(d.after)}`;
      return `${mark} ${d.path}: ${jsonText(d.before ?? d.after)}`;
  }
}

/** The line that says whether the blobs were checked, when the report says either way. */
function blobsLine(report: DiffReport): string {
  const blobs = report.blobs;
  if (!blobs) return '';
  if (!blobs.verified || !blobs.checked) return 'blobs: not checked (--no-verify-blobs); those read were verified\n';
  const { a, b } = blobs.checked;
  return `blobs: ${a === b ? `${a} of each side` : `${a} of a, ${b} of b`} checked in full (digests, and diffIDs of layers)\n`;
}

/** The differences in groups: one per level, entries one per layer (and the merged view). */
function groups(differences: Difference[]): { title: string; members: Difference[] }[] {
  const out: { title: string; members: Difference[] }[] = [];
  for (const level of LEVELS) {
    for (const d of differences.filter((x) => x.level === level)) {
      const title = level === 'entry' ? `[entry] ${d.layer === 'merged' ? 'merged' : `layer ${String(d.layer)}`}:` : `[${level}]`;
      const last = out[out.length - 1];
      if (last?.title === title) last.members.push(d);
      else out.push({ title, members: [d] });
    }
  }
  return out;
}

/**
 * The CLI's text: the summary line, both digests, then each group of differences (at most `limit` lines of
 * them), notes on what could not be compared, and whether the blobs were checked.
 */
export function formatDiff(report: DiffReport, limit = Infinity): string {
  if (report.same) return `${report.summary.text}\n${skippedLines(report)}${blobsLine(report)}`;
  const lines = [report.summary.text, `--- a ${report.a}`, `+++ b ${report.b}`];
  let shown = 0;
  for (const { title, members } of groups(report.differences)) {
    if (shown >= limit) break;
    lines.push(`${title} ${members.length} difference${members.length === 1 ? '' : 's'}`);
    for (const d of members) {
      if (shown++ >= limit) break;
      lines.push(`  ${formatDifference(d)}`);
    }
  }
  if (report.differences.length > limit) lines.push(`  … and ${report.differences.length - limit} more (--json lists them all)`);
  for (const n of report.notCompared) lines.push(`note: layer ${n.layer}: ${n.label} does not hold ${n.digest}; its files cannot be compared`);
  return `${lines.join('\n')}\n${skippedLines(report)}${blobsLine(report)}`;
}

/** Notes naming the entries of an index that are no platform's image (attestation manifests), which were not compared. */
function skippedLines(report: DiffReport): string {
  return (report.skipped ?? []).map((s) => `note: ${s.side}: ${describeSkipped(s.index, s.manifests)}\n`).join('');
}

/** The JSON document `diff --json` prints (and `rebuild --json` holds as `diff`): the summary first, then every difference. */
export interface DiffJson {
  summary: Omit<DiffReport, 'parsed' | 'differences' | 'summary'> & DiffSummary;
  differences: Difference[];
}

export function diffJson(report: DiffReport): DiffJson {
  const { same, a, b, manifests, notCompared, blobs, skipped, summary, differences } = report;
  const { text, ...counted } = summary;
  return { summary: { same, text, a, b, manifests, ...counted, notCompared, ...(skipped ? { skipped } : {}), ...(blobs ? { blobs } : {}) }, differences };
}
