import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import type { LockedPackage } from '../src/lock/lock.js';
import { parsePkgInfo } from '../src/pacman/pkginfo.js';
import { UserError } from '../src/errors.js';
import { canonicalJsonPretty } from '../src/oci/canonical-json.js';
import { sha256 } from '../src/oci/digest.js';
import { cycloneDxDocument, CDX_IMAGE_REF, type CdxDocument } from '../src/sbom/cyclonedx.js';
import { alpmPurl, sbomPackage, serializeSbom, type SbomInput, type SbomPackage } from '../src/sbom/sbom.js';
import { spdxDocument, spdxPackageIds, type SpdxDocument } from '../src/sbom/spdx.js';

const requireCjs = createRequire(import.meta.url);
const parseSpdx = requireCjs('spdx-expression-parse') as (expression: string) => unknown;

const hex = (seed: string): string => sha256(seed).slice('sha256:'.length);
const FPR = 'D8AFDDA07A5B6EDFA7D8CCDAD6D055F927843F1C';

function pkg(name: string, version: string, licenses: string[], depends: string[] = [], extra: Partial<SbomPackage> = {}): SbomPackage {
  const arch = extra.arch ?? 'x86_64';
  const filename = `${name}-${version.replace(':', '%3A')}-${arch}.pkg.tar.zst`;
  return {
    name,
    version,
    arch,
    licenses,
    description: `the ${name} package`,
    url: `https://example.org/${encodeURIComponent(name)}`,
    repository: 'core',
    filename,
    downloadUrl: `https://archive.example.org/packages/${encodeURIComponent(name)}/${encodeURIComponent(filename)}`,
    sha256: hex(name),
    depends,
    ...extra,
  };
}

const PACKAGES: SbomPackage[] = [
  pkg('bash', '5.2.026-2', ['GPL-3.0-or-later'], ['readline', 'libreadline.so=8-64', 'glibc', 'ncurses'], {
    provides: ['sh'],
    signer: { fingerprint: FPR, userId: 'Jane Packager <jane@archlinux.org>' },
  }),
  pkg('readline', '8.2.010-1', ['GPL-3.0-only'], ['glibc', 'ncurses', 'libncursesw.so=6-64'], { provides: ['libreadline.so=8-64', 'libhistory.so=8-64'] }),
  pkg('glibc', '2.39-1', ['GPL-2.0-or-later', 'LGPL-2.1-or-later'], ['linux-api-headers>=4.10', 'tzdata', 'filesystem']),
  pkg('ncurses', '6.4-2', ['MIT'], ['glibc', 'gcc-libs'], { provides: ['libncursesw.so=6-64'] }),
  pkg('legacy-tool', '1.0-1', ['GPL3', 'custom:foo'], ['bash>=5', 'sh']),
  pkg('containers-common', '1:0.47.4-4', ['Apache-2.0 OR MIT', 'LicenseRef-containers'], [], { arch: 'any' }),
  pkg('gtk+', '2.24.33-3', ['LGPL-2.1-or-later', 'custom'], ['glibc']),
  pkg('tzdata', '2024a-1', ['custom:public domain'], [], { arch: 'any', url: 'not a url' }),
  pkg('noassert', '1-1', [], [], { description: undefined, url: undefined, downloadUrl: undefined }),
];

function input(packages = PACKAGES, imageName: string | null = 'example.org/arch-base:2024.03'): SbomInput {
  return {
    ...(imageName ? { imageName } : {}),
    sourceDateEpoch: 1709294400,
    toolVersion: '0.1.0',
    lockDigest: sha256('the lock'),
    packages,
  };
}

function shuffled<T>(list: T[]): T[] {
  // A fixed permutation, neither sorted nor reversed.
  return list.map((v, i) => [v, (i * 7 + 3) % list.length] as const).sort((a, b) => a[1] - b[1]).map(([v]) => v);
}

