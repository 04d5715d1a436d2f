import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { PackageURL } from 'packageurl-js';
import { parseDependency } from '../pacman/depend.js';
import type { LockedPackage } from '../lock/lock.js';
import type { PkgInfo } from '../pacman/pkginfo.js';
import { UserError } from '../errors.js';
import { canonicalJsonBytes, canonicalJsonPretty } from '../oci/canonical-json.js';
import { isDigest, type Digest } from '../oci/digest.js';
import { byteOrder } from '../util/order.js';
import { rfc3339 } from '../util/time.js';

/**
 * What the SBOM writers (spdx.ts, cyclonedx.ts) share: the input model, its validation and normal form, purls,
 * licence mapping, identifiers and the serializer. Every byte of an SBOM is a pure function of its SbomInput:
 * packages are sorted by name (bytewise) whatever order they came in, the timestamp is SOURCE_DATE_EPOCH, and
 * the document's identity (SPDX documentNamespace, CycloneDX serialNumber) is a name-based UUID of the content.
 */

/** The OpenPGP key a package's signature was made with, when it was verified against one. */
export interface SbomSigner {
  /** Hex fingerprint of the (sub)key. */
  fingerprint: string;
  /** The key's primary user ID, e.g. `Jane Doe <jane@archlinux.org>`. */
  userId?: string;
}

export interface SbomPackage {
  name: string;
  /** `[epoch:]pkgver-pkgrel`. */
  version: string;
  arch: string;
  /** `license` entries of .PKGINFO, verbatim: SPDX expressions or legacy Arch names (`GPL3`, `custom:foo`). */
  licenses: string[];
  description?: string;
  /** Upstream URL (.PKGINFO `url`). */
  url?: string;
  /** Repository the package was locked from (`core`, `extra`, …). */
  repository: string;
  /** Package file name, e.g. `bash-5.2.026-2-x86_64.pkg.tar.zst`. */
  filename: string;
  /** Where the package file is fetched from (the lock's first URL). */
  downloadUrl?: string;
  /** SHA-256 of the package file, lowercase hex. */
  sha256: string;
  signer?: SbomSigner;
  /** .PKGINFO `depend` strings (`name[op version]`). */
  depends: string[];
  /** .PKGINFO `provides` strings; used to resolve dependencies that name a provision (`sh`, `libfoo.so=1-64`). */
  provides?: string[];
}

export interface SbomInput {
  /** The image's name (e.g. its reference); the SBOM describes an image element only when there is one. */
  imageName?: string;
  /** SOURCE_DATE_EPOCH, seconds: the documents' creation time. */
  sourceDateEpoch: number;
  /** The repro-oci version that wrote the SBOM. */
  toolVersion: string;
  /** Digest of the lock the image was built from. */
  lockDigest: Digest;
  packages: SbomPackage[];
}

/** A package in normal form: licences deduplicated, dependencies resolved to installed package names. */
export interface NormalPackage extends SbomPackage {
  /** Names of installed packages this one depends on, bytewise sorted, without itself. */
  dependsOn: string[];
  purl: string;
}

export interface NormalInput {
  imageName?: string;
  sourceDateEpoch: number;
  /** SOURCE_DATE_EPOCH in RFC 3339 UTC, whole seconds. */
  created: string;
  toolVersion: string;
  lockDigest: Digest;
  /** Sorted by name, bytewise. */
  packages: NormalPackage[];
}

function sortedUnique(values: Iterable<string>): string[] {
  return [...new Set(values)].sort(byteOrder);
}

export { rfc3339 };

/** `pkg:alpm/arch/NAME@VERSION?arch=ARCH`; the purl spec keeps an epoch's colon in the version unencoded. */
export function alpmPurl(name: string, version: string, arch: string): string {
  return new PackageURL('alpm', 'arch', name, version, { arch }, undefined).toString();
}

