import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { compareVersionPart, splitVersion, vercmp } from '../src/pacman/version.js';

/** The cases of pacman's own test/util/vercmptest.sh (each is also checked mirrored). */
const PACMAN_CASES: Array<[string, string, -1 | 0 | 1]> = [
  // all similar length, no pkgrel
  ['1.5.0', '1.5.0', 0],
  ['1.5.1', '1.5.0', 1],
  // mixed length
  ['1.5.1', '1.5', 1],
  // with pkgrel, simple
  ['1.5.0-1', '1.5.0-1', 0],
  ['1.5.0-1', '1.5.0-2', -1],
  ['1.5.0-1', '1.5.1-1', -1],
  ['1.5.0-2', '1.5.1-1', -1],
  // with pkgrel, mixed lengths
  ['1.5-1', '1.5.1-1', -1],
  ['1.5-2', '1.5.1-1', -1],
  ['1.5-2', '1.5.1-2', -1],
  // mixed pkgrel inclusion
  ['1.5', '1.5-1', 0],
  ['1.5-1', '1.5', 0],
  ['1.1-1', '1.1', 0],
  ['1.0-1', '1.1', -1],
  ['1.1-1', '1.0', 1],
  // alphanumeric versions
  ['1.5b-1', '1.5-1', -1],
  ['1.5b', '1.5', -1],
  ['1.5b-1', '1.5', -1],
  ['1.5b', '1.5.1', -1],
  // from the manpage
  ['1.0a', '1.0alpha', -1],
  ['1.0alpha', '1.0b', -1],
  ['1.0b', '1.0beta', -1],
  ['1.0beta', '1.0rc', -1],
  ['1.0rc', '1.0', -1],
  // alpha-dotted versions
  ['1.5.a', '1.5', 1],
  ['1.5.b', '1.5.a', 1],
  ['1.5.1', '1.5.b', 1],
  // alpha dots and dashes
  ['1.5.b-1', '1.5.b', 0],
  ['1.5-1', '1.5.b', -1],
  // same/similar content, differing separators
  ['2.0', '2_0', 0],
  ['2.0_a', '2_0.a', 0],
  ['2.0a', '2.0.a', -1],
  ['2___a', '2_a', 1],
  // epoch included version comparisons
  ['0:1.0', '0:1.0', 0],
  ['0:1.0', '0:1.1', -1],
  ['1:1.0', '0:1.0', 1],
  ['1:1.0', '0:1.1', 1],
  ['1:1.0', '2:1.1', -1],
  // epoch + sometimes present pkgrel
  ['1:1.0', '0:1.0-1', 1],
  ['1:1.0-1', '0:1.1-1', 1],
  // epoch included on one version
  ['0:1.0', '1.0', 0],
  ['0:1.0', '1.1', -1],
  ['0:1.1', '1.0', 1],
  ['1:1.0', '1.0', 1],
  ['1:1.0', '1.1', 1],
  ['1:1.1', '1.1', 1],
];

test("vercmp agrees with pacman's own vercmp test cases, both ways round", () => {
  for (const [a, b, expected] of PACMAN_CASES) {
    assert.equal(vercmp(a, b), expected, `vercmp ${a} ${b}`);
    assert.equal(vercmp(b, a), -expected || 0, `vercmp ${b} ${a}`);
  }
});

test('vercmp: leading zeros, long numbers and trailing separators', () => {
  assert.equal(vercmp('1.001', '1.1'), 0);
  assert.equal(vercmp('1.0010', '1.9'), 1);
  assert.equal(vercmp('123456789012345678901234567890', '123456789012345678901234567891'), -1);
  assert.equal(vercmp('1.0', '1.0.'), -1);
  assert.equal(vercmp('1.0-', '1.0-1'), -1);
  assert.equal(vercmp(':1.0', '0:1.0'), 0);
});