const spdxPkg = (doc: SpdxDocument, name: string) => doc.packages.find((p) => p.name === name && p.SPDXID !== 'SPDXRef-Image')!;
const cdxComp = (doc: CdxDocument, name: string) => doc.components.find((c) => c.name === name)!;

test('SBOM bytes are a pure function of the input, whatever the package order', () => {
  for (const make of [spdxDocument, cycloneDxDocument] as const) {
    const a = serializeSbom(make(input()));
    assert.deepEqual(serializeSbom(make(input())), a);
    assert.deepEqual(serializeSbom(make(input(shuffled(PACKAGES)))), a);
    assert.deepEqual(serializeSbom(make(input([...PACKAGES].reverse()))), a);
    // Dependency order inside a package does not matter either.
    const reordered = PACKAGES.map((p) => ({ ...p, depends: [...p.depends].reverse() }));
    assert.deepEqual(serializeSbom(make(input(reordered))), a);
    assert.equal(a.toString('utf8'), canonicalJsonPretty(JSON.parse(a.toString('utf8'))));
    assert.ok(a.toString('utf8').endsWith('}\n'));
  }
});

test('document identity and timestamp derive from the content, not the clock or randomness', () => {
  const spdx = spdxDocument(input());
  const cdx = cycloneDxDocument(input());
  assert.equal(spdx.creationInfo.created, '2024-03-01T12:00:00Z');
  assert.equal(cdx.metadata.timestamp, '2024-03-01T12:00:00Z');
  const uuid = /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  assert.match(spdx.documentNamespace, uuid);
  assert.match(cdx.serialNumber, uuid);
  assert.notEqual(spdx.documentNamespace, cdx.serialNumber);
  // Any change to the content changes the identity.
  const bumped = PACKAGES.map((p) => (p.name === 'glibc' ? { ...p, version: '2.39-2' } : p));
  assert.notEqual(spdxDocument(input(bumped)).documentNamespace, spdx.documentNamespace);
  assert.notEqual(cycloneDxDocument(input(bumped)).serialNumber, cdx.serialNumber);
  const later = { ...input(), sourceDateEpoch: 1709294401 };
  assert.equal(spdxDocument(later).creationInfo.created, '2024-03-01T12:00:01Z');
  assert.notEqual(spdxDocument(later).documentNamespace, spdx.documentNamespace);
});

test('packages are sorted by name; purls follow the alpm purl type', () => {
  const spdx = spdxDocument(input());
  const cdx = cycloneDxDocument(input());
  const names = PACKAGES.map((p) => p.name).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  assert.deepEqual(spdx.packages.map((p) => p.name), ['example.org/arch-base:2024.03', ...names]);
  assert.deepEqual(cdx.components.map((c) => c.name), names);

  assert.equal(alpmPurl('bash', '5.2.026-2', 'x86_64'), 'pkg:alpm/arch/bash@5.2.026-2?arch=x86_64');
  assert.equal(cdxComp(cdx, 'containers-common').purl, 'pkg:alpm/arch/containers-common@1:0.47.4-4?arch=any');
  assert.equal(cdxComp(cdx, 'gtk+').purl, 'pkg:alpm/arch/gtk%2B@2.24.33-3?arch=x86_64');
  assert.deepEqual(spdxPkg(spdx, 'bash').externalRefs, [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: 'pkg:alpm/arch/bash@5.2.026-2?arch=x86_64' }]);
  for (const c of cdx.components) assert.equal(c['bom-ref'], c.purl);
});

