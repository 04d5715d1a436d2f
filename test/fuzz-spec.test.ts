import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { parseSpec, repositorySources, resolutionDigest, resolveLocation, specArchitecture } from '../src/lock/spec.js';
import { REPO_ROOT } from './support/cli.js';
import { applyTextEdits, fuzzParameters, hostileText, parsesOrRefuses, textEdits } from './support/fuzz.js';
import { applyTreeEdits, treeEdits } from './support/json-mutation.js';

/** The bundled example (servers beside the spec) and the real-use example (an archive snapshot, by name). */
const EXAMPLES = ['examples/hello-arch/spec.yaml', 'examples/archlinux-base.yaml'].map((path) => readFileSync(join(REPO_ROOT, path), 'utf8'));
const EXAMPLE_TREES = EXAMPLES.map((text) => parseYaml(text) as unknown);
const RUNS = 2000;

/** Loads a spec and, when it is accepted, uses it as a lock resolution would: what the schema lets through must work. */
function loadAndUse(text: string): void {
  const spec = parseSpec(text, 'spec fuzz.yaml');
  resolutionDigest(spec);
  specArchitecture(spec);
  for (const source of repositorySources(spec)) for (const server of source.servers) resolveLocation(server, '/srv/spec');
}

/** YAML features a hostile spec may use: aliases (a billion laughs), merge keys, tags, odd scalars, deep nesting. */
const YAML_TRICKS = [
  'a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\npackages: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n',
  'base: &base {sigLevel: Never}\n<<: *base\npackages: [a]\nrepositories: [core]\n',
  'packages: !!binary aGVsbG8=\n',
  'packages: !custom [a]\n',
  'packages: [0x10, 1e400, .nan, ~, 2024-01-01]\n',
  `packages: ${'['.repeat(500)}${']'.repeat(500)}\n`,
  'architecture: x86_64\narchitecture: aarch64\n',
  '%YAML 1.1\n---\npackages: [a]\n...\n---\npackages: [b]\n',
  '? [complex, key]\n: value\n',
  '"\\u0000\\u001b": 1\n',
];

test('fuzz: spec loader on random YAML documents', () => {
  fc.assert(
    fc.property(fc.oneof(fc.jsonValue({ maxDepth: 4 }).map((v) => stringifyYaml(v)), hostileText(300), fc.constantFrom(...YAML_TRICKS)), (text) =>
      parsesOrRefuses(() => loadAndUse(text)),
    ),
    fuzzParameters(RUNS),
  );
});

test('fuzz: spec loader on mutations of the examples', () => {
  fc.assert(
    fc.property(
      fc.nat(EXAMPLES.length - 1).chain((i) =>
        fc.oneof(
          treeEdits().map((edits) => stringifyYaml(applyTreeEdits(EXAMPLE_TREES[i], edits))),
          textEdits().map((edits) => applyTextEdits(EXAMPLES[i]!, edits)),
        ),
      ),
      (text) => parsesOrRefuses(() => loadAndUse(text)),
    ),
    fuzzParameters(RUNS),
  );
});
