import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { digestHex, sha256, type Digest } from '../oci/digest.js';
import type { Policy, StatusReport } from '../status/model.js';
import type { Statement } from './dsse.js';
import { PACKAGES_REBUILT_LEVEL, POLICY_URI, REBUILT_LEVEL, VERIFIER_ID, VSA_PREDICATE_TYPE } from './media-types.js';

/**
 * The statement `publish` signs (docs/attestation.md): an in-toto Statement v1 whose predicate is a SLSA
 * Verification Summary v1 ("a verifier checked this artifact") with repro-oci's details in `reproOci`. Pure: the
 * same checks give the same statement, and nothing of the caller's machine (clock, paths, locale) goes into it.
 * `verify` reads what is built here; the field names are the document's.
 */

/** One of the two builds publish compares. `environment` holds only what publish set on purpose. */
export interface BuildRecord {
  role: 'build' | 'rebuild';
  manifest: Digest;
  index?: Digest;
  environment: Record<string, string>;
}

/** The package policy as recorded: who was asked and what each package needed. */
export interface PolicyRecord {
  rebuilders: { name: string; url: string }[];
  require: number;
  rules: { glob: string; require: number }[];
  attestations: 'required' | 'optional';
}

export interface PackagesRecord {
  total: number;
  meeting: number;
  rebuilders: { name: string; url: string; good: number; verified: number }[];
}

export interface ReproOciExtension {
  recipe: { digest: Digest };
  builds: BuildRecord[];
  policy: PolicyRecord | null;
  packages: PackagesRecord | null;
}

export interface SummaryInput {
  /** `<registry>/<repository>` the envelope is pushed to. */
  repository: string;
  manifest: Digest;
  /** The index, when one is pushed (a second subject). */
  index?: Digest;
  version: string;
  recipe: Digest;
  builds: BuildRecord[];
  /** The status report when a package policy was applied (it must have been met: publish signs nothing else). */
  packages?: StatusReport;
}

/** The recorded form of a package policy. publish always fails a package on a BAD, so that is not a field. */
export function policyRecord(policy: Policy, rebuilders: readonly { name: string; url: string }[]): PolicyRecord {
  return {
    rebuilders: rebuilders.map((r) => ({ name: r.name, url: r.url })),
    require: policy.require,
    rules: policy.rules.map((r) => ({ glob: r.match, require: r.require })),
    attestations: policy.attestations,
  };
}

/** The policy's result: packages, how many met it, and per rebuilder its GOOD answers and how many of those verified. */
export function packagesRecord(report: StatusReport): PackagesRecord {
  return {
    total: report.summary.packages,
    meeting: report.summary.met,
    rebuilders: report.rebuilders.map((r, i) => {
      const cells = report.packages.map((p) => p.cells[i]!);
      return {
        name: r.name,
        url: r.url,
        good: cells.filter((c) => c.state === 'GOOD').length,
        verified: cells.filter((c) => c.state === 'GOOD' && c.attestation?.state === 'verified').length,
      };
    }),
  };
}

/**
 * The rebuilder attestations that counted for a package: verified ones (the only ones that count when attestations
 * are required; when optional, an unverified GOOD counts but has no attestation digest to name). By uri, once each.
 */
export function inputAttestations(report: StatusReport): { uri: string; digest: { sha256: string } }[] {
  const byUri = new Map<string, string>();
  for (const pkg of report.packages) {
    for (const cell of pkg.cells) {
      if (cell.state === 'GOOD' && cell.attestation?.state === 'verified') byUri.set(cell.attestation.url, digestHex(cell.attestation.digest as Digest));
    }
  }
  return [...byUri].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([uri, hex]) => ({ uri, digest: { sha256: hex } }));
}

/**
 * The hex sha256 of the canonical JSON of `reproOci.policy`, which `policy.digest` holds. `verify` passes what an
 * attestation recorded, whatever its shape; a number that is not whole has no canonical JSON and throws.
 */
export function policyDigestHex(policy: PolicyRecord | null | unknown): string {
  return digestHex(sha256(canonicalJsonBytes(policy)));
}

/** The predicate, fields as docs/attestation.md lists them. */
export function verificationSummary(input: SummaryInput): Record<string, unknown> {
  const report = input.packages;
  const policy = report ? policyRecord(report.policy, report.rebuilders) : null;
  const reproOci: ReproOciExtension = {
    recipe: { digest: input.recipe },
    builds: input.builds.map((b) => ({ role: b.role, manifest: b.manifest, ...(b.index ? { index: b.index } : {}), environment: { ...b.environment } })),
    policy,
    packages: report ? packagesRecord(report) : null,
  };
  return {
    verifier: { id: VERIFIER_ID, version: { 'repro-oci': input.version } },
    resourceUri: `docker://${input.repository}@${input.index ?? input.manifest}`,
    policy: { uri: POLICY_URI, digest: { sha256: policyDigestHex(policy) } },
    inputAttestations: report ? inputAttestations(report) : [],
    verificationResult: 'PASSED',
    verifiedLevels: report ? [REBUILT_LEVEL, PACKAGES_REBUILT_LEVEL] : [REBUILT_LEVEL],
    slsaVersion: '1.0',
    reproOci,
  };
}

/** The statement for one destination repository: subject the manifest (and the index when pushed). */
export function verificationStatement(input: SummaryInput): Statement {
  return {
    subject: [
      { name: input.repository, digest: input.manifest },
      ...(input.index ? [{ name: input.repository, digest: input.index }] : []),
    ],
    predicateType: VSA_PREDICATE_TYPE,
    predicate: verificationSummary(input),
  };
}
