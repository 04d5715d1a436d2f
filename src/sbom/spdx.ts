import {
  contentUuidUrn,
  isUrl,
  licenseMap,
  normalizeInput,
  spdxIdString,
  spdxLicenseExpression,
  uniqueIds,
  type NormalPackage,
  type SbomInput,
} from './sbom.js';

/**
 * SPDX 2.3 JSON for the packages installed in an image. The document DESCRIBES the image (a CONTAINER package
 * that CONTAINS every installed package) when the input names it, else each package; packages DEPENDS_ON the
 * installed packages their `depend` entries resolve to. Nothing was analysed file by file (filesAnalyzed false),
 * and nothing is concluded: licenseDeclared is what .PKGINFO says, licenseConcluded, supplier, originator and
 * copyright are NOASSERTION.
 */

export interface SpdxChecksum {
  algorithm: 'SHA256';
  checksumValue: string;
}

export interface SpdxAnnotation {
  annotationDate: string;
  annotationType: 'OTHER' | 'REVIEW';
  annotator: string;
  comment: string;
}

export interface SpdxPackage {
  SPDXID: string;
  name: string;
  versionInfo?: string;
  packageFileName?: string;
  downloadLocation: string;
  filesAnalyzed: boolean;
  checksums?: SpdxChecksum[];
  homepage?: string;
  description?: string;
  sourceInfo?: string;
  licenseConcluded: string;
  licenseDeclared: string;
  licenseComments?: string;
  copyrightText: string;
  supplier: string;
  originator?: string;
  primaryPackagePurpose?: string;
  comment?: string;
  externalRefs?: Array<{ referenceCategory: 'PACKAGE-MANAGER'; referenceType: 'purl'; referenceLocator: string }>;
  annotations?: SpdxAnnotation[];
}

export interface SpdxRelationship {
  spdxElementId: string;
  relationshipType: 'DESCRIBES' | 'CONTAINS' | 'DEPENDS_ON';
  relatedSpdxElement: string;
}

export interface SpdxExtractedLicense {
  licenseId: string;
  name: string;
  extractedText: string;
  comment?: string;
}

export interface SpdxDocument {
  spdxVersion: 'SPDX-2.3';
  dataLicense: 'CC0-1.0';
  SPDXID: 'SPDXRef-DOCUMENT';
  name: string;
  documentNamespace: string;
  creationInfo: { created: string; creators: string[]; comment?: string };
  packages: SpdxPackage[];
  relationships: SpdxRelationship[];
  hasExtractedLicensingInfos?: SpdxExtractedLicense[];
}

export const SPDX_DOCUMENT_ID = 'SPDXRef-DOCUMENT';
export const SPDX_IMAGE_ID = 'SPDXRef-Image';
const NOASSERTION = 'NOASSERTION';

/** `SPDXRef-Package-NAME`, the name reduced to SPDX's idstring characters (clashes disambiguated by a hash). */
export function spdxPackageIds(names: string[]): Map<string, string> {
  return uniqueIds(names, (n) => `SPDXRef-Package-${spdxIdString(n)}`, new Set([SPDX_IMAGE_ID, SPDX_DOCUMENT_ID]));
}

function compareRelationships(a: SpdxRelationship, b: SpdxRelationship): number {
  const key = (r: SpdxRelationship) => [r.spdxElementId, r.relationshipType, r.relatedSpdxElement].join('\u0000');
  return Buffer.compare(Buffer.from(key(a)), Buffer.from(key(b)));
}

