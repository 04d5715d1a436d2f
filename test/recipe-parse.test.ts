import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sha256 } from '../src/oci/digest.js';
import { parseRecipe } from '../src/image/recipe.js';
import { sampleLock } from './support/raw-lock.js';

/** A recipe as an image would carry it, with `mutate` applied: a stranger's document, checked in full. */
function recipeBytes(mutate: (recipe: Record<string, unknown>) => void = () => {}): Buffer {
  const recipe: Record<string, unknown> = {
    recipeVersion: 1,
    reproOci: '0.1.0',
    compressor: 'gzip;impl=node-zlib/1.3.1;level=6',
    sourceDateEpoch: 1700000000,
    spec: { repositories: [{ name: 'core', servers: ['repo/$repo/os/$arch'] }], packages: ['alpha'], sigLevel: 'Never' },
    lock: sampleLock({ name: 'alpha', version: '1-1', filename: 'alpha-1-1-any.pkg.tar.zst', sha256: 'a'.repeat(64), csize: 10 }),
  };
  mutate(recipe);
  return Buffer.from(JSON.stringify(recipe));
}

test('a well-formed recipe is accepted', () => {
  const bytes = recipeBytes();
  assert.equal(parseRecipe(bytes, sha256(bytes), 'image').lock.packages[0]!.name, 'alpha');
});

test("an image's recipe whose spec, epoch or compressor is malformed is one line, not a crash later on", () => {
  const cases: [string, (r: Record<string, unknown>) => void, RegExp][] = [
    ['keyring.dir a number', (r) => ((r.spec as Record<string, unknown>).keyring = { dir: 5 }), /image: recipe spec.*keyring/],
    ['noExtract not a list', (r) => ((r.spec as Record<string, unknown>).noExtract = 'usr/*'), /image: recipe spec.*noExtract/],
    ['an unknown spec key', (r) => ((r.spec as Record<string, unknown>).pakages = ['x']), /image: recipe spec.*pakages/],
    ['repositories missing', (r) => delete (r.spec as Record<string, unknown>).repositories, /image: recipe spec.*repositories/],
    ['sourceDateEpoch beyond 9999', (r) => (r.sourceDateEpoch = 1e15), /image: recipe sourceDateEpoch/],
    ['sourceDateEpoch a fraction', (r) => (r.sourceDateEpoch = 1.5), /image: malformed recipe/],
    ['compressor missing', (r) => delete r.compressor, /image: malformed recipe/],
  ];
  for (const [label, mutate, message] of cases) {
    const bytes = recipeBytes(mutate);
    assert.throws(() => parseRecipe(bytes, sha256(bytes), 'image'), (err: Error) => {
      assert.equal(err.name, 'UserError', `${label}: ${err.stack}`);
      assert.match(err.message, message, label);
      assert.ok(!err.message.includes('\n'), `${label}: one line`);
      return true;
    }, label);
  }
});