test('splitVersion finds epoch, pkgver and pkgrel like pacman', () => {
  assert.deepEqual(splitVersion('2:1.0-3'), { epoch: '2', pkgver: '1.0', pkgrel: '3' });
  assert.deepEqual(splitVersion('1.0'), { epoch: '0', pkgver: '1.0', pkgrel: undefined });
  assert.deepEqual(splitVersion('a:1-2-3'), { epoch: '0', pkgver: 'a:1-2', pkgrel: '3' });
  assert.equal(compareVersionPart('1.0', '1_0'), 0);
});

/** Deterministic PRNG (mulberry32) so a failure can be replayed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomVersion(random: () => number): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const segment = (): string =>
    pick([
      () => String(Math.floor(random() * 12)),
      () => '0'.repeat(1 + Math.floor(random() * 2)) + String(Math.floor(random() * 10)),
      () => pick(['a', 'b', 'rc', 'alpha', 'beta', 'pre', 'Z', 'r']),
      () => pick(['1a', 'a1', '2b3', 'rc1', '10', '99999999999999999999']),
    ])();
  const part = (allowSeparatorStart: boolean): string => {
    let out = allowSeparatorStart && random() < 0.05 ? pick(['.', '_']) : '';
    const count = 1 + Math.floor(random() * 4);
    for (let i = 0; i < count; i++) {
      if (i > 0) out += pick(['.', '.', '.', '_', '+', '~', '..', '', '._']);
      out += segment();
    }
    if (random() < 0.05) out += pick(['.', '_', '+']);
    return out;
  };
  let version = '';
  if (random() < 0.25) version += `${pick(['0', '1', '2', '01', ''])}:`;
  version += part(version !== '');
  if (random() < 0.5) version += `-${random() < 0.1 ? part(false) : String(1 + Math.floor(random() * 3))}`;
  if (random() < 0.03) version += '-';
  return version;
}

function nearbyVersion(random: () => number, base: string): string {
  // Small edits make equal and almost-equal pairs, where ordering bugs hide.
  const edits = [
    (v: string) => v,
    (v: string) => v.replace(/\./, '_'),
    (v: string) => v.replace(/(\d)/, '0$1'),
    (v: string) => `${v}.0`,
    (v: string) => `${v}a`,
    (v: string) => v.replace(/-\d+$/, ''),
    (v: string) => `0:${v}`,
    (v: string) => v.replace(/\d(?!.*\d)/, (d) => String((Number(d) + 1) % 10)),
  ];
  return edits[Math.floor(random() * edits.length)]!(base);
}

test('vercmp matches /usr/bin/vercmp on 3000 seeded pseudo-random pairs', (t) => {
  if (!existsSync('/usr/bin/vercmp')) {
    t.skip('/usr/bin/vercmp is not installed; pacman oracle comparison skipped');
    return;
  }
  const random = prng(0x5eed);
  const pairs: Array<[string, string]> = [];
  while (pairs.length < 3000) {
    const a = randomVersion(random);
    const b = random() < 0.4 ? nearbyVersion(random, a) : randomVersion(random);
    // vercmp reads its arguments as options when they start with '-'; `read` needs non-empty fields.
    if (a === '' || b === '' || a.startsWith('-') || b.startsWith('-')) continue;
    pairs.push([a, b]);
  }
  const dir = mkdtempSync(join(tmpdir(), 'vercmp-'));
  try {
    const input = join(dir, 'pairs');
    writeFileSync(input, pairs.map(([a, b]) => `${a} ${b}\n`).join(''));
    const output = execFileSync('bash', ['-c', 'while read -r a b; do /usr/bin/vercmp "$a" "$b"; done < "$1"', 'vercmp-loop', input], {
      encoding: 'utf8',
      maxBuffer: 16 * 1024 * 1024,
    });
    const lines = output.split('\n').filter((line) => line !== '');
    assert.equal(lines.length, pairs.length);
    const mismatches: string[] = [];
    pairs.forEach(([a, b], i) => {
      const expected = Math.sign(Number(lines[i]));
      if (vercmp(a, b) !== expected) mismatches.push(`vercmp ${a} ${b}: pacman says ${expected}, we say ${vercmp(a, b)}`);
    });
    assert.deepEqual(mismatches, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
