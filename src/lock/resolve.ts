import { UserError } from '../errors.js';
import type { SyncDesc } from '../pacman/desc.js';
import { formatDependency, packageSatisfies, parseDependency, satisfies, type Dependency } from '../pacman/depend.js';

/**
 * Dependency resolution with the semantics of `pacman -S --noconfirm TARGETS` into an empty root, following
 * libalpm (sync.c, deps.c) step by step so that the result — set, reasons and install order — is what pacman
 * would do. test/arch-resolve.test.ts compares it with real pacman (`pacman -Sp`).
 */

export interface RepoPackage {
  repo: string;
  desc: SyncDesc;
  depends: Dependency[];
  provides: Dependency[];
  conflicts: Dependency[];
}

/** A sync repository: its packages sorted by name as bytes (pacman's package cache order). */
export interface Repository {
  name: string;
  packages: RepoPackage[];
}

export interface ResolvedPackage {
  pkg: RepoPackage;
  /** 'explicit' for targets, 'dependency' for packages pulled in (%REASON% 1). */
  reason: 'explicit' | 'dependency';
}

export interface Resolution {
  /** In install order: dependencies before the packages that need them. */
  packages: ResolvedPackage[];
  warnings: string[];
}

export function repoPackage(repo: string, desc: SyncDesc): RepoPackage {
  return {
    repo,
    desc,
    depends: desc.depends.map(parseDependency),
    provides: desc.provides.map(parseDependency),
    conflicts: desc.conflicts.map(parseDependency),
  };
}

function satisfier(pkg: RepoPackage) {
  return { name: pkg.desc.name, version: pkg.desc.version, provides: pkg.provides };
}

function satisfiedBy(pkg: RepoPackage, dep: Dependency): boolean {
  return packageSatisfies(dep, satisfier(pkg));
}


/** libalpm resolvedep(): a literal name in the first repository that has it, else the first provider. */
function findInRepos(repos: Repository[], dep: Dependency, excluding: Set<string>): RepoPackage | undefined {
  for (const repo of repos) {
    const pkg = repo.packages.find((p) => p.desc.name === dep.name);
    if (pkg && satisfies(dep, pkg.desc.name, pkg.desc.version) && !excluding.has(pkg.desc.name)) return pkg;
  }
  // Providers are collected over all repositories; with --noconfirm the first one is taken.
  for (const repo of repos) {
    for (const pkg of repo.packages) {
      if (pkg.desc.name !== dep.name && satisfiedBy(pkg, dep) && !excluding.has(pkg.desc.name)) return pkg;
    }
  }
  return undefined;
}

function findSatisfier(list: RepoPackage[], dep: Dependency): RepoPackage | undefined {
  return list.find((pkg) => satisfiedBy(pkg, dep));
}

/** Turns command-line targets into the transaction's target list, as pacman's process_target does. */
function collectTargets(repos: Repository[], targets: string[], warnings: string[]): RepoPackage[] {
  const added: RepoPackage[] = [];
  const add = (pkg: RepoPackage): void => {
    const dup = added.find((p) => p.desc.name === pkg.desc.name);
    if (dup === pkg) return; // the same package named twice
    if (dup) {
      warnings.push(`skipping target: ${pkg.desc.name}`);
      return;
    }
    added.push(pkg);
  };
  for (const target of targets) {
    const slash = target.indexOf('/');
    let searched = repos;
    let name = target;
    if (slash > 0) {
      const repo = repos.find((r) => r.name === target.slice(0, slash));
      if (!repo) throw new UserError(`database not found: ${target.slice(0, slash)}`);
      searched = [repo];
      name = target.slice(slash + 1);
    }
    const pkg = findInRepos(searched, parseDependency(name), new Set());
    if (pkg) {
      add(pkg);
      continue;
    }
    // Not a package or provision: a group, with members from every searched repository (earlier ones win).
    const members: RepoPackage[] = [];
    for (const repo of searched) {
      for (const member of repo.packages) {
        if (member.desc.groups.includes(name) && !members.some((m) => m.desc.name === member.desc.name)) members.push(member);
      }
    }
    if (members.length === 0) throw new UserError(`target not found: ${target}`);
    members.forEach(add);
  }
  return added;
}

