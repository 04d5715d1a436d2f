import { UserError } from '../errors.js';
import { fnmatchRegex } from '../util/fnmatch.js';
import { displayName } from '../util/raw-name.js';
import { rowLinks } from './attestation-check.js';
import type { Cell, PackageRule, PackageSet, PackageStatus, Policy, RebuilderAnswer, RebuilderRow, StatusPackage, StatusReport } from './model.js';
import type { RebuilderKeys } from './keys.js';

/** A row speaks for a package only when name, full version, architecture and repository all match. */
function matches(pkg: StatusPackage, row: RebuilderRow): boolean {
  return row.name === pkg.name && row.version === pkg.version && row.architecture === pkg.arch && (pkg.repository === undefined || row.repository === pkg.repository);
}

/** When a rebuilder lists the same package twice and the rows disagree, the worse word wins. */
const RANK = { BAD: 3, GOOD: 2, UNKWN: 1, null: 0 } as const;

/** One rebuilder's word on one package, before its attestation is checked. */
export function cellFor(pkg: StatusPackage, answer: RebuilderAnswer): Cell {
  const rebuilder = answer.rebuilder.name;
  if ('error' in answer) return { rebuilder, state: 'no answer' };
  const rows = answer.rows.get(pkg.name) ?? [];
  const exact = rows.filter((row) => matches(pkg, row));
  if (exact.length > 0) {
    const row = exact.reduce((a, b) => (RANK[`${b.status}`] > RANK[`${a.status}`] ? b : a));
    return { rebuilder, state: row.status ?? 'not built', row, links: rowLinks(answer.rebuilder, answer.api, row) };
  }
  if (rows.length === 0) return { rebuilder, state: 'not listed' };
  const other = rows.map((r) => ({ version: r.version, repository: r.repository, architecture: r.architecture }));
  return { rebuilder, state: 'other version', other };
}

/** The GOODs needed by a package: the first rule whose glob matches its name, else the policy's default. */
export function requiredFor(name: string, policy: Policy): number {
  let patterns = compiledRules.get(policy.rules);
  if (!patterns) compiledRules.set(policy.rules, (patterns = policy.rules.map((rule) => fnmatchRegex(rule.match, { pathname: false }))));
  const at = patterns.findIndex((pattern) => pattern.test(name));
  return at === -1 ? policy.require : policy.rules[at]!.require;
}

/** Each rule list's globs, compiled once rather than once per package. */
const compiledRules = new WeakMap<readonly PackageRule[], RegExp[]>();

/** A GOOD counts when its attestation is verified, or, with attestations optional, when it is not invalid. */
function counts(cell: Cell, policy: Policy): boolean {
  if (cell.state !== 'GOOD') return false;
  if (cell.attestation?.state === 'verified') return true;
  return policy.attestations === 'optional' && cell.attestation?.state !== 'invalid';
}

const isInvalid = (cell: Cell): boolean => cell.state === 'GOOD' && cell.attestation?.state === 'invalid';

/** The verdict for one package: any BAD or invalid attestation fails it (unless allowed), enough GOODs pass, the rest is pending. */
export function judge(pkg: StatusPackage, cells: Cell[], policy: Policy): PackageStatus {
  const good = cells.filter((c) => counts(c, policy)).length;
  const bad = cells.filter((c) => c.state === 'BAD' || isInvalid(c)).length;
  const require = requiredFor(pkg.name, policy);
  const verdict = policy.failOnBad && bad > 0 ? 'BAD' : good >= require ? 'ok' : 'pending';
  return { ...pkg, verdict, good, bad, require, cells };
}

type KeysByRebuilder = ReadonlyMap<string, RebuilderKeys>;

