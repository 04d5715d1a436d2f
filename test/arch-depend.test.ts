import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDependency, packageSatisfies, parseDependency, provisionSatisfies, satisfies, versionSatisfies } from '../src/pacman/depend.js';

test('parseDependency reads name, operator, version and description', () => {
  assert.deepEqual(parseDependency('glibc'), { name: 'glibc' });
  assert.deepEqual(parseDependency('glibc>=2.38'), { name: 'glibc', op: '>=', version: '2.38' });
  assert.deepEqual(parseDependency('foo<=1:2.0-1'), { name: 'foo', op: '<=', version: '1:2.0-1' });
  assert.deepEqual(parseDependency('foo<2'), { name: 'foo', op: '<', version: '2' });
  assert.deepEqual(parseDependency('foo>2'), { name: 'foo', op: '>', version: '2' });
  assert.deepEqual(parseDependency('sh=1:5.2'), { name: 'sh', op: '=', version: '1:5.2' });
  assert.deepEqual(parseDependency('python-foo: for the foo plugin'), { name: 'python-foo', description: 'for the foo plugin' });
  assert.deepEqual(parseDependency('bar>=1.0: optional: really'), { name: 'bar', op: '>=', version: '1.0', description: 'optional: really' });
  assert.deepEqual(parseDependency('foo='), { name: 'foo', op: '=', version: '' });
});

test('parseDependency searches < before > before =, like libalpm', () => {
  // '<' wins even when '=' or '>' come first in the string.
  assert.deepEqual(parseDependency('a=b<c'), { name: 'a=b', op: '<', version: 'c' });
  assert.deepEqual(parseDependency('a=b>=c'), { name: 'a=b', op: '>=', version: 'c' });
  assert.deepEqual(parseDependency('a>b<=c'), { name: 'a>b', op: '<=', version: 'c' });
  // Operators inside the description do not count.
  assert.deepEqual(parseDependency('a: x<y'), { name: 'a', description: 'x<y' });
});

test('formatDependency round-trips', () => {
  for (const text of ['glibc', 'glibc>=2.38', 'a<1', 'a<=1', 'a=1:2-3', 'a>1', 'opt: why', 'opt>=2: why', 'foo=', 'x: ']) {
    assert.equal(formatDependency(parseDependency(text)), text);
  }
});

test('versionSatisfies applies each operator with vercmp', () => {
  assert.ok(versionSatisfies('1.5-1', '=', '1.5'));
  assert.ok(versionSatisfies('1.10', '>', '1.9'));
  assert.ok(!versionSatisfies('1.0rc', '>=', '1.0'));
  assert.ok(versionSatisfies('1.0rc', '<', '1.0'));
  assert.ok(versionSatisfies('2', '<=', '2'));
  assert.ok(versionSatisfies('anything', undefined, undefined));
});

test('satisfies checks the literal package name and version', () => {
  assert.ok(satisfies(parseDependency('foo>=1'), 'foo', '1.2-1'));
  assert.ok(!satisfies(parseDependency('foo>=1'), 'foo', '0.9-1'));
  assert.ok(!satisfies(parseDependency('foo'), 'foobar', '1'));
  assert.ok(satisfies(parseDependency('foo'), 'foo', '0'));
});

test('provisions: unversioned deps take any provision; versioned deps need name=version', () => {
  const dep = parseDependency('sh');
  assert.ok(provisionSatisfies(dep, 'sh'));
  assert.ok(provisionSatisfies(dep, 'sh=5.2'));
  assert.ok(provisionSatisfies(dep, 'sh>=5'));
  const versioned = parseDependency('sh>=5');
  assert.ok(!provisionSatisfies(versioned, 'sh'));
  assert.ok(!provisionSatisfies(versioned, 'sh>=6'));
  assert.ok(provisionSatisfies(versioned, 'sh=5.2'));
  assert.ok(!provisionSatisfies(versioned, 'sh=4'));
  assert.ok(!provisionSatisfies(versioned, 'bash=5.2'));
});

test('packageSatisfies combines the literal match and provisions', () => {
  const bash = { name: 'bash', version: '5.2.026-2', provides: ['sh'] };
  assert.ok(packageSatisfies(parseDependency('bash>=5'), bash));
  assert.ok(packageSatisfies(parseDependency('sh'), bash));
  assert.ok(!packageSatisfies(parseDependency('sh>=1'), bash));
  assert.ok(!packageSatisfies(parseDependency('zsh'), bash));
});