test('checksums, download locations, homepages and versions', () => {
  const spdx = spdxDocument(input());
  const cdx = cycloneDxDocument(input());
  const bash = spdxPkg(spdx, 'bash');
  assert.deepEqual(bash.checksums, [{ algorithm: 'SHA256', checksumValue: hex('bash') }]);
  assert.equal(bash.downloadLocation, 'https://archive.example.org/packages/bash/bash-5.2.026-2-x86_64.pkg.tar.zst');
  assert.equal(bash.packageFileName, 'bash-5.2.026-2-x86_64.pkg.tar.zst');
  assert.equal(bash.versionInfo, '5.2.026-2');
  assert.equal(bash.homepage, 'https://example.org/bash');
  assert.equal(bash.description, 'the bash package');
  assert.equal(bash.filesAnalyzed, false);
  assert.equal(bash.supplier, 'NOASSERTION');
  assert.equal(bash.licenseConcluded, 'NOASSERTION');
  assert.equal(spdxPkg(spdx, 'tzdata').homepage, undefined, 'not a URL: no homepage');
  assert.equal(spdxPkg(spdx, 'noassert').downloadLocation, 'NOASSERTION');
  assert.equal(spdxPkg(spdx, 'containers-common').versionInfo, '1:0.47.4-4');

  const c = cdxComp(cdx, 'bash');
  assert.deepEqual(c.hashes, [{ alg: 'SHA-256', content: hex('bash') }]);
  assert.deepEqual(c.externalReferences, [
    { type: 'distribution', url: 'https://archive.example.org/packages/bash/bash-5.2.026-2-x86_64.pkg.tar.zst', hashes: [{ alg: 'SHA-256', content: hex('bash') }] },
    { type: 'website', url: 'https://example.org/bash' },
  ]);
  assert.equal(cdxComp(cdx, 'noassert').externalReferences, undefined);
  assert.equal(cdxComp(cdx, 'noassert').licenses, undefined);
});

test('licenses: SPDX ids kept, legacy Arch names and custom licenses become LicenseRefs / named licenses', () => {
  const spdx = spdxDocument(input());
  const cdx = cycloneDxDocument(input());
  const declared = (name: string) => spdxPkg(spdx, name).licenseDeclared;
  assert.equal(declared('bash'), 'GPL-3.0-or-later');
  assert.equal(declared('glibc'), 'GPL-2.0-or-later AND LGPL-2.1-or-later');
  assert.equal(declared('legacy-tool'), 'LicenseRef-GPL3 AND LicenseRef-custom-foo');
  assert.equal(declared('containers-common'), '(Apache-2.0 OR MIT) AND LicenseRef-containers');
  assert.equal(declared('gtk+'), 'LGPL-2.1-or-later AND LicenseRef-custom');
  assert.equal(declared('tzdata'), 'LicenseRef-custom-public-domain');
  assert.equal(declared('noassert'), 'NOASSERTION');
  assert.match(spdxPkg(spdx, 'legacy-tool').licenseComments!, /"GPL3", "custom:foo"/);

  assert.deepEqual(
    spdx.hasExtractedLicensingInfos!.map((l) => [l.licenseId, l.name]),
    [
      ['LicenseRef-GPL3', 'GPL3'],
      ['LicenseRef-containers', 'LicenseRef-containers'],
      ['LicenseRef-custom', 'custom'],
      ['LicenseRef-custom-foo', 'custom:foo'],
      ['LicenseRef-custom-public-domain', 'custom:public domain'],
    ],
  );
  for (const l of spdx.hasExtractedLicensingInfos!) assert.ok(l.extractedText.length > 0);

  assert.deepEqual(cdxComp(cdx, 'bash').licenses, [{ license: { id: 'GPL-3.0-or-later' } }]);
  assert.deepEqual(cdxComp(cdx, 'glibc').licenses, [{ license: { id: 'GPL-2.0-or-later' } }, { license: { id: 'LGPL-2.1-or-later' } }]);
  assert.deepEqual(cdxComp(cdx, 'legacy-tool').licenses, [{ license: { name: 'GPL3' } }, { license: { name: 'custom:foo' } }]);
  assert.deepEqual(cdxComp(cdx, 'containers-common').licenses, [{ expression: '(Apache-2.0 OR MIT) AND LicenseRef-containers' }]);

  // Identifiers are matched case-insensitively and written as the SPDX list spells them.
  const lower = spdxDocument(input([pkg('x', '1-1', ['mit', 'gpl-3.0-or-later'])]));
  assert.equal(spdxPkg(lower, 'x').licenseDeclared, 'MIT AND GPL-3.0-or-later');
  assert.equal(lower.hasExtractedLicensingInfos, undefined);
});