export function statusReport(set: PackageSet, answers: readonly RebuilderAnswer[], cells: Cell[][], policy: Policy, keys: KeysByRebuilder): StatusReport {
  const packages = set.packages.map((pkg, i) => judge(pkg, cells[i]!, policy));
  const met = packages.filter((p) => p.verdict === 'ok').length;
  const pending = packages.filter((p) => p.verdict === 'pending').length;
  const bad = packages.filter((p) => p.verdict === 'BAD').length;
  const badOn: Record<string, number> = {};
  const invalidOn: Record<string, number> = {};
  for (const p of packages) {
    for (const c of p.cells) {
      if (c.state === 'BAD') badOn[c.rebuilder] = (badOn[c.rebuilder] ?? 0) + 1;
      if (isInvalid(c)) invalidOn[c.rebuilder] = (invalidOn[c.rebuilder] ?? 0) + 1;
    }
  }
  const details = [];
  if (pending) details.push(`${pending} pending`);
  for (const [name, count] of Object.entries(badOn)) details.push(`${count} BAD on rebuilder ${name}`);
  for (const [name, count] of Object.entries(invalidOn)) details.push(`${count} invalid attestation${count === 1 ? '' : 's'} from rebuilder ${name}`);
  const silent = answers.filter((a) => 'error' in a).map((a) => a.rebuilder.name);
  if (silent.length) details.push(`no answer from ${silent.join(', ')}`);
  const head = `${met}/${packages.length} packages meet the policy`;
  const text = details.length ? `${head}; ${details.join(', ')}` : head;
  return {
    source: set.source,
    policy,
    rebuilders: answers.map((a) => {
      const k = keys.get(a.rebuilder.name);
      return {
        name: a.rebuilder.name,
        url: a.rebuilder.url,
        api: 'error' in a ? null : a.api,
        error: 'error' in a ? a.error : null,
        keys: { source: k?.source ?? 'none', fingerprints: k?.keys.map((key) => key.fingerprint) ?? [], note: k?.note ?? null },
      };
    }),
    packages,
    summary: { packages: packages.length, met, pending, bad, badOn, invalidOn, text },
    policyMet: met === packages.length,
  };
}

/** Rows for the same name that do not match: by their version, or, at this very version, by repository and architecture. */
function cellText(cell: Cell, version: string): string {
  if (cell.state === 'GOOD') return cell.attestation?.state === 'verified' ? 'GOOD' : cell.attestation?.state === 'invalid' ? 'GOOD (INVALID)' : 'GOOD (unverified)';
  if (cell.state !== 'other version') return cell.state;
  const others = cell.other!.filter((o) => o.version !== version);
  if (others.length > 0) return `other version (${[...new Set(others.map((o) => (o.version === '' ? '""' : displayName(o.version))))].join(', ')})`;
  return `other repository/architecture (${[...new Set(cell.other!.map((o) => `${displayName(o.repository ?? '-')}/${displayName(o.architecture)}`))].join(', ')})`;
}

function keyText(r: StatusReport['rebuilders'][number]): string {
  if (r.keys.source === 'none') return 'no key';
  return `key ${r.keys.fingerprints.join(', ')} (${r.keys.source})`;
}

/** GOODs that are not verified, grouped by rebuilder and reason: one line each, with a few of the names. */
function unverifiedLines(report: StatusReport): string[] {
  const groups = new Map<string, string[]>();
  for (const p of report.packages) {
    for (const c of p.cells) {
      if (c.state !== 'GOOD' || c.attestation?.state !== 'unverified') continue;
      const key = `${c.rebuilder}\u0000${c.attestation.reason}`;
      groups.set(key, [...(groups.get(key) ?? []), p.name]);
    }
  }
  return [...groups].map(([key, names]) => {
    const [rebuilder, reason] = key.split('\u0000') as [string, string];
    const shown = names.slice(0, 5).map(displayName).join(', ') + (names.length > 5 ? `, … (${names.length - 5} more)` : '');
    return `rebuilder ${rebuilder}: ${names.length} GOOD${names.length === 1 ? '' : 's'} unverified, ${reason}: ${shown}`;
  });
}

