import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Statement } from '../src/attest/dsse.js';
import { checkClaims, type ExpectedImage, type RequiredPackagePolicy } from '../src/attest/verify-claims.js';
import { canonicalJsonBytes } from '../src/oci/canonical-json.js';
import { digestHex, sha256, type Digest } from '../src/oci/digest.js';
import { vsaStatement } from './support/verify-fixtures.js';

/** docs/attestation.md's policy, claim by claim, on statements changed one field at a time. */

const MANIFEST = `sha256:${'a1'.repeat(32)}` as Digest;
const RECIPE = `sha256:${'c3'.repeat(32)}`;
const ALPHA = { name: 'alpha', url: 'https://alpha.example.org' };
const BETA = { name: 'beta', url: 'https://beta.example.org' };
const POLICY = { rebuilders: [ALPHA, BETA], require: 2, rules: [{ glob: 'linux*', require: 3 }, { glob: 'tzdata', require: 2 }], attestations: 'required' };
const PACKAGES = { total: 4, meeting: 4, rebuilders: [{ ...ALPHA, good: 4, verified: 4 }, { ...BETA, good: 4, verified: 4 }] };
const EXPECTED: ExpectedImage = { manifest: MANIFEST, recipe: RECIPE };

/** A statement as JSON to reach into: each test changes one path of it, whatever its type. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Editable = Statement & { predicate: Record<string, any> };

function statement(change: (s: Editable) => void = () => {}, policy: unknown = POLICY): Statement {
  const s = vsaStatement({ name: 'registry.example.org/team/hello', manifest: MANIFEST, recipe: RECIPE, policy: structuredClone(policy) as Record<string, unknown>, packages: policy ? structuredClone(PACKAGES) : null }) as Editable;
  change(s);
  return s;
}

/** The policy digest made right again after a change to reproOci.policy (a signer who means it). */
function rehash(s: Editable): void {
  s.predicate.policy.digest.sha256 = digestHex(sha256(canonicalJsonBytes(s.predicate.reproOci.policy)));
}

function failsAt(s: Statement, claim: string, message: RegExp, expected: ExpectedImage = EXPECTED): void {
  const result = checkClaims(s, expected);
  assert.equal(result.ok, false, `expected ${claim} to fail`);
  if (result.ok) return;
  assert.equal(result.claim, claim, result.message);
  assert.match(result.message, message);
  assert.doesNotMatch(result.message, /\n/);
}