export function spdxDocument(input: SbomInput): SpdxDocument {
  const n = normalizeInput(input);
  const licenses = licenseMap(n.packages);
  const ids = spdxPackageIds(n.packages.map((p) => p.name));
  const tool = `Tool: repro-oci-${n.toolVersion}`;

  const pkg = (p: NormalPackage): SpdxPackage => {
    const opaque = p.licenses.filter((l) => licenses.terms.get(l)!.kind === 'other');
    const out: SpdxPackage = {
      SPDXID: ids.get(p.name)!,
      name: p.name,
      versionInfo: p.version,
      packageFileName: p.filename,
      downloadLocation: isUrl(p.downloadUrl) ? p.downloadUrl : NOASSERTION,
      filesAnalyzed: false,
      checksums: [{ algorithm: 'SHA256', checksumValue: p.sha256 }],
      sourceInfo: `Arch Linux package ${p.filename} from repository ${p.repository}`,
      licenseConcluded: NOASSERTION,
      licenseDeclared: spdxLicenseExpression(p.licenses, licenses),
      copyrightText: NOASSERTION,
      supplier: NOASSERTION,
      originator: NOASSERTION,
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl }],
    };
    if (isUrl(p.url)) out.homepage = p.url;
    if (p.description) out.description = p.description;
    if (opaque.length) {
      out.licenseComments = `.PKGINFO license entries that are not SPDX license expressions, kept as LicenseRefs: ${opaque.map((l) => JSON.stringify(l)).join(', ')}`;
    }
    if (p.signer) {
      out.annotations = [
        {
          annotationDate: n.created,
          annotationType: 'OTHER',
          annotator: tool,
          comment: `Package file signed with OpenPGP key ${p.signer.fingerprint}${p.signer.userId ? ` (${p.signer.userId})` : ''}`,
        },
      ];
    }
    return out;
  };

  const packages = n.packages.map(pkg);
  const relationships: SpdxRelationship[] = [];
  if (n.imageName) {
    packages.unshift({
      SPDXID: SPDX_IMAGE_ID,
      name: n.imageName,
      downloadLocation: NOASSERTION,
      filesAnalyzed: false,
      licenseConcluded: NOASSERTION,
      licenseDeclared: NOASSERTION,
      copyrightText: NOASSERTION,
      supplier: NOASSERTION,
      primaryPackagePurpose: 'CONTAINER',
      comment: `OCI image built by repro-oci from lock ${n.lockDigest}`,
    });
    relationships.push({ spdxElementId: SPDX_DOCUMENT_ID, relationshipType: 'DESCRIBES', relatedSpdxElement: SPDX_IMAGE_ID });
    for (const p of n.packages) relationships.push({ spdxElementId: SPDX_IMAGE_ID, relationshipType: 'CONTAINS', relatedSpdxElement: ids.get(p.name)! });
  } else {
    for (const p of n.packages) relationships.push({ spdxElementId: SPDX_DOCUMENT_ID, relationshipType: 'DESCRIBES', relatedSpdxElement: ids.get(p.name)! });
  }
  for (const p of n.packages) {
    for (const d of p.dependsOn) relationships.push({ spdxElementId: ids.get(p.name)!, relationshipType: 'DEPENDS_ON', relatedSpdxElement: ids.get(d)! });
  }
  relationships.sort(compareRelationships);

  const extracted: SpdxExtractedLicense[] = [
    ...[...licenses.refs].map(([text, licenseId]) => ({
      licenseId,
      name: text,
      extractedText: `License declared by the package as ${JSON.stringify(text)}, which is not an SPDX license expression. Its text is not reproduced here; Arch Linux packages install their license texts under /usr/share/licenses/.`,
    })),
    ...licenses.directRefs.map((licenseId) => ({
      licenseId,
      name: licenseId,
      extractedText: `License named by the package as ${licenseId}. Its text is not reproduced here; Arch Linux packages install their license texts under /usr/share/licenses/.`,
    })),
  ].sort((a, b) => Buffer.compare(Buffer.from(a.licenseId), Buffer.from(b.licenseId)));

  const withoutId: Omit<SpdxDocument, 'documentNamespace'> = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: SPDX_DOCUMENT_ID,
    name: n.imageName ?? `repro-oci image from lock ${n.lockDigest}`,
    creationInfo: { created: n.created, creators: [tool], comment: `Packages installed from lock ${n.lockDigest}` },
    packages,
    relationships,
    ...(extracted.length ? { hasExtractedLicensingInfos: extracted } : {}),
  };
  return { ...withoutId, documentNamespace: contentUuidUrn('spdx-2.3', withoutId) };
}