test('dependency edges resolve by package name, then by provides; the image contains every package', () => {
  const spdx = spdxDocument(input());
  const ids = new Map(spdx.packages.map((p) => [p.SPDXID, p.name]));
  const edges = spdx.relationships.map((r) => `${ids.get(r.spdxElementId) ?? r.spdxElementId} ${r.relationshipType} ${ids.get(r.relatedSpdxElement) ?? r.relatedSpdxElement}`);
  const dependsOn = edges.filter((e) => e.includes(' DEPENDS_ON '));
  assert.deepEqual(dependsOn, [
    'bash DEPENDS_ON glibc',
    'bash DEPENDS_ON ncurses',
    'bash DEPENDS_ON readline',
    'glibc DEPENDS_ON tzdata',
    'gtk+ DEPENDS_ON glibc',
    'legacy-tool DEPENDS_ON bash',
    'ncurses DEPENDS_ON glibc',
    'readline DEPENDS_ON glibc',
    'readline DEPENDS_ON ncurses',
  ].sort((a, b) => {
    // Relationships are ordered by SPDX ids, which follow the names here.
    const id = (e: string) => spdxPackageIds(PACKAGES.map((p) => p.name)).get(e.split(' ')[0]!)! + e;
    return Buffer.compare(Buffer.from(id(a)), Buffer.from(id(b)));
  }));
  assert.deepEqual(edges.filter((e) => e.includes(' DESCRIBES ')), ['SPDXRef-DOCUMENT DESCRIBES example.org/arch-base:2024.03']);
  assert.equal(edges.filter((e) => e.startsWith('example.org/arch-base:2024.03 CONTAINS ')).length, PACKAGES.length);
  assert.equal(spdx.packages[0]!.primaryPackagePurpose, 'CONTAINER');

  const cdx = cycloneDxDocument(input());
  const purl = new Map(cdx.components.map((c) => [c.purl!, c.name]));
  const deps = new Map(cdx.dependencies.map((d) => [d.ref, d.dependsOn.map((r) => purl.get(r))]));
  assert.deepEqual(deps.get(cdxComp(cdx, 'bash').purl!), ['glibc', 'ncurses', 'readline']);
  assert.deepEqual(deps.get(cdxComp(cdx, 'legacy-tool').purl!), ['bash']);
  assert.deepEqual(deps.get(cdxComp(cdx, 'tzdata').purl!), []);
  assert.equal(deps.get(CDX_IMAGE_REF)!.length, PACKAGES.length);
  assert.equal(cdx.metadata.component!.name, 'example.org/arch-base:2024.03');
  assert.equal(cdx.metadata.component!.type, 'container');

  // Without an image name, the document describes each package and has no image element.
  const bare = spdxDocument(input(PACKAGES, null));
  assert.equal(bare.relationships.filter((r) => r.relationshipType === 'DESCRIBES').length, PACKAGES.length);
  assert.ok(!bare.packages.some((p) => p.SPDXID === 'SPDXRef-Image'));
  assert.match(bare.name, /^repro-oci image from lock sha256:/);
  const bareCdx = cycloneDxDocument(input(PACKAGES, null));
  assert.equal(bareCdx.metadata.component, undefined);
  assert.ok(!bareCdx.dependencies.some((d) => d.ref === CDX_IMAGE_REF));
});

