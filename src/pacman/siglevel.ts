import { UserError } from '../errors.js';

/**
 * pacman's SigLevel: when to check signatures (Never/Optional/Required) and which keys to accept
 * (TrustedOnly/TrustAll), separately for packages and databases. Tokens apply left to right; a `Package` or
 * `Database` prefix limits a token to one side. A section's SigLevel only overrides the flags its tokens touched;
 * the rest come from [options] (which itself starts from the built-in `Optional TrustedOnly`).
 */

export type SigCheck = 'never' | 'optional' | 'required';

export interface SigPolicy {
  check: SigCheck;
  /** TrustAll: marginal and unknown trust accepted. TrustedOnly when false. */
  trustAll: boolean;
}

export interface SigLevel {
  package: SigPolicy;
  database: SigPolicy;
}

// Flag bits, mirroring the independent switches pacman keeps (a "never" side still remembers "optional").
const PACKAGE = 1 << 0;
const PACKAGE_OPTIONAL = 1 << 1;
const PACKAGE_TRUST_ALL = 1 << 2;
const DATABASE = 1 << 3;
const DATABASE_OPTIONAL = 1 << 4;
const DATABASE_TRUST_ALL = 1 << 5;

/** Flags plus which of them a SigLevel line set explicitly. */
export interface SigLevelSetting {
  flags: number;
  mask: number;
}

const BUILTIN_FLAGS = PACKAGE | PACKAGE_OPTIONAL | DATABASE | DATABASE_OPTIONAL;

/** No SigLevel tokens seen yet: everything is inherited. */
export function emptySigLevelSetting(): SigLevelSetting {
  return { flags: 0, mask: 0 };
}

/** Applies SigLevel tokens (already split on spaces) to a setting; `where` names the file and line for errors. */
export function applySigLevelTokens(setting: SigLevelSetting, tokens: readonly string[], where: string): SigLevelSetting {
  let { flags, mask } = setting;
  const set = (bits: number): void => {
    flags |= bits;
    mask |= bits;
  };
  const unset = (bits: number): void => {
    flags &= ~bits;
    mask |= bits;
  };
  for (const token of tokens) {
    let value = token;
    let sides: Array<'package' | 'database'> = ['package', 'database'];
    if (token.startsWith('Package')) {
      value = token.slice('Package'.length);
      sides = ['package'];
    } else if (token.startsWith('Database')) {
      value = token.slice('Database'.length);
      sides = ['database'];
    }
    for (const side of sides) {
      const [check, optional, trustAll] = side === 'package' ? [PACKAGE, PACKAGE_OPTIONAL, PACKAGE_TRUST_ALL] : [DATABASE, DATABASE_OPTIONAL, DATABASE_TRUST_ALL];
      switch (value) {
        case 'Never':
          unset(check);
          break;
        case 'Optional':
          set(check | optional);
          break;
        case 'Required':
          set(check);
          unset(optional);
          break;
        case 'TrustedOnly':
          unset(trustAll);
          break;
        case 'TrustAll':
          set(trustAll);
          break;
        default:
          throw new UserError(`${where}: invalid SigLevel value ${JSON.stringify(token)}`);
      }
    }
  }
  return { flags, mask };
}

/** The flags of `over` that it set explicitly, the rest from `base`. */
export function mergeSigLevel(baseFlags: number, over: SigLevelSetting): number {
  return over.mask === 0 ? baseFlags : (over.flags & over.mask) | (baseFlags & ~over.mask);
}

export function sigLevelFromFlags(flags: number): SigLevel {
  const policy = (check: number, optional: number, trustAll: number): SigPolicy => ({
    check: flags & check ? (flags & optional ? 'optional' : 'required') : 'never',
    trustAll: (flags & trustAll) !== 0,
  });
  return {
    package: policy(PACKAGE, PACKAGE_OPTIONAL, PACKAGE_TRUST_ALL),
    database: policy(DATABASE, DATABASE_OPTIONAL, DATABASE_TRUST_ALL),
  };
}

/** pacman's compiled-in default, used when [options] has no SigLevel: `Optional TrustedOnly`. */
export const BUILTIN_SIGLEVEL_FLAGS = BUILTIN_FLAGS;
export const BUILTIN_SIGLEVEL: SigLevel = sigLevelFromFlags(BUILTIN_FLAGS);

/** One SigLevel value's tokens (e.g. `PackageNever`), as a setting that leaves what they do not touch to inherit. */
export function parseSigLevelSetting(value: string, where = 'SigLevel'): SigLevelSetting {
  return applySigLevelTokens(emptySigLevelSetting(), value.split(' ').filter((t) => t !== ''), where);
}

/** Parses one SigLevel value (e.g. `Required DatabaseOptional`) on top of the built-in default. */
export function parseSigLevel(value: string, where = 'SigLevel'): SigLevel {
  return sigLevelFromFlags(mergeSigLevel(BUILTIN_FLAGS, parseSigLevelSetting(value, where)));
}

/**
 * A repository's level as pacman resolves a `[repo]` section: the global SigLevel (over the built-in default), then
 * the repository's own SigLevel, if any, over it — only the flags its tokens touch (`PackageNever` keeps the global
 * database side; `Never` alone keeps the global TrustedOnly/TrustAll).
 */
export function repositorySigLevel(global: string, own: string | undefined, where = 'sigLevel'): SigLevel {
  const base = mergeSigLevel(BUILTIN_FLAGS, parseSigLevelSetting(global, where));
  return sigLevelFromFlags(own === undefined ? base : mergeSigLevel(base, parseSigLevelSetting(own, where)));
}

/** What Arch Linux's shipped /etc/pacman.conf sets in [options]: `SigLevel = Required DatabaseOptional`. */
export const ARCH_LINUX_SIGLEVEL: SigLevel = parseSigLevel('Required DatabaseOptional');

/** The tokens `pacman-conf` prints for a level (`PackageRequired`, `PackageTrustedOnly`, ...). */
export function formatSigLevel(level: SigLevel, sides: ReadonlyArray<'package' | 'database'> = ['package', 'database']): string[] {
  const out: string[] = [];
  for (const side of sides) {
    const prefix = side === 'package' ? 'Package' : 'Database';
    const policy = level[side];
    if (policy.check === 'never') {
      out.push(`${prefix}Never`);
      continue;
    }
    out.push(`${prefix}${policy.check === 'optional' ? 'Optional' : 'Required'}`, `${prefix}${policy.trustAll ? 'TrustAll' : 'TrustedOnly'}`);
  }
  return out;
}
