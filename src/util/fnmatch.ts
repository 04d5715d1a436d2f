/**
 * fnmatch(3) patterns as regular expressions: `*`, `?`, bracket expressions (negated by `!` or `^`) and backslash
 * escapes. With `pathname` (FNM_PATHNAME, as glob(3) matches one directory level) the wildcards stop at `/`;
 * without it (pacman's NoExtract and NoUpgrade) they cross it.
 */
export function fnmatchRegex(pattern: string, options: { pathname: boolean }): RegExp {
  const any = options.pathname ? '[^/]' : '.';
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') out += `${any}*`;
    else if (c === '?') out += any;
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