test('the signer is recorded as an SPDX annotation and CycloneDX properties', () => {
  const bash = spdxPkg(spdxDocument(input()), 'bash');
  assert.deepEqual(bash.annotations, [
    {
      annotationDate: '2024-03-01T12:00:00Z',
      annotationType: 'OTHER',
      annotator: 'Tool: repro-oci-0.1.0',
      comment: `Package file signed with OpenPGP key ${FPR} (Jane Packager <jane@archlinux.org>)`,
    },
  ]);
  assert.equal(spdxPkg(spdxDocument(input()), 'glibc').annotations, undefined);
  assert.deepEqual(cdxComp(cycloneDxDocument(input()), 'bash').properties, [
    { name: 'repro-oci:package:filename', value: 'bash-5.2.026-2-x86_64.pkg.tar.zst' },
    { name: 'repro-oci:package:repository', value: 'core' },
    { name: 'repro-oci:package:signer:fingerprint', value: FPR },
    { name: 'repro-oci:package:signer:user-id', value: 'Jane Packager <jane@archlinux.org>' },
  ]);
});

test('SPDXIDs are sanitized and stay unique when names clash after sanitizing', () => {
  const doc = spdxDocument(input([pkg('a+b', '1-1', ['MIT']), pkg('a@b', '1-1', ['MIT']), pkg('plain', '1-1', ['MIT'], ['a+b'])]));
  const ids = doc.packages.map((p) => p.SPDXID);
  for (const id of ids) assert.match(id, /^SPDXRef-[A-Za-z0-9.-]+$/);
  assert.equal(new Set(ids).size, ids.length);
  assert.ok(ids.includes('SPDXRef-Package-plain'));
  assert.ok(ids.filter((id) => /^SPDXRef-Package-a-b-[0-9a-f]{8}$/.test(id)).length === 2);
  assert.ok(doc.relationships.some((r) => r.relationshipType === 'DEPENDS_ON' && r.spdxElementId === 'SPDXRef-Package-plain' && r.relatedSpdxElement === spdxPackageIds(['a+b', 'a@b']).get('a+b')));
});

