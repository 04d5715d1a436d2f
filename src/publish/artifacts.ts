import { IN_TOTO_ARTIFACT_TYPE, VSA_ENVELOPE_MEDIA_TYPE, PREDICATE_TYPE_ANNOTATION, VSA_PREDICATE_TYPE } from '../attest/media-types.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { sha256 } from '../oci/digest.js';
import { MediaType } from '../oci/mediatypes.js';
import type { Descriptor } from '../oci/types.js';
import { RECIPE_ARTIFACT_TYPE } from '../image/read-recipe.js';

/**
 * The OCI artifacts publish attaches to an image as referrers (docs/attestation.md "In the registry"): an image
 * manifest whose `subject` is the image, an empty config, and one layer holding the content. Canonical JSON, so
 * the same content and subject make the same artifact digest on every run.
 */

export interface Artifact {
  /** The artifact manifest's descriptor, with its artifactType (as a referrers index lists it). */
  descriptor: Descriptor;
  bytes: Buffer;
  /** The blobs it names, config first, with their bytes. */
  blobs: { descriptor: Descriptor; bytes: Buffer }[];
}

const EMPTY_CONFIG = Buffer.from('{}');
const EMPTY_DESCRIPTOR: Descriptor = { mediaType: MediaType.OciEmpty, digest: sha256(EMPTY_CONFIG), size: EMPTY_CONFIG.length };

export function referrerArtifact(subject: Descriptor, artifactType: string, layer: { mediaType: string; bytes: Buffer; annotations?: Record<string, string> }, annotations?: Record<string, string>): Artifact {
  const layerDescriptor: Descriptor = { mediaType: layer.mediaType, digest: sha256(layer.bytes), size: layer.bytes.length, ...(layer.annotations ? { annotations: layer.annotations } : {}) };
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType,
    config: EMPTY_DESCRIPTOR,
    layers: [layerDescriptor],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    ...(annotations ? { annotations } : {}),
  };
  const bytes = canonicalJsonBytes(manifest);
  return {
    descriptor: { mediaType: MediaType.OciManifest, digest: sha256(bytes), size: bytes.length, artifactType, ...(annotations ? { annotations } : {}) },
    bytes,
    blobs: [{ descriptor: EMPTY_DESCRIPTOR, bytes: EMPTY_CONFIG }, { descriptor: layerDescriptor, bytes: layer.bytes }],
  };
}

/** The image's recipe as an artifact: the same bytes `archive` keeps without layers, so both find one artifact. */
export function recipeArtifact(subject: Descriptor, recipe: Buffer): Artifact {
  return referrerArtifact(subject, RECIPE_ARTIFACT_TYPE, { mediaType: RECIPE_ARTIFACT_TYPE, bytes: recipe });
}

/** A DSSE envelope of a verification summary as an artifact, with in-toto's media type and predicate annotation. */
export function attestationArtifact(subject: Descriptor, envelope: Buffer): Artifact {
  const annotation = { [PREDICATE_TYPE_ANNOTATION]: VSA_PREDICATE_TYPE };
  return referrerArtifact(subject, IN_TOTO_ARTIFACT_TYPE, { mediaType: VSA_ENVELOPE_MEDIA_TYPE, bytes: envelope, annotations: annotation }, annotation);
}