/** Whether a string is an absolute http(s)/ftp URL, fit for SPDX downloadLocation/homepage and CycloneDX urls. */
export function isUrl(value: string | undefined): value is string {
  if (!value || /\s/.test(value)) return false;
  try {
    return ['http:', 'https:', 'ftp:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

/** Validates the input and puts it in normal form. Refuses what would make identifiers ambiguous. */
export function normalizeInput(input: SbomInput): NormalInput {
  if (!isDigest(input.lockDigest)) throw new UserError(`SBOM: lock digest ${JSON.stringify(input.lockDigest)} is not a sha256 digest`);
  if (typeof input.toolVersion !== 'string' || input.toolVersion === '') throw new UserError('SBOM: tool version is empty');
  const created = rfc3339(input.sourceDateEpoch);
  const byName = new Map<string, SbomPackage>();
  for (const p of input.packages) {
    if (typeof p.name !== 'string' || p.name === '') throw new UserError('SBOM: a package has no name');
    if (byName.has(p.name)) throw new UserError(`SBOM: package ${p.name} is listed twice`);
    if (!p.version) throw new UserError(`SBOM: package ${p.name} has no version`);
    if (!p.arch) throw new UserError(`SBOM: package ${p.name} has no architecture`);
    if (!/^[0-9a-f]{64}$/.test(p.sha256)) throw new UserError(`SBOM: package ${p.name} has no valid sha256`);
    byName.set(p.name, p);
  }
  const providers = new Map<string, string[]>();
  for (const p of byName.values()) {
    for (const provision of p.provides ?? []) {
      const name = parseDependency(provision).name;
      providers.set(name, [...(providers.get(name) ?? []), p.name]);
    }
  }
  const packages = [...byName.values()]
    .sort((a, b) => byteOrder(a.name, b.name))
    .map((p): NormalPackage => {
      const targets: string[] = [];
      for (const dep of p.depends) {
        const name = parseDependency(dep).name;
        // An installed package of that name satisfies it; otherwise whatever installed package provides it.
        if (byName.has(name)) targets.push(name);
        else targets.push(...(providers.get(name) ?? []));
      }
      const out: NormalPackage = {
        name: p.name,
        version: p.version,
        arch: p.arch,
        licenses: [...new Set(p.licenses.map((l) => l.trim()).filter((l) => l !== ''))],
        repository: p.repository,
        filename: p.filename,
        sha256: p.sha256,
        depends: [...p.depends],
        dependsOn: sortedUnique(targets.filter((t) => t !== p.name)),
        purl: alpmPurl(p.name, p.version, p.arch),
      };
      if (p.description) out.description = p.description;
      if (p.url) out.url = p.url;
      if (p.downloadUrl) out.downloadUrl = p.downloadUrl;
      if (p.provides) out.provides = [...p.provides];
      if (p.signer) out.signer = { fingerprint: p.signer.fingerprint, ...(p.signer.userId ? { userId: p.signer.userId } : {}) };
      return out;
    });
  return {
    ...(input.imageName ? { imageName: input.imageName } : {}),
    sourceDateEpoch: input.sourceDateEpoch,
    created,
    toolVersion: input.toolVersion,
    lockDigest: input.lockDigest,
    packages,
  };
}

/**
 * Identifiers for a set of strings, each `sanitize(s)` unless that is shared with another string of the set (or
 * taken), in which case every string of the clash gets `-` and 8 hex digits of its SHA-256 appended. A function
 * of the set alone, not of the order the strings came in.
 */
export function uniqueIds(values: Iterable<string>, sanitize: (s: string) => string, taken: ReadonlySet<string> = new Set()): Map<string, string> {
  const groups = new Map<string, string[]>();
  for (const v of sortedUnique(values)) {
    const id = sanitize(v);
    groups.set(id, [...(groups.get(id) ?? []), v]);
  }
  const ids = new Map<string, string>();
  for (const [id, members] of groups) {
    for (const v of members) {
      ids.set(v, members.length === 1 && !taken.has(id) ? id : `${id}-${createHash('sha256').update(v).digest('hex').slice(0, 8)}`);
    }
  }
  return ids;
}

/** SPDX idstrings allow only letters, digits, `.` and `-`. */
export function spdxIdString(value: string): string {
  return value.replace(/[^A-Za-z0-9.-]/g, '-');
}

// --- Licences ---------------------------------------------------------------------------------------------------

type SpdxNode = { license: string; plus?: true; exception?: string } | { left: SpdxNode; conjunction: 'and' | 'or'; right: SpdxNode };

const requireCjs = createRequire(import.meta.url);
const parseSpdx = requireCjs('spdx-expression-parse') as (expression: string) => SpdxNode;
const SPDX_IDS = requireCjs('spdx-license-ids') as string[];
const SPDX_DEPRECATED_IDS = requireCjs('spdx-license-ids/deprecated.json') as string[];
/** Lowercased id → the list's spelling (SPDX matches identifiers case-insensitively). */
const KNOWN_IDS = new Map([...SPDX_DEPRECATED_IDS, ...SPDX_IDS].map((id) => [id.toLowerCase(), id]));

/**
 * One .PKGINFO licence string, classified: a single SPDX licence id (`GPL-3.0-or-later`); a valid SPDX expression
 * (`MIT OR Apache-2.0`, `GPL-2.0+`, `LicenseRef-foo`); or anything else (`GPL3`, `custom`, `custom:foo`), which
 * becomes a LicenseRef in SPDX and a named licence in CycloneDX. Legacy Arch names are not translated to SPDX ids:
 * `GPL3` does not say whether "or later" applies, and an SBOM should not claim more than the package declared.
 */
export type LicenseTerm = { kind: 'id'; id: string } | { kind: 'expression'; expression: string; compound: boolean; refs: string[] } | { kind: 'other'; text: string };

function leaves(node: SpdxNode): Array<{ license: string; plus?: true; exception?: string }> {
  return 'conjunction' in node ? [...leaves(node.left), ...leaves(node.right)] : [node];
}

export function classifyLicense(text: string): LicenseTerm {
  const known = KNOWN_IDS.get(text.toLowerCase());
  if (known) return { kind: 'id', id: known };
  let tree: SpdxNode;
  try {
    tree = parseSpdx(text);
  } catch {
    return { kind: 'other', text };
  }
  const parts = leaves(tree);
  // DocumentRef-…:LicenseRef-… would need an external document reference; such strings stay opaque text.
  if (parts.some((l) => l.license.includes(':'))) return { kind: 'other', text };
  const refs = sortedUnique(parts.map((l) => l.license).filter((l) => l.startsWith('LicenseRef-')));
  if (!('conjunction' in tree) && !tree.plus && !tree.exception && refs.length === 0) return { kind: 'id', id: tree.license };
  return { kind: 'expression', expression: text, compound: 'conjunction' in tree, refs };
}

/** The licence strings of all packages, mapped: terms per string, and a LicenseRef id for each opaque one. */
export interface LicenseMap {
  terms: Map<string, LicenseTerm>;
  /** Opaque licence text → its `LicenseRef-…` id. */
  refs: Map<string, string>;
  /** LicenseRef ids that packages name directly in SPDX expressions. */
  directRefs: string[];
}

export function licenseMap(packages: NormalPackage[]): LicenseMap {
  const terms = new Map<string, LicenseTerm>();
  for (const p of packages) for (const l of p.licenses) if (!terms.has(l)) terms.set(l, classifyLicense(l));
  const directRefs = sortedUnique([...terms.values()].flatMap((t) => (t.kind === 'expression' ? t.refs : [])));
  const opaque = [...terms.values()].flatMap((t) => (t.kind === 'other' ? [t.text] : []));
  const refs = uniqueIds(opaque, (s) => `LicenseRef-${spdxIdString(s)}`, new Set(directRefs));
  return { terms, refs, directRefs };
}

/** One SPDX expression for a package's licence strings, joined with AND; NOASSERTION when it declares none. */
export function spdxLicenseExpression(licenses: string[], map: LicenseMap): string {
  if (licenses.length === 0) return 'NOASSERTION';
  const parts = licenses.map((l) => {
    const term = map.terms.get(l)!;
    if (term.kind === 'id') return term.id;
    if (term.kind === 'other') return map.refs.get(term.text)!;
    return term.compound && licenses.length > 1 ? `(${term.expression})` : term.expression;
  });
  return [...new Set(parts)].join(' AND ');
}

// --- Identity and bytes -----------------------------------------------------------------------------------------

/** This project's UUID namespace for name-based (version 5) UUIDs. */
const UUID_NAMESPACE = '18808760-3482-4a27-8657-f990e8a6ffae';

/** RFC 9562 version 5 UUID of `name` in repro-oci's namespace. */
export function uuidV5(name: string): string {
  const hash = createHash('sha1').update(Buffer.from(UUID_NAMESPACE.replace(/-/g, ''), 'hex')).update(name, 'utf8').digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A `urn:uuid:` naming a document by the SHA-256 of its canonical bytes without the identifier itself. */
export function contentUuidUrn(kind: string, documentWithoutId: unknown): string {
  const digest = createHash('sha256').update(canonicalJsonBytes(documentWithoutId)).digest('hex');
  return `urn:uuid:${uuidV5(`${kind}:sha256:${digest}`)}`;
}

/** The bytes of an SBOM file: canonical JSON, indented, with a trailing newline. */
export function serializeSbom(doc: object): Buffer {
  return Buffer.from(canonicalJsonPretty(doc), 'utf8');
}

// --- From the lock and the package ------------------------------------------------------------------------------

/** The SBOM view of a locked package, from its lock entry and its .PKGINFO (e.g. an InstalledPackage's pkginfo). */
export function sbomPackage(locked: LockedPackage, pkginfo: PkgInfo, signer?: SbomSigner): SbomPackage {
  if (pkginfo.pkgname !== locked.name || pkginfo.pkgver !== locked.version) {
    throw new UserError(`package ${locked.name} ${locked.version}: its .PKGINFO says ${pkginfo.pkgname} ${pkginfo.pkgver}`);
  }
  return {
    name: locked.name,
    version: locked.version,
    arch: locked.arch,
    licenses: [...pkginfo.license],
    ...(pkginfo.pkgdesc ? { description: pkginfo.pkgdesc } : {}),
    ...(pkginfo.url ? { url: pkginfo.url } : {}),
    repository: locked.repository,
    filename: locked.filename,
    ...(locked.urls[0] ? { downloadUrl: locked.urls[0] } : {}),
    sha256: locked.sha256,
    ...(signer ? { signer } : {}),
    depends: [...pkginfo.depends],
    provides: [...pkginfo.provides],
  };
}