test('the SPDX document validates against the SPDX 2.3 JSON schema and is internally consistent', () => {
  const schema = JSON.parse(readFileSync(new URL('../../test/fixtures/spdx-2.3.schema.json', import.meta.url), 'utf8')) as object;
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  const validate = ajv.compile(schema);
  for (const doc of [spdxDocument(input()), spdxDocument(input(PACKAGES, null))]) {
    const parsed = JSON.parse(serializeSbom(doc).toString('utf8')) as SpdxDocument;
    assert.ok(validate(parsed), JSON.stringify(validate.errors, null, 2));

    // What the schema leaves to prose: identifier syntax, references, licence expressions.
    const ids = parsed.packages.map((p) => p.SPDXID);
    for (const id of ids) assert.match(id, /^SPDXRef-[A-Za-z0-9.-]+$/);
    assert.equal(new Set(ids).size, ids.length);
    const known = new Set([...ids, 'SPDXRef-DOCUMENT']);
    for (const r of parsed.relationships) {
      assert.ok(known.has(r.spdxElementId) && known.has(r.relatedSpdxElement), JSON.stringify(r));
    }
    const declaredRefs = new Set((parsed.hasExtractedLicensingInfos ?? []).map((l) => l.licenseId));
    const usedRefs = new Set<string>();
    for (const p of parsed.packages) {
      if (p.licenseDeclared === 'NOASSERTION') continue;
      assert.doesNotThrow(() => parseSpdx(p.licenseDeclared), p.licenseDeclared);
      for (const ref of p.licenseDeclared.match(/LicenseRef-[A-Za-z0-9.-]+/g) ?? []) usedRefs.add(ref);
      assert.match(p.downloadLocation, /^(NOASSERTION|https?:\/\/\S+)$/);
    }
    assert.deepEqual([...usedRefs].sort(), [...declaredRefs].sort());
    assert.equal(parsed.spdxVersion, 'SPDX-2.3');
    assert.equal(parsed.dataLicense, 'CC0-1.0');
    assert.ok(!parsed.documentNamespace.includes('#'));
    assert.match(parsed.creationInfo.created, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  }
  // The schema does catch what is missing or misspelt.
  const doc = spdxDocument(input());
  assert.equal(validate({ ...doc, documentNamespace: undefined }), false);
  assert.equal(validate({ ...doc, relationships: [{ ...doc.relationships[0], relationshipType: 'DEPENDS_UPON' }] }), false);
});

test('the CycloneDX document validates with the CycloneDX library (1.5 JSON schema, offline)', async () => {
  const validator = new Validation.JsonStrictValidator(Spec.Version.v1dot5);
  for (const doc of [cycloneDxDocument(input()), cycloneDxDocument(input(PACKAGES, null))]) {
    const text = serializeSbom(doc).toString('utf8');
    assert.equal(await validator.validate(text), null);
    // Not expressible in the schema: bom-refs are unique and every dependency names one.
    const parsed = JSON.parse(text) as CdxDocument;
    const refs = [...parsed.components.map((c) => c['bom-ref']), ...(parsed.metadata.component ? [parsed.metadata.component['bom-ref']] : [])];
    assert.equal(new Set(refs).size, refs.length);
    for (const d of parsed.dependencies) for (const r of [d.ref, ...d.dependsOn]) assert.ok(refs.includes(r), r);
  }
  // And the validator does reject what is wrong.
  const broken = { ...cycloneDxDocument(input()), serialNumber: 'not-a-uuid' };
  assert.notEqual(await validator.validate(JSON.stringify(broken)), null);
});

test('invalid input is refused with a UserError', () => {
  assert.throws(() => spdxDocument(input([pkg('a', '1-1', []), pkg('a', '1-2', [])])), (e: unknown) => e instanceof UserError && /listed twice/.test(e.message));
  assert.throws(() => cycloneDxDocument(input([{ ...pkg('a', '1-1', []), sha256: 'abc' }])), UserError);
  assert.throws(() => spdxDocument({ ...input(), sourceDateEpoch: 1.5 }), UserError);
  assert.throws(() => spdxDocument({ ...input(), lockDigest: 'md5:00' as never }), UserError);
});

test('sbomPackage combines a lock entry and its .PKGINFO', () => {
  const locked: LockedPackage = {
    name: 'bash',
    version: '5.2.026-2',
    arch: 'x86_64',
    repository: 'core',
    filename: 'bash-5.2.026-2-x86_64.pkg.tar.zst',
    urls: ['https://mirror.example.org/core/os/x86_64/bash-5.2.026-2-x86_64.pkg.tar.zst', 'https://archive.example.org/packages/b/bash/bash-5.2.026-2-x86_64.pkg.tar.zst'],
    sha256: hex('bash'),
    csize: 1,
    isize: 2,
    builddate: 1709000000,
    reason: 'explicit',
  };
  const pkginfo = parsePkgInfo(
    ['pkgname = bash', 'pkgver = 5.2.026-2', 'pkgdesc = The GNU Bourne Again shell', 'url = https://www.gnu.org/software/bash/bash.html', 'arch = x86_64', 'license = GPL-3.0-or-later', 'depend = readline', 'depend = libreadline.so=8-64', 'provides = sh', ''].join('\n'),
  );
  const p = sbomPackage(locked, pkginfo, { fingerprint: FPR });
  assert.deepEqual(p, {
    name: 'bash',
    version: '5.2.026-2',
    arch: 'x86_64',
    licenses: ['GPL-3.0-or-later'],
    description: 'The GNU Bourne Again shell',
    url: 'https://www.gnu.org/software/bash/bash.html',
    repository: 'core',
    filename: 'bash-5.2.026-2-x86_64.pkg.tar.zst',
    downloadUrl: 'https://mirror.example.org/core/os/x86_64/bash-5.2.026-2-x86_64.pkg.tar.zst',
    sha256: hex('bash'),
    signer: { fingerprint: FPR },
    depends: ['readline', 'libreadline.so=8-64'],
    provides: ['sh'],
  });
  assert.throws(() => sbomPackage({ ...locked, version: '5.2.026-3' }, pkginfo), UserError);
});
