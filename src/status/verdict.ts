import { displayName } from '../util/raw-name.js';
import type { Cell, PackageStatus, Policy, RebuilderAnswer, RebuilderRow, StatusPackage, StatusReport, PackageSet } from './model.js';

/** A row speaks for a package only when name, full version, architecture and repository all match. */
function matches(pkg: StatusPackage, row: RebuilderRow): boolean {
  return row.name === pkg.name && row.version === pkg.version && row.architecture === pkg.arch && (pkg.repository === undefined || row.repository === pkg.repository);
}

/** When a rebuilder lists the same package twice and the rows disagree, the worse word wins. */
const RANK = { BAD: 3, GOOD: 2, UNKWN: 1, null: 0 } as const;

/** One rebuilder's word on one package. */
export function cellFor(pkg: StatusPackage, answer: RebuilderAnswer): Cell {
  const rebuilder = answer.rebuilder.name;
  if ('error' in answer) return { rebuilder, state: 'no answer' };
  const rows = answer.rows.get(pkg.name) ?? [];
  const exact = rows.filter((row) => matches(pkg, row));
  if (exact.length > 0) {
    const row = exact.reduce((a, b) => (RANK[`${b.status}`] > RANK[`${a.status}`] ? b : a));
    return { rebuilder, state: row.status ?? 'not built', row };
  }
  if (rows.length === 0) return { rebuilder, state: 'not listed' };
  const other = rows.map((r) => ({ version: r.version, repository: r.repository, architecture: r.architecture }));
  return { rebuilder, state: 'other version', other };
}

/** The verdict for one package under the policy: any BAD fails (unless allowed), N GOODs pass, the rest is pending. */
export function judge(pkg: StatusPackage, answers: readonly RebuilderAnswer[], policy: Policy): PackageStatus {
  const cells = answers.map((answer) => cellFor(pkg, answer));
  const good = cells.filter((c) => c.state === 'GOOD').length;
  const bad = cells.filter((c) => c.state === 'BAD').length;
  const verdict = policy.failOnBad && bad > 0 ? 'BAD' : good >= policy.require ? 'ok' : 'pending';
  return { ...pkg, verdict, good, bad, cells };
}

export function statusReport(set: PackageSet, answers: readonly RebuilderAnswer[], policy: Policy): StatusReport {
  const packages = set.packages.map((pkg) => judge(pkg, answers, policy));
  const met = packages.filter((p) => p.verdict === 'ok').length;
  const pending = packages.filter((p) => p.verdict === 'pending').length;
  const bad = packages.filter((p) => p.verdict === 'BAD').length;
  const badOn: Record<string, number> = {};
  for (const p of packages) for (const c of p.cells) if (c.state === 'BAD') badOn[c.rebuilder] = (badOn[c.rebuilder] ?? 0) + 1;
  const parts = [`${met}/${packages.length} packages meet the policy`];
  const details = [];
  if (pending) details.push(`${pending} pending`);
  for (const [name, count] of Object.entries(badOn)) details.push(`${count} BAD on rebuilder ${name}`);
  const silent = answers.filter((a) => 'error' in a).map((a) => a.rebuilder.name);
  if (silent.length) details.push(`no answer from ${silent.join(', ')}`);
  const text = details.length ? `${parts[0]}; ${details.join(', ')}` : parts[0]!;
  return {
    source: set.source,
    policy,
    rebuilders: answers.map((a) => ({ name: a.rebuilder.name, url: a.rebuilder.url, api: 'error' in a ? null : a.api, error: 'error' in a ? a.error : null })),
    packages,
    summary: { packages: packages.length, met, pending, bad, badOn, text },
    policyMet: met === packages.length,
  };
}

/** Rows for the same name that do not match: by their version, or, at this very version, by repository and architecture. */
function cellText(cell: Cell, version: string): string {
  if (cell.state !== 'other version') return cell.state;
  const others = cell.other!.filter((o) => o.version !== version);
  if (others.length > 0) return `other version (${[...new Set(others.map((o) => (o.version === '' ? '""' : displayName(o.version))))].join(', ')})`;
  return `other repository/architecture (${[...new Set(cell.other!.map((o) => `${displayName(o.repository ?? '-')}/${displayName(o.architecture)}`))].join(', ')})`;
}

/** The table: one row per package, one column per rebuilder, then the verdict; the rebuilders' errors; the summary. */
export function formatStatus(report: StatusReport): string {
  const head = ['PACKAGE', 'VERSION', ...report.rebuilders.map((r) => r.name), 'VERDICT'];
  const rows = report.packages.map((p) => [p.name, p.version, ...p.cells.map((c) => cellText(c, p.version)), p.verdict]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cols: string[]): string => cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  const out = [line(head), ...rows.map(line)];
  for (const r of report.rebuilders) {
    out.push(r.error !== null ? `rebuilder ${r.name} (${r.url}): no answer: ${r.error}` : `rebuilder ${r.name} (${r.url}): API ${r.api}`);
  }
  if (report.source === 'pacman-db') out.push('packages from the image\'s pacman database, which records no repository: rows match on name, version and architecture');
  out.push('attestations are not checked by this version: GOOD is the rebuilder\'s word, not verified');
  out.push(report.summary.text);
  return `${out.join('\n')}\n`;
}
