import { canonicalJsonBytes } from '../../src/oci/canonical-json.js';
import { digestHex, sha256, type Digest } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import type { Descriptor } from '../../src/oci/types.js';
import { signStatement, type Statement } from '../../src/attest/dsse.js';
import { IN_TOTO_ARTIFACT_TYPE, PREDICATE_TYPE_ANNOTATION, VERIFIER_ID, POLICY_URI, REBUILT_LEVEL, PACKAGES_REBUILT_LEVEL, VSA_ENVELOPE_MEDIA_TYPE, VSA_PREDICATE_TYPE } from '../../src/attest/media-types.js';
import type { SigningKey } from '../../src/attest/signing-key.js';
import { referrersTag } from '../../src/transports/registry/referrers.js';

/**
 * Publish attestations made by hand, per docs/attestation.md, and pushed with the raw registry API: the verify
 * tests' stand-in for `publish`. Everything the tests vary (the statement, the envelope bytes, the artifact
 * manifest, the referrers listing) is a separate step, so a hostile variant changes exactly one thing.
 */

export interface AttestedImage {
  /** `HOST/REPOSITORY`, the subject's name. */
  name: string;
  manifest: Digest;
  recipe: string;
  policy?: Record<string, unknown> | null;
  packages?: Record<string, unknown> | null;
}

/** The Statement publish signs for an image whose build and rebuild both gave `manifest`. */
export function vsaStatement(image: AttestedImage): Statement {
  const policy = image.policy ?? null;
  return {
    subject: [{ name: image.name, digest: image.manifest }],
    predicateType: VSA_PREDICATE_TYPE,
    predicate: {
      verifier: { id: VERIFIER_ID, version: { 'repro-oci': '0.0.0-test' } },
      resourceUri: `docker://${image.name}@${image.manifest}`,
      policy: { uri: POLICY_URI, digest: { sha256: digestHex(sha256(canonicalJsonBytes(policy))) } },
      inputAttestations: [],
      verificationResult: 'PASSED',
      verifiedLevels: policy ? [REBUILT_LEVEL, PACKAGES_REBUILT_LEVEL] : [REBUILT_LEVEL],
      slsaVersion: '1.0',
      reproOci: {
        recipe: { digest: image.recipe },
        builds: [
          { role: 'build', manifest: image.manifest, environment: {} },
          { role: 'rebuild', manifest: image.manifest, environment: { TZ: 'Pacific/Kiritimati', LC_ALL: 'C.UTF-8', umask: '0077', process: 'separate', cache: 'empty', scratch: 'separate' } },
        ],
        policy,
        packages: image.packages ?? null,
      },
    },
  };
}

export function signVsa(image: AttestedImage, key: SigningKey): Buffer {
  return signStatement(vsaStatement(image), [key]);
}

const EMPTY = Buffer.from('{}');
export const EMPTY_DESCRIPTOR: Descriptor = { mediaType: MediaType.OciEmpty, digest: sha256(EMPTY), size: EMPTY.length };

/** The referrer manifest that carries an envelope, as publish writes it; `change` edits it for hostile variants. */
export function attestationManifest(subject: Descriptor, envelope: Buffer, change: (m: Record<string, unknown>) => void = () => {}): Buffer {
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: IN_TOTO_ARTIFACT_TYPE,
    config: EMPTY_DESCRIPTOR,
    layers: [{ mediaType: VSA_ENVELOPE_MEDIA_TYPE, digest: sha256(envelope), size: envelope.length, annotations: { [PREDICATE_TYPE_ANNOTATION]: VSA_PREDICATE_TYPE } }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: { [PREDICATE_TYPE_ANNOTATION]: VSA_PREDICATE_TYPE },
  };
  change(manifest);
  return canonicalJsonBytes(manifest);
}

/** The raw distribution API of one repository: what a publisher (or an attacker holding push rights) can do. */
export class RawRepository {
  constructor(readonly base: string, readonly repository: string) {}

  async putBlob(bytes: Buffer): Promise<Digest> {
    const digest = sha256(bytes);
    const start = await fetch(`${this.base}/v2/${this.repository}/blobs/uploads/`, { method: 'POST' });
    if (start.status !== 202) throw new Error(`upload start: ${start.status} ${await start.text()}`);
    const location = new URL(start.headers.get('location')!, this.base);
    location.searchParams.set('digest', digest);
    const put = await fetch(location, { method: 'PUT', body: bytes, headers: { 'Content-Type': 'application/octet-stream' } });
    if (put.status !== 201) throw new Error(`upload ${digest}: ${put.status} ${await put.text()}`);
    return digest;
  }

  async putManifest(reference: string, bytes: Buffer, mediaType: string): Promise<Descriptor> {
    const put = await fetch(`${this.base}/v2/${this.repository}/manifests/${reference}`, { method: 'PUT', body: bytes, headers: { 'Content-Type': mediaType } });
    if (put.status !== 201) throw new Error(`manifest ${reference}: ${put.status} ${await put.text()}`);
    return { mediaType, digest: sha256(bytes), size: bytes.length };
  }

  async getManifest(reference: string): Promise<{ descriptor: Descriptor; bytes: Buffer }> {
    const response = await fetch(`${this.base}/v2/${this.repository}/manifests/${reference}`, { headers: { Accept: `${MediaType.OciManifest}, ${MediaType.OciIndex}` } });
    if (response.status !== 200) throw new Error(`manifest ${reference}: ${response.status}`);
    const bytes = Buffer.from(await response.arrayBuffer());
    return { descriptor: { mediaType: response.headers.get('content-type')!, digest: sha256(bytes), size: bytes.length }, bytes };
  }

  async getBlob(digest: string): Promise<Buffer> {
    const response = await fetch(`${this.base}/v2/${this.repository}/blobs/${digest}`);
    if (response.status !== 200) throw new Error(`blob ${digest}: ${response.status}`);
    return Buffer.from(await response.arrayBuffer());
  }

  /** The referrers index the tag schema keeps for `subject`, replaced by one listing exactly `manifests`. */
  async setReferrers(subject: Digest, manifests: readonly Descriptor[]): Promise<void> {
    const index = canonicalJsonBytes({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests });
    await this.putManifest(referrersTag(subject), index, MediaType.OciIndex);
  }

  /** Pushes an envelope as publish does: the empty config, the envelope, the artifact manifest by digest. */
  async pushAttestation(subject: Descriptor, envelope: Buffer, change?: (m: Record<string, unknown>) => void): Promise<Descriptor> {
    await this.putBlob(EMPTY);
    await this.putBlob(envelope);
    const manifest = attestationManifest(subject, envelope, change);
    const pushed = await this.putManifest(sha256(manifest), manifest, MediaType.OciManifest);
    return { ...pushed, artifactType: IN_TOTO_ARTIFACT_TYPE, annotations: { [PREDICATE_TYPE_ANNOTATION]: VSA_PREDICATE_TYPE } };
  }
}
