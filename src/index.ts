/**
 * The public module of repro-oci (`import … from 'repro-oci'`): every CLI verb as a function with typed options
 * and results, and the types a caller needs. Functions never print and never exit: they return results, report
 * notes through an optional `log` callback (and progress only inside withProgress()), and throw (UserError for a
 * user's mistake or hostile input).
 * See docs/api.md.
 */

// The verbs.
export { lockSpecFile as lock, checkLockFile, defaultLockPath, diffLocks, lockChanges, type LockChange, type LockSpecOptions, type LockSpecResult } from './lock/lock.js';
export { lockFromImage, createImageLock, DEFAULT_ARCHIVE_URL, type LockFromImageOptions, type LockFromImageResult } from './lock/from-image.js';
export {
  buildSpecFile as build,
  buildLockedSpec as buildFromLock,
  type SpecFileBuildOptions,
  type SpecOutputOptions,
  type SpecBuildResult,
} from './image/build-spec.js';
export { buildBootstrapSpecFile as buildBootstrap, type BootstrapFileBuildOptions, type BootstrapFileBuild, type BuiltBootstrap, type BootstrapRecipe } from './bootstrap/build.js';
export { buildRootfsImage as buildRootfs, type RootfsBuildOptions, type BuildResult, type BuiltImage, type WrittenOutput } from './image/build-rootfs.js';
export type { Timings } from './util/timings.js';
export {
  rebuildReference as rebuild,
  rebuild as rebuildSource,
  formatRebuild,
  type RebuildReferenceOptions,
  type RebuildOptions,
  type RebuildResult,
} from './verify/rebuild.js';
export {
  verifyForeignReference as rebuildFromPacmanDb,
  verifyForeignImage,
  formatForeignRebuild,
  foreignRebuildJson,
  foreignContentPasses,
  type ForeignRebuildOptions,
  type ForeignRebuildReferenceOptions,
  type ForeignRebuildResult,
} from './foreign/verify-content.js';
export type { ContentReport, DifferingPath, MissingGroup, UnownedPath, GeneratedPath, FieldDifference } from './foreign/content-compare.js';
export type { LayerCheck, LayerContents } from './foreign/layers.js';
export {
  verifyReference as verify,
  verifyImage,
  formatVerify,
  verifyJson,
  loadTrustedKeys,
  readPackagePolicy,
  MAX_ATTESTATIONS,
  type VerifyReferenceOptions,
  type VerifyImageOptions,
  type VerifyResult,
  type AttestationReport,
} from './attest/verify-image.js';
export { checkClaims, type Claim, type ClaimsResult, type AttestedClaims, type ExpectedImage, type RequiredPackagePolicy } from './attest/verify-claims.js';
export { diffReferences as diff, DEFAULT_REPORT_LIMIT, type DiffReferencesOptions, type DiffReferencesResult } from './compare/diff-references.js';
export {
  diffImages,
  formatDiff,
  formatDifference,
  diffJson,
  type DiffOptions,
  type DiffReport,
  type DiffSummary,
  type DiffJson,
  type Difference,
  type DifferenceKind,
  type Level,
  type NotCompared,
  type Side,
} from './compare/image-diff.js';
export { parsePrintedName } from './compare/printed-path.js';
export { copyReference as copy, copyImage, type CopyReferenceOptions } from './transports/copy.js';
export {
  inspectReference as inspect,
  inspectDocument,
  formatInspect,
  type InspectOptions,
  type InspectReport,
  type ImageReport,
  type RecipeSummary,
  type InspectDocument,
  type InspectDocumentOptions,
} from './transports/inspect.js';
export {
  installLock as install,
  listLock as ls,
  treeFromLock,
  type TreeFromLockOptions,
  type InstallLockResult,
  type ListedEntry,
} from './install/from-lock.js';
export type { InstalledTree, TreeNode } from './install/installer.js';
export { checkStatus as status, packagesOf, type StatusOptions } from './status/status.js';
export { HttpCache } from './status/http-cache.js';
export { explainPackage, formatExplain, formatStatus } from './status/verdict.js';
export { defaultStateDir } from './status/keys.js';
export { parseRebuilderKeys, publicKeyPem, signLink, verifyAttestation, type AttestationKey, type ExpectedProduct, type VerifiedAttestation } from './status/attestation.js';
export { publishSpec as publish, type PublishOptions, type PublishResult, type PublishDestination, type PublishCheck } from './publish/publish.js';
export { formatPublish, publishJson } from './publish/format.js';
export {
  verificationStatement,
  verificationSummary,
  type SummaryInput,
  type ReproOciExtension,
} from './attest/verification-summary.js';
export { VSA_PREDICATE_TYPE, IN_TOTO_ARTIFACT_TYPE, VSA_ENVELOPE_MEDIA_TYPE } from './attest/media-types.js';
export type { StatusReport, PackageStatus, PackageSet, Policy, PackageRule, Rebuilder, Verdict, Cell, AttestationCheck } from './status/model.js';

// Specs, locks, image settings.
export { loadSpec, parseSpec, type Spec, type SpecRepository, type LoadedSpec } from './lock/spec.js';
export { readLock, parseLock, serializeLock, type Lock, type LockedPackage, type LockedRepository } from './lock/lock.js';
export { loadImageSettings, parseImageSettings, type ImageSettings } from './image/image-settings.js';
export { DEFAULT_LIMITS, type SandboxLimits } from './setup/limits.js';
export { vercmp } from './pacman/version.js';
export { KEY_EXPIRY_POLICIES, DEFAULT_KEY_EXPIRY, type KeyExpiry } from './pacman/signature.js';

// Images: references, transports, OCI types.
export { parseReference, formatReference, TRANSPORTS, type ImageReference } from './transports/reference.js';
export { openSource, openDestination, type TransportOptions } from './transports/open.js';
export {
  OciImportDestination,
  openOciImportSource,
  checkOciImportTarget,
  ociImportStanza,
  bashbrewArchitecture,
  OCI_IMPORT_IDENTITY,
  type OciImportCommit,
  type OciImportStanza,
} from './transports/oci-import.js';
export type { ImageSource, ImageDestination } from './transports/types.js';
export type { Descriptor, Manifest, Index, ImageConfig, Platform } from './oci/types.js';
export { isDigest, parseDigest, sha256, type Digest } from './oci/digest.js';

// Foreign images: the layer and digest levels (which tool wrote a layer tar, its bytes for a verified tree).
export { detectTarConvention, writeTarInConvention, foreignMetadata, type TarConvention, type TarTool, type ForeignTarEntry } from './foreign/tar-convention.js';
export { reproduceLayer, formatLayerVerdict, type LayerBlob, type LayerVerdict, type DiffIdVerdict, type DigestVerdict } from './foreign/layer-reproduction.js';

// Where verified packages are kept.
export { ContentCache } from './fetch/cache.js';

// Progress of the long phases, for a caller that wants it shown (nothing is shown otherwise).
export { withProgress, PROGRESS_MODES, type ProgressMode, type ProgressSettings, type ProgressStream } from './util/progress.js';

// Errors.
export { UserError, DigestMismatchError, NotFoundError } from './errors.js';

// The bundled example, for trying the library offline.
export { writeExample, generateExampleArchive, EXAMPLE_DIR } from './example/generate.js';

export { VERSION } from './version.js';
