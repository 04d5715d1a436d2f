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
      return { negated, regex: fnmatchRegex(pattern) };
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

function fnmatchRegex(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '\\' && i + 1 < pattern.length) out += escape(pattern[++i]!);
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) {
        out += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      out += `[${negate ? '^' : ''}${body.replace(/\\/g, '\\\\').replace(/\]/g, '\\]')}]`;
      i = end;
    } else out += escape(c);
  }
  return new RegExp(`^${out}$`, 's');
}

function escape(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
