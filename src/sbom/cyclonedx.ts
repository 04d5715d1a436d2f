import { contentUuidUrn, isUrl, licenseMap, normalizeInput, spdxLicenseExpression, type LicenseMap, type NormalPackage, type SbomInput } from './sbom.js';

/**
 * CycloneDX 1.5 JSON for the packages installed in an image: one `library` component per package, bom-ref = its
 * purl; the image, when the input names it, is metadata.component (a `container`) and depends on every package.
 * Licences: SPDX ids as `license.id`, other strings as `license.name`, or one SPDX `expression` when a package's
 * licence strings include a compound expression (CycloneDX does not mix the two forms).
 */

export interface CdxProperty {
  name: string;
  value: string;
}

export type CdxLicenseChoice = Array<{ license: { id: string } | { name: string } }> | [{ expression: string }];

export interface CdxHash {
  alg: 'SHA-256';
  content: string;
}

export interface CdxComponent {
  type: 'library' | 'container';
  'bom-ref': string;
  name: string;
  version?: string;
  description?: string;
  purl?: string;
  licenses?: CdxLicenseChoice;
  hashes?: CdxHash[];
  externalReferences?: Array<{ type: 'distribution' | 'website'; url: string; hashes?: CdxHash[] }>;
  properties?: CdxProperty[];
}

export interface CdxDocument {
  $schema: string;
  bomFormat: 'CycloneDX';
  specVersion: '1.5';
  serialNumber: string;
  version: 1;
  metadata: {
    timestamp: string;
    tools: { components: Array<{ type: 'application'; name: string; version: string }> };
    component?: CdxComponent;
    properties: CdxProperty[];
  };
  components: CdxComponent[];
  dependencies: Array<{ ref: string; dependsOn: string[] }>;
}

export const CDX_IMAGE_REF = 'repro-oci:image';

function cdxLicenses(p: NormalPackage, map: LicenseMap): CdxLicenseChoice | undefined {
  if (p.licenses.length === 0) return undefined;
  const list: Array<{ license: { id: string } | { name: string } }> = [];
  const seen = new Set<string>();
  for (const term of p.licenses.map((l) => map.terms.get(l)!)) {
    if (term.kind === 'expression') return [{ expression: spdxLicenseExpression(p.licenses, map) }];
    const license = term.kind === 'id' ? { id: term.id } : { name: term.text };
    const key = JSON.stringify(license);
    if (!seen.has(key)) list.push({ license });
    seen.add(key);
  }
  return list;
}

function sortProperties(props: CdxProperty[]): CdxProperty[] {
  return props.sort((a, b) => Buffer.compare(Buffer.from(`${a.name}\u0000${a.value}`), Buffer.from(`${b.name}\u0000${b.value}`)));
}

export function cycloneDxDocument(input: SbomInput): CdxDocument {
  const n = normalizeInput(input);
  const licenses = licenseMap(n.packages);
  const purls = new Map(n.packages.map((p) => [p.name, p.purl]));

  const components = n.packages.map((p): CdxComponent => {
    const hashes: CdxHash[] = [{ alg: 'SHA-256', content: p.sha256 }];
    const c: CdxComponent = { type: 'library', 'bom-ref': p.purl, name: p.name, version: p.version };
    if (p.description) c.description = p.description;
    c.purl = p.purl;
    const lic = cdxLicenses(p, licenses);
    if (lic) c.licenses = lic;
    c.hashes = hashes;
    const refs: NonNullable<CdxComponent['externalReferences']> = [];
    if (isUrl(p.downloadUrl)) refs.push({ type: 'distribution', url: p.downloadUrl, hashes });
    if (isUrl(p.url)) refs.push({ type: 'website', url: p.url });
    if (refs.length) c.externalReferences = refs;
    const props: CdxProperty[] = [
      { name: 'repro-oci:package:filename', value: p.filename },
      { name: 'repro-oci:package:repository', value: p.repository },
    ];
    if (p.signer) {
      props.push({ name: 'repro-oci:package:signer:fingerprint', value: p.signer.fingerprint });
      if (p.signer.userId) props.push({ name: 'repro-oci:package:signer:user-id', value: p.signer.userId });
    }
    c.properties = sortProperties(props);
    return c;
  });

  const dependencies = n.packages.map((p) => ({ ref: p.purl, dependsOn: p.dependsOn.map((d) => purls.get(d)!) }));
  if (n.imageName) dependencies.unshift({ ref: CDX_IMAGE_REF, dependsOn: n.packages.map((p) => p.purl) });

  const withoutId: Omit<CdxDocument, 'serialNumber'> = {
    $schema: 'http://cyclonedx.org/schema/bom-1.5.schema.json',
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    version: 1,
    metadata: {
      timestamp: n.created,
      tools: { components: [{ type: 'application', name: 'repro-oci', version: n.toolVersion }] },
      ...(n.imageName ? { component: { type: 'container' as const, 'bom-ref': CDX_IMAGE_REF, name: n.imageName } } : {}),
      properties: [{ name: 'repro-oci:lock:digest', value: n.lockDigest }],
    },
    components,
    dependencies,
  };
  return { ...withoutId, serialNumber: contentUuidUrn('cyclonedx-1.5', withoutId) };
}