describe('claims of a publish attestation', () => {
  test('a statement as publish makes it passes, with and without a package policy', () => {
    assert.deepEqual(checkClaims(statement(), EXPECTED), { ok: true, claims: { recipe: RECIPE, publisher: '0.0.0-test', packages: { total: 4, meeting: 4, rebuilders: ['alpha', 'beta'] } } });
    assert.deepEqual(checkClaims(statement(undefined, null), EXPECTED), { ok: true, claims: { recipe: RECIPE, publisher: '0.0.0-test', packages: null } });
  });

  test('each claim, changed alone, fails by its name', () => {
    failsAt(statement((s) => (s.subject[0]!.digest = `sha256:${'b2'.repeat(32)}`)), 'subject', /is about sha256:(b2){32}, not sha256:(a1){32}: it attests another image/);
    failsAt(statement((s) => (s.predicateType = 'https://slsa.dev/provenance/v1')), 'predicateType', /https:\/\/slsa\.dev\/provenance\/v1, not https:\/\/slsa\.dev\/verification_summary\/v1/);
    failsAt(statement((s) => (s.predicate.verificationResult = 'FAILED')), 'verificationResult', /is FAILED, not PASSED/);
    failsAt(statement((s) => delete s.predicate.reproOci), 'builds', /no reproOci extension/);
    failsAt(statement((s) => (s.predicate.reproOci.builds = [s.predicate.reproOci.builds[0]])), 'builds', /has no rebuild/);
    failsAt(statement((s) => (s.predicate.reproOci.builds[1].manifest = `sha256:${'d4'.repeat(32)}`)), 'builds', /the rebuild's manifest is sha256:(d4){32}, not sha256:(a1){32}/);
    failsAt(statement((s) => s.predicate.reproOci.builds.push({ role: 'build', manifest: 'sha256:x' })), 'builds', /the build's manifest is sha256:x/);
    failsAt(statement(), 'recipe', /the image's config has no recipe label/, { manifest: MANIFEST, recipe: undefined });
    failsAt(statement((s) => (s.predicate.reproOci.recipe.digest = `sha256:${'e5'.repeat(32)}`)), 'recipe', /names recipe sha256:(e5){32}, the image's config label sha256:(c3){32}/);
    failsAt(statement((s) => (s.predicate.reproOci.recipe = 'sha256:1')), 'recipe', /missing or not a sha256 digest/);
    failsAt(statement((s) => (s.predicate.reproOci.policy.require = 1)), 'policy.digest', /the canonical JSON of reproOci\.policy hashes to [0-9a-f]{64}/);
    failsAt(statement((s) => delete s.predicate.reproOci.policy), 'policy.digest', /reproOci\.policy is missing/);
    failsAt(statement((s) => delete s.predicate.policy), 'policy.digest', /is undefined, but/);
    failsAt(statement((s) => (s.predicate.reproOci.policy.require = 1.5)), 'policy.digest', /not a whole number: it has no canonical JSON/);
  });
});

describe('--policy: the recorded package policy at least as strict as the file, and met', () => {
  const file = (policy: Partial<RequiredPackagePolicy> = {}): ExpectedImage => ({
    ...EXPECTED,
    packagePolicy: { rebuilders: [ALPHA], require: 1, rules: [], attestations: 'required', ...policy },
  });
  const passes = (s: Statement, expected: ExpectedImage): void => assert.equal(checkClaims(s, expected).ok, true, JSON.stringify(checkClaims(s, expected)));

  test('as strict or stricter passes', () => {
    passes(statement(), file());
    passes(statement(), file({ rebuilders: [BETA, ALPHA], require: 2, rules: [{ match: 'linux*', require: 3 }] }));
    passes(statement(), file({ rules: [{ match: 'linux*', require: 2 }, { match: 'tzdata', require: 1 }] }));
    passes(statement(), file({ attestations: 'optional' }));
    passes(statement(), file({ rebuilders: [{ name: 'local name', url: 'https://alpha.example.org/' }] }));
  });

  test('weaker, or not met, fails naming what', () => {
    failsAt(statement(undefined, null), 'package-policy', /no package policy was applied when it was published/, file());
    failsAt(statement(), 'package-policy', /rebuilder gamma \(https:\/\/gamma\.example\.org\) was not asked/, file({ rebuilders: [ALPHA, { name: 'gamma', url: 'https://gamma.example.org' }] }));
    failsAt(statement(), 'package-policy', /it required 2 GOOD\(s\) per package, the policy file 3/, file({ require: 3 }));
    failsAt(statement(), 'package-policy', /rule linux\* required 3, the policy file 4/, file({ rules: [{ match: 'linux*', require: 4 }] }));
    failsAt(statement(), 'package-policy', /the policy file's rule 1 \(glibc=1\) is not its rule 1 \(linux\*=3\)/, file({ rules: [{ match: 'glibc', require: 1 }] }));
    failsAt(statement(), 'package-policy', /the policy file's rule 3 \(glibc=1\) is not its rule 3$/, file({ rules: [{ match: 'linux*', require: 3 }, { match: 'tzdata', require: 2 }, { match: 'glibc', require: 1 }] }));
    // A recorded rule beyond the file's that exempts packages the file's default covers.
    failsAt(statement((s) => (s.predicate.reproOci.policy.rules.push({ glob: 'firmware-*', require: 0 }), rehash(s))), 'package-policy', /its rule firmware-\*=0 asks less than the policy file's 1 per package/, file());
    failsAt(statement((s) => ((s.predicate.reproOci.policy.attestations = 'optional'), rehash(s))), 'package-policy', /counted GOODs without verified attestations/, file());
    failsAt(statement((s) => (s.predicate.reproOci.packages.meeting = 3)), 'package-policy', /3\/4 packages met it/, file());
    failsAt(statement((s) => (s.predicate.reproOci.packages = null)), 'package-policy', /reproOci\.packages .* is missing/, file());
    failsAt(statement((s) => (s.predicate.verifiedLevels = ['REPRO_OCI_REBUILT'])), 'package-policy', /verifiedLevels lacks REPRO_OCI_PACKAGES_REBUILT/, file());
    failsAt(statement((s) => ((s.predicate.reproOci.policy.rebuilders = [{ name: 'x', url: 'ftp://x' }]), rehash(s))), 'package-policy', /rebuilder url ftp:\/\/x is not an http\(s\) base URL/, file());
    failsAt(statement((s) => ((s.predicate.reproOci.policy.rules = [{ match: 'a', require: 1 }]), rehash(s))), 'package-policy', /a rule is not \{glob, require\}/, file());
  });
});