/** The table: one row per package, one column per rebuilder, then the verdict; the rebuilders' keys and errors; the summary. */
export function formatStatus(report: StatusReport): string {
  const head = ['PACKAGE', 'VERSION', ...report.rebuilders.map((r) => r.name), 'VERDICT'];
  const rows = report.packages.map((p) => [displayName(p.name), displayName(p.version), ...p.cells.map((c) => cellText(c, p.version)), p.verdict]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cols: string[]): string => cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  const out = [line(head), ...rows.map(line)];
  for (const r of report.rebuilders) {
    if (r.error !== null) out.push(`rebuilder ${r.name} (${r.url}): no answer: ${r.error}`);
    else out.push(`rebuilder ${r.name} (${r.url}): API ${r.api}, ${keyText(r)}${r.keys.note ? `: ${r.keys.note}` : ''}`);
  }
  for (const p of report.packages) {
    for (const c of p.cells) {
      const a = c.attestation;
      if (c.state === 'GOOD' && a?.state === 'invalid') out.push(`${displayName(p.name)} ${displayName(p.version)}: rebuilder ${c.rebuilder} says GOOD, but its attestation is invalid: ${a.reason}`);
    }
  }
  out.push(...unverifiedLines(report));
  if (report.source === 'pacman-db') {
    out.push("packages from the image's pacman database, which records neither repository nor file digest: rows match on name, version and architecture, and attestations are matched to the file name alone");
  } else if (report.packages.some((p) => p.repository === undefined)) {
    out.push('packages locked from an image (lock --from-image), which names no repository: rows of any repository match on name, version and architecture, and attestations must name the locked file digest');
  }
  const rules = report.policy.rules.map((r) => `${r.match}=${r.require}`);
  out.push(
    `policy: ${report.policy.require} GOOD${report.policy.require === 1 ? '' : 's'} per package${rules.length ? ` (${rules.join(', ')})` : ''}, ` +
      `attestations ${report.policy.attestations}, ${report.policy.failOnBad ? 'any BAD fails' : 'BAD tolerated'}`,
  );
  out.push(report.summary.text);
  return `${out.join('\n')}\n`;
}

/** `--explain PKG`: every rebuilder's row for one package, its links and its attestation. */
export function explainPackage(report: StatusReport, name: string): PackageStatus {
  const found = report.packages.find((p) => p.name === name);
  if (!found) throw new UserError(`--explain ${displayName(name)}: no such package in the input (${report.packages.length} packages)`);
  return found;
}

export function formatExplain(pkg: PackageStatus): string {
  const out = [`${displayName(pkg.name)} ${displayName(pkg.version)} ${displayName(pkg.arch)}${pkg.repository ? ` [${displayName(pkg.repository)}]` : ''}: ${pkg.verdict} (${pkg.good} of ${pkg.require} GOOD needed, ${pkg.bad} against)`];
  if (pkg.fileName) out.push(`  file ${displayName(pkg.fileName)}${pkg.sha256 ? ` sha256:${pkg.sha256}` : ''}`);
  for (const c of pkg.cells) {
    out.push(`rebuilder ${c.rebuilder}: ${cellText(c, pkg.version)}`);
    if (c.row) {
      const r = c.row;
      out.push(`  row: ${displayName(r.name)} ${displayName(r.version)} ${displayName(r.architecture)} [${displayName(r.repository ?? '-')}] status ${r.status ?? 'null'}, build ${r.buildId ?? '-'}${r.artifactId != null ? `, artifact ${r.artifactId}` : ''}${r.date ? `, ${displayName(r.date)} UTC` : ''}`);
      out.push(`  artifact: ${displayName(r.artifactUrl)}`);
    }
    if (c.links?.log) out.push(`  log: ${c.links.log}`);
    if (c.links?.diffoscope) out.push(`  diffoscope: ${c.links.diffoscope}`);
    const a = c.attestation;
    if (a?.state === 'verified') {
      out.push(`  attestation: verified, ${a.url}`);
      out.push(`    digest ${a.digest}, signed by ${a.signedBy.join(', ')}`);
      out.push(`    product ${displayName(a.productFile)} sha256:${a.productSha256}${a.bound ? ' = the locked file' : ' (no locked digest to match)'}`);
    } else if (a) {
      out.push(`  attestation: ${a.state}: ${a.reason}${a.url ? ` (${a.url})` : ''}`);
    }
    if (c.other) for (const o of c.other) out.push(`  other row: ${displayName(o.version)} ${displayName(o.architecture)} [${displayName(o.repository ?? '-')}]`);
  }
  return `${out.join('\n')}\n`;
}
