import { fnmatchRegex } from '../util/fnmatch.js';
/**
 * pacman.conf NoExtract / NoUpgrade patterns: fnmatch(3) with no flags (so `*` also matches `/`), checked
 * from the last pattern to the first; the first match decides, and a leading `!` makes it a "do extract".
 */
export class PathPatterns {
  private readonly rules: { negated: boolean; regex: RegExp }[];

  constructor(patterns: readonly string[]) {
    this.rules = patterns.map((raw) => {
      const negated = raw.startsWith('!');
      const pattern = negated || raw.startsWith('\\') ? raw.slice(1) : raw;
      return { negated, regex: fnmatchRegex(pattern, { pathname: false }) };
    });
  }

  /** Whether `path` (relative, no leading slash, as in the package) is matched. */
  matches(path: string): boolean {
    for (let i = this.rules.length - 1; i >= 0; i--) {
      const rule = this.rules[i]!;
      if (rule.regex.test(path)) return !rule.negated;
    }
    return false;
  }
}