/** libalpm _alpm_resolvedeps(): pre-order, depth first, each missing dependency resolved where it is met. */
function resolveDeps(repos: Repository[], pkg: RepoPackage, preferred: RepoPackage[], resolved: RepoPackage[]): void {
  if (resolved.some((p) => p.desc.name === pkg.desc.name)) return;
  resolved.push(pkg);
  for (const dep of pkg.depends) {
    if (satisfiedBy(pkg, dep)) continue; // checkdeps looks at the package itself too
    if (findSatisfier(resolved, dep)) continue;
    const found = findSatisfier(preferred, dep) ?? findInRepos(repos, dep, new Set(resolved.map((p) => p.desc.name)));
    if (!found) throw new UserError(`unable to satisfy dependency '${formatDependency(dep)}' required by ${pkg.desc.name}`);
    resolveDeps(repos, found, preferred, resolved);
  }
}

/** libalpm _alpm_sortbydeps(): depth-first post-order over the resolved list, children in list order. */
function sortByDeps(packages: RepoPackage[], warnings: string[]): RepoPackage[] {
  const dependsOn = (a: RepoPackage, b: RepoPackage): boolean => a.depends.some((dep) => satisfiedBy(b, dep));
  const children = packages.map((a) => packages.filter((b) => dependsOn(a, b)));
  const state = packages.map(() => 'new' as 'new' | 'open' | 'done');
  const out: RepoPackage[] = [];
  const visit = (i: number): void => {
    state[i] = 'open';
    for (const child of children[i]!) {
      const j = packages.indexOf(child);
      if (state[j] === 'new') visit(j);
      else if (state[j] === 'open' && j !== i) warnings.push(`dependency cycle detected: ${packages[i]!.desc.name} will be installed before its ${child.desc.name} dependency`);
    }
    state[i] = 'done';
    out.push(packages[i]!);
  };
  packages.forEach((_, i) => state[i] === 'new' && visit(i));
  return out;
}

/** libalpm _alpm_innerconflicts(): every (package, conflict, other package) triple, each pair once. */
function innerConflicts(packages: RepoPackage[]): { a: RepoPackage; b: RepoPackage; conflict: Dependency }[] {
  const found: { a: RepoPackage; b: RepoPackage; conflict: Dependency }[] = [];
  for (const a of packages) {
    for (const conflict of a.conflicts) {
      for (const b of packages) {
        if (a.desc.name === b.desc.name || !satisfiedBy(b, conflict)) continue;
        if (found.some((c) => (c.a === a && c.b === b) || (c.a === b && c.b === a))) continue;
        found.push({ a, b, conflict });
      }
    }
  }
  return found;
}

export function resolve(repos: Repository[], targets: string[]): Resolution {
  const warnings: string[] = [];
  if (targets.length === 0) throw new UserError('no packages to install');
  const explicit = collectTargets(repos, targets, warnings);
  const resolved: RepoPackage[] = [];
  for (const pkg of explicit) resolveDeps(repos, pkg, explicit, resolved);
  let ordered = sortByDeps(resolved, warnings);

  for (const { a, b, conflict } of innerConflicts(ordered)) {
    if (!ordered.includes(a) || !ordered.includes(b)) continue;
    // One of two conflicting packages that provides the other replaces it; anything else is fatal.
    let removed: RepoPackage;
    let kept: RepoPackage;
    if (satisfiedBy(a, parseDependency(b.desc.name))) [removed, kept] = [b, a];
    else if (satisfiedBy(b, parseDependency(a.desc.name))) [removed, kept] = [a, b];
    else throw new UserError(`unresolvable package conflicts detected: ${a.desc.name} and ${b.desc.name} are in conflict (${a.desc.name} conflicts with '${formatDependency(conflict)}')`);
    warnings.push(`removing '${removed.desc.name}' from target list because it conflicts with '${kept.desc.name}'`);
    ordered = ordered.filter((p) => p !== removed);
  }

  const explicitNames = new Set(explicit.map((p) => p.desc.name));
  return {
    packages: ordered.map((pkg) => ({ pkg, reason: explicitNames.has(pkg.desc.name) ? 'explicit' : 'dependency' })),
    warnings,
  };
}
