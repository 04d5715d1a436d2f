import { isDigest, type Digest } from '../oci/digest.js';
import type { PackageRule } from '../status/model.js';
import { normalizeBaseUrl } from '../status/rebuilders.js';
import { displayName } from '../util/raw-name.js';
import type { Statement } from './dsse.js';
import { PACKAGES_REBUILT_LEVEL, VSA_PREDICATE_TYPE } from './media-types.js';
import { policyDigestHex } from './verification-summary.js';

/**
 * The claims of a publish attestation's statement (docs/attestation.md, "Policy"), checked against the image a
 * reference resolved to. Pure: the caller has verified the envelope's signature and read the image's config.
 * The first claim that fails is the answer, so the output names one cause per attestation.
 */

/** Each check of docs/attestation.md's policy, in the order they are made (`verify` prints the failing one). */
export type Claim =
  | 'artifact'
  | 'envelope'
  | 'signature'
  | 'statement'
  | 'subject'
  | 'predicateType'
  | 'verificationResult'
  | 'builds'
  | 'recipe'
  | 'policy.digest'
  | 'package-policy';

/** What the image the reference names says for itself, and the package policy the user requires (`--policy`). */
export interface ExpectedImage {
  /** The manifest digest the reference resolved to (the platform manifest of an index). */
  manifest: Digest;
  /** The recipe label of the image's config; undefined when it carries none. */
  recipe: string | undefined;
  packagePolicy?: RequiredPackagePolicy;
}

/** A package policy as `status` applies it: rebuilders by URL, the default count, first-match rules. */
export interface RequiredPackagePolicy {
  rebuilders: { name: string; url: string }[];
  require: number;
  rules: PackageRule[];
  attestations: 'required' | 'optional';
}

/** What a passing attestation attests, for the report. */
export interface AttestedClaims {
  recipe: string;
  /** The repro-oci version that published it (`verifier.version`), when given as a string. */
  publisher?: string;
  /** The recorded package policy's result: null when none was applied. */
  packages: { total: number; meeting: number; rebuilders: string[] } | null;
}

export type ClaimsResult = { ok: true; claims: AttestedClaims } | { ok: false; claim: Claim; message: string };

class ClaimFailure extends Error {
  constructor(readonly claim: Claim, message: string) {
    super(message);
  }
}

function fail(claim: Claim, message: string): never {
  throw new ClaimFailure(claim, message);
}

export function checkClaims(statement: Statement, expected: ExpectedImage): ClaimsResult {
  try {
    return { ok: true, claims: claims(statement, expected) };
  } catch (err) {
    if (err instanceof ClaimFailure) return { ok: false, claim: err.claim, message: err.message };
    throw err;
  }
}

function claims(statement: Statement, expected: ExpectedImage): AttestedClaims {
  const subjects = statement.subject.map((s) => s.digest);
  if (!subjects.includes(expected.manifest)) fail('subject', `the statement is about ${listed(subjects)}, not ${expected.manifest}: it attests another image`);
  if (statement.predicateType !== VSA_PREDICATE_TYPE) fail('predicateType', `is ${shown(statement.predicateType)}, not ${VSA_PREDICATE_TYPE}`);
  const predicate = statement.predicate;
  if (predicate.verificationResult !== 'PASSED') fail('verificationResult', `is ${shown(String(predicate.verificationResult))}, not PASSED`);
  const ext = predicate.reproOci;
  if (!isObject(ext)) fail('builds', 'the predicate has no reproOci extension (not a repro-oci publish attestation)');

  const builds = Array.isArray(ext.builds) ? ext.builds : fail('builds', 'reproOci.builds is missing or not a list');
  for (const role of ['build', 'rebuild']) {
    const entries = builds.filter((b): b is Record<string, unknown> => isObject(b) && b.role === role);
    if (entries.length === 0) fail('builds', `reproOci.builds has no ${role}`);
    const other = entries.find((b) => b.manifest !== expected.manifest);
    if (other) fail('builds', `the ${role}'s manifest is ${shown(String(other.manifest))}, not ${expected.manifest}`);
  }

  const recipe = isObject(ext.recipe) ? ext.recipe.digest : undefined;
  if (typeof recipe !== 'string' || !isDigest(recipe)) fail('recipe', 'reproOci.recipe.digest is missing or not a sha256 digest');
  if (expected.recipe === undefined) fail('recipe', `the image's config has no recipe label, the attestation names recipe ${recipe}`);
  if (recipe !== expected.recipe) fail('recipe', `the attestation names recipe ${recipe}, the image's config label ${shown(expected.recipe)}`);

  // The digest binds the summary (`policy`) to the details; a missing policy is not the same as `null`.
  if (!('policy' in ext)) fail('policy.digest', 'reproOci.policy is missing (null when no package policy was applied)');
  const policyDigest = isObject(predicate.policy) && isObject(predicate.policy.digest) ? predicate.policy.digest.sha256 : undefined;
  let computed: string;
  try {
    computed = policyDigestHex(ext.policy);
  } catch {
    return fail('policy.digest', 'reproOci.policy has a number that is not a whole number: it has no canonical JSON');
  }
  if (policyDigest !== computed) fail('policy.digest', `is ${shown(String(policyDigest))}, but the canonical JSON of reproOci.policy hashes to ${computed}`);

  const packages = recordedPackages(ext.packages);
  if (expected.packagePolicy) checkPackagePolicy(ext.policy, packages, predicate.verifiedLevels, expected.packagePolicy);
  const version = isObject(predicate.verifier) && isObject(predicate.verifier.version) ? predicate.verifier.version['repro-oci'] : undefined;
  return { recipe, ...(typeof version === 'string' ? { publisher: version } : {}), packages };
}

