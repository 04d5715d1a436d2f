import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalJson } from '../src/oci/canonical-json.js';

test('canonical JSON sorts keys by code point and drops whitespace', () => {
  assert.equal(canonicalJson({ b: 1, a: [true, null, 'x'], 'é': {}, Z: 'z' }), '{"Z":"z","a":[true,null,"x"],"b":1,"é":{}}');
});

test('canonical JSON is independent of insertion order', () => {
  assert.equal(canonicalJson({ x: { q: 1, p: 2 }, y: 3 }), canonicalJson({ y: 3, x: { p: 2, q: 1 } }));
});

test('canonical JSON refuses non-integers', () => {
  assert.throws(() => canonicalJson({ a: 1.5 }), /not a safe integer/);
});

test('canonical JSON orders astral keys by code point, not UTF-16 unit', () => {
  // U+FF5E sorts before U+1F600 by code point, but after it by UTF-16 code unit.
  assert.equal(canonicalJson({ '\u{1F600}': 1, '\uFF5E': 2 }), '{"\uFF5E":2,"\u{1F600}":1}');
});

test('pretty canonical JSON equals JSON.stringify indentation of the sorted value, integer-like keys included', async () => {
  const { canonicalJsonPretty } = await import('../src/oci/canonical-json.js');
  const value = { b: [1, { z: null, '10': 'ten', '2': 'two' }], a: {}, c: [] };
  assert.equal(canonicalJsonPretty(value), '{\n  "a": {},\n  "b": [\n    1,\n    {\n      "10": "ten",\n      "2": "two",\n      "z": null\n    }\n  ],\n  "c": []\n}\n');
});
