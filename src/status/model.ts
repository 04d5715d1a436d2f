import type { AttestationKey } from './attestation.js';

/**
 * The data `repro-oci status` works on: the packages an input holds, what each rebuilder says about them, the
 * attestations that back a GOOD, and the verdict under a policy.
 */

/** One package to check: from a lock (repository and sha256 known) or an image's pacman database (neither). */
export interface StatusPackage {
  name: string;
  /** Full version, `epoch:pkgver-pkgrel` when there is an epoch. */
  version: string;
  arch: string;
  /** Undefined when the source does not record it (pacman's local database): then any repository matches. */
  repository?: string;
  /** The package file's name and sha256, when the lock has them: an attestation must name this very file. */
  fileName?: string;
  sha256?: string;
}

export type PackageSource = 'lock' | 'recipe' | 'pacman-db';

export interface PackageSet {
  source: PackageSource;
  packages: StatusPackage[];
}

/** A rebuilderd instance. `url` has no trailing slash. */
export interface Rebuilder {
  name: string;
  url: string;
  /** Keys given by the user (rebuilders file, `--rebuilder URL=KEYFILE`): used as given, never fetched or pinned. */
  keys?: AttestationKey[];
}

export type RebuildStatus = 'GOOD' | 'BAD' | 'UNKWN';

/** One row of a rebuilder's package list, the same for both API generations. */
export interface RebuilderRow {
  name: string;
  version: string;
  architecture: string;
  /** v1 `component`, v0 `suite`; null when the server gives none. */
  repository: string | null;
  /** null: listed but never built (v1). */
  status: RebuildStatus | null;
  buildId: number | null;
  /** v1 only. */
  artifactId?: number | null;
  /** v1 only. */
  attestationLogId?: number | null;
  /** v1 only. */
  diffoscopeLogId?: number | null;
  /** v0 only. */
  hasAttestation?: boolean;
  /** v0 only. */
  hasDiffoscope?: boolean;
  /** When it was built (v0 `built_at`) or last seen in a sync (v1 `last_seen`), as the server wrote it (UTC). */
  date?: string | null;
  /** The package file the rebuilder compared against (v1 `url`, v0 `artifact_url`). */
  artifactUrl: string;
}

export type ApiGeneration = 'v1' | 'v0';

/** What a rebuilder answered for the names asked: every row per name, or why there is no answer. */
export type RebuilderAnswer =
  | { rebuilder: Rebuilder; api: ApiGeneration; rows: Map<string, RebuilderRow[]> }
  | { rebuilder: Rebuilder; error: string };

/**
 * One rebuilder's word on one package. `other` lists rows for the same name that do not match exactly (another
 * version, repository or architecture); they are shown, never counted.
 */
export type CellState = 'GOOD' | 'BAD' | 'UNKWN' | 'not built' | 'not listed' | 'other version' | 'no answer';

export interface Cell {
  rebuilder: string;
  state: CellState;
  /** The exactly matching row, when there is one. */
  row?: RebuilderRow;
  other?: { version: string; repository: string | null; architecture: string }[];
  /** For a GOOD: what its attestation proves. */
  attestation?: AttestationCheck;
  /** Where the rebuilder keeps the build log, diffoscope and attestation of the exact row (for --explain). */
  links?: { log?: string; diffoscope?: string; attestation?: string };
}

/**
 * What an attestation proves for a GOOD: `verified` (signed by the rebuilder's key, its product is this package's
 * file, with the locked sha256 when there is one), `unverified` (none served, or no key to check it: the
 * rebuilder's word alone), or `invalid` (served but fails a check: a wrong signature or another file's hash).
 */
export type AttestationCheck =
  | { state: 'verified'; url: string; digest: string; productFile: string; productSha256: string; bound: boolean; signedBy: string[] }
  | { state: 'unverified'; reason: string; url?: string }
  | { state: 'invalid'; reason: string; url: string };

export type Verdict = 'ok' | 'pending' | 'BAD';

export interface PackageStatus extends StatusPackage {
  verdict: Verdict;
  /** The GOOD answers that count under the policy (verified ones, or any GOOD when attestations are optional). */
  good: number;
  /** BAD answers, and GOOD answers whose attestation is invalid. */
  bad: number;
  /** GOOD answers this package needs (the policy's rule for it). */
  require: number;
  cells: Cell[];
}

/** A per-package rule: packages whose name matches the glob need `require` counted GOODs (0: not checked). */
export interface PackageRule {
  match: string;
  require: number;
}

export interface Policy {
  /** GOOD answers each package needs, unless a rule names it. */
  require: number;
  /** First matching rule wins. */
  rules: PackageRule[];
  /** Any BAD (or invalid attestation) fails the package. */
  failOnBad: boolean;
  /** `required`: only GOODs with a verified attestation count; `optional`: any GOOD not contradicted by its attestation. */
  attestations: 'required' | 'optional';
}

/** How the rebuilder's attestation keys were obtained. */
export type KeySource = 'given' | 'pinned' | 'pinned now' | 'none';

export interface StatusReport {
  source: PackageSource;
  policy: Policy;
  rebuilders: { name: string; url: string; api: ApiGeneration | null; error: string | null; keys: { source: KeySource; fingerprints: string[]; note: string | null } }[];
  packages: PackageStatus[];
  summary: { packages: number; met: number; pending: number; bad: number; badOn: Record<string, number>; invalidOn: Record<string, number>; text: string };
  policyMet: boolean;
}