function recordedPackages(value: unknown): AttestedClaims['packages'] {
  if (value === null || value === undefined) return null;
  if (!isObject(value) || !isCount(value.total) || !isCount(value.meeting) || !Array.isArray(value.rebuilders)) fail('package-policy', 'reproOci.packages is not {total, meeting, rebuilders}');
  const rebuilders = value.rebuilders.map((r) => (isObject(r) && typeof r.name === 'string' ? r.name : fail('package-policy', 'reproOci.packages.rebuilders has an entry without a name')));
  return { total: value.total, meeting: value.meeting, rebuilders };
}

/**
 * `--policy FILE`: the recorded policy is at least as strict as the file's and was met. Strictness is decided
 * without knowing the package names, so soundly rather than completely: each of the file's rebuilders was asked
 * (by URL); the default count is no lower; the file's rules come first in the recorded list, same globs, same
 * order, counts no lower, and any further recorded rule asks at least the file's default (first match wins, so
 * every name then needs at least what the file asks of it); required attestations stay required.
 */
function checkPackagePolicy(value: unknown, packages: AttestedClaims['packages'], levels: unknown, required: RequiredPackagePolicy): void {
  if (value === null || value === undefined) fail('package-policy', 'no package policy was applied when it was published (--policy requires one)');
  const recorded = parseRecordedPolicy(value);
  const urls = new Set(recorded.rebuilders.map((r) => r.url));
  const missing = required.rebuilders.filter((r) => !urls.has(normalizeBaseUrl(r.url, `--policy rebuilder ${displayName(r.name)}`)));
  if (missing.length) fail('package-policy', `rebuilder ${missing.map((r) => `${displayName(r.name)} (${r.url})`).join(', ')} was not asked`);
  if (recorded.require < required.require) fail('package-policy', `it required ${recorded.require} GOOD(s) per package, the policy file ${required.require}`);
  required.rules.forEach((rule, i) => {
    const theirs = recorded.rules[i];
    if (!theirs || theirs.match !== rule.match) fail('package-policy', `the policy file's rule ${i + 1} (${shown(rule.match)}=${rule.require}) is not its rule ${i + 1}${theirs ? ` (${shown(theirs.match)}=${theirs.require})` : ''}`);
    if (theirs.require < rule.require) fail('package-policy', `rule ${shown(rule.match)} required ${theirs.require}, the policy file ${rule.require}`);
  });
  const weaker = recorded.rules.slice(required.rules.length).find((r) => r.require < required.require);
  if (weaker) fail('package-policy', `its rule ${shown(weaker.match)}=${weaker.require} asks less than the policy file's ${required.require} per package`);
  if (required.attestations === 'required' && recorded.attestations !== 'required') fail('package-policy', 'it counted GOODs without verified attestations; the policy file requires them');
  if (!packages) fail('package-policy', 'reproOci.packages (the policy\'s result) is missing');
  if (packages.meeting !== packages.total) fail('package-policy', `${packages.meeting}/${packages.total} packages met it`);
  if (!Array.isArray(levels) || !levels.includes(PACKAGES_REBUILT_LEVEL)) fail('package-policy', `verifiedLevels lacks ${PACKAGES_REBUILT_LEVEL}`);
}

function parseRecordedPolicy(value: unknown): RequiredPackagePolicy {
  const bad = (what: string): never => fail('package-policy', `reproOci.policy: ${what}`);
  if (!isObject(value)) return bad('is not an object');
  if (!Array.isArray(value.rebuilders)) return bad('rebuilders is not a list');
  const rebuilders = value.rebuilders.map((r) => {
    if (!isObject(r) || typeof r.name !== 'string' || typeof r.url !== 'string') return bad('a rebuilder lacks name or url');
    let url: string;
    try {
      url = normalizeBaseUrl(r.url, 'url');
    } catch {
      return bad(`rebuilder url ${shown(r.url)} is not an http(s) base URL`);
    }
    return { name: r.name, url };
  });
  if (!isCount(value.require)) return bad('require is not a whole number');
  if (!Array.isArray(value.rules)) return bad('rules is not a list');
  const rules = value.rules.map((r) => (isObject(r) && typeof r.glob === 'string' && isCount(r.require) ? { match: r.glob, require: r.require } : bad('a rule is not {glob, require}')));
  if (value.attestations !== 'required' && value.attestations !== 'optional') return bad('attestations is neither required nor optional');
  return { rebuilders, require: value.require, rules, attestations: value.attestations };
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function listed(digests: string[]): string {
  return digests.length > 3 ? `${digests.slice(0, 3).join(', ')} and ${digests.length - 3} more` : digests.join(', ');
}

/** A string from the attestation for a one-line message: control characters escaped, cut at 100 characters. */
export function shown(s: string): string {
  return displayName(s.length > 100 ? `${s.slice(0, 100)}…` : s);
}
