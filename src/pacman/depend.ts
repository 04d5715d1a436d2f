import { vercmp } from './version.js';

/**
 * Dependency strings `name[op version][: description]` as libalpm reads them (depends, provides, conflicts,
 * replaces, optdepends all use this shape).
 */

export type DependOperator = '<' | '<=' | '=' | '>=' | '>';

export interface Dependency {
  name: string;
  /** Absent for an unversioned dependency. */
  op?: DependOperator;
  /** Present exactly when `op` is (it may be empty, as in `foo=`). */
  version?: string;
  /** Text after the first `: ` (optdepends); absent when there is none. */
  description?: string;
}

/**
 * Parses like alpm_dep_from_string: the description starts at the first `: ` (the space keeps an epoch's colon
 * out), then the operator is the first `<` if any (`<=` or `<`), else the first `>`, else the first `=`.
 */
export function parseDependency(text: string): Dependency {
  const descAt = text.indexOf(': ');
  const spec = descAt === -1 ? text : text.slice(0, descAt);
  const dep: Dependency = { name: spec };
  for (const symbol of ['<', '>', '='] as const) {
    const at = spec.indexOf(symbol);
    if (at === -1) continue;
    const orEqual = symbol !== '=' && spec[at + 1] === '=';
    dep.name = spec.slice(0, at);
    dep.op = orEqual ? (`${symbol}=` as DependOperator) : symbol;
    dep.version = spec.slice(at + (orEqual ? 2 : 1));
    break;
  }
  if (descAt !== -1) dep.description = text.slice(descAt + 2);
  return dep;
}

/** The inverse of parseDependency, as alpm_dep_compute_string writes it. */
export function formatDependency(dep: Dependency): string {
  const constraint = dep.op !== undefined ? `${dep.op}${dep.version ?? ''}` : '';
  const description = dep.description !== undefined ? `: ${dep.description}` : '';
  return `${dep.name}${constraint}${description}`;
}

/** Whether `version` meets `op wanted`; an unversioned constraint is met by anything. */
export function versionSatisfies(version: string, op: DependOperator | undefined, wanted: string | undefined): boolean {
  if (op === undefined) return true;
  const order = vercmp(version, wanted ?? '');
  switch (op) {
    case '<':
      return order < 0;
    case '<=':
      return order <= 0;
    case '=':
      return order === 0;
    case '>=':
      return order >= 0;
    case '>':
      return order > 0;
  }
}

/** Whether a package literally named `name` at `version` satisfies `dep` (provisions aside). */
export function satisfies(dep: Dependency, name: string, version: string): boolean {
  return dep.name === name && versionSatisfies(version, dep.op, dep.version);
}

/**
 * Whether one provision satisfies `dep`: an unversioned dependency accepts any provision of that name; a
 * versioned one only a provision `name=version` whose version satisfies it (`name>=1` provides nothing versioned).
 */
export function provisionSatisfies(dep: Dependency, provision: Dependency | string): boolean {
  const provided = typeof provision === 'string' ? parseDependency(provision) : provision;
  if (provided.name !== dep.name) return false;
  if (dep.op === undefined) return true;
  return provided.op === '=' && versionSatisfies(provided.version ?? '', dep.op, dep.version);
}

export interface Satisfier {
  name: string;
  version: string;
  provides: ReadonlyArray<Dependency | string>;
}

/** Whether a package satisfies `dep` by its own name and version or by one of its provisions (like _alpm_depcmp). */
export function packageSatisfies(dep: Dependency, pkg: Satisfier): boolean {
  return satisfies(dep, pkg.name, pkg.version) || pkg.provides.some((provision) => provisionSatisfies(dep, provision));
}
