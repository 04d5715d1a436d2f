/**
 * The data `repro-oci status` works on: the packages an input holds, what each rebuilder says about them, and
 * the verdict. Fields this slice does not fill yet (attestations) are declared so that they slot in later.
 */

/** One package to check: from a lock (repository and sha256 known) or an image's pacman database (neither). */
export interface StatusPackage {
  name: string;
  /** Full version, `epoch:pkgver-pkgrel` when there is an epoch. */
  version: string;
  arch: string;
  /** Undefined when the source does not record it (pacman's local database): then any repository matches. */
  repository?: string;
  /** sha256 of the package file, when the lock has it (for attestation checks, not done yet). */
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
  /** v0 only. */
  hasAttestation?: boolean;
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
  /** The verified attestation: not fetched in this version (always undefined). */
  attestation?: undefined;
}

export type Verdict = 'ok' | 'pending' | 'BAD';

export interface PackageStatus extends StatusPackage {
  verdict: Verdict;
  good: number;
  bad: number;
  cells: Cell[];
}

export interface Policy {
  /** GOOD answers each package needs. */
  require: number;
  /** Any BAD fails the package. */
  failOnBad: boolean;
}

export interface StatusReport {
  source: PackageSource;
  policy: Policy;
  rebuilders: { name: string; url: string; api: ApiGeneration | null; error: string | null }[];
  packages: PackageStatus[];
  summary: { packages: number; met: number; pending: number; bad: number; badOn: Record<string, number>; text: string };
  policyMet: boolean;
}
