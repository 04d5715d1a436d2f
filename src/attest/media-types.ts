/**
 * The names docs/attestation.md fixes for the publish attestation: what publish writes and verify requires. One
 * place, so producer and consumer cannot drift apart.
 */

/** The SLSA Verification Summary v1 predicate: "a verifier checked this artifact". */
export const VSA_PREDICATE_TYPE = 'https://slsa.dev/verification_summary/v1';
/** The `artifactType` of the referrer manifest that carries the envelope (the DSSE payload type as well). */
export const IN_TOTO_ARTIFACT_TYPE = 'application/vnd.in-toto+json';
/** The envelope layer's media type: in-toto's `application/vnd.in-toto.<predicate>+dsse` naming. */
export const VSA_ENVELOPE_MEDIA_TYPE = 'application/vnd.in-toto.verification_summary+dsse';
/** The annotation naming the predicate type, on the manifest and on its layer. */
export const PREDICATE_TYPE_ANNOTATION = 'in-toto.io/predicate-type';
/** `predicate.verifier.id` of the attestations publish signs. */
export const VERIFIER_ID = 'https://github.com/repro-oci/repro-oci/publish';
/** `predicate.policy.uri`. */
export const POLICY_URI = 'https://github.com/repro-oci/repro-oci/blob/main/docs/attestation.md#policy';
/** `predicate.verifiedLevels`: always the first; the second when a package policy was applied and met. */
export const REBUILT_LEVEL = 'REPRO_OCI_REBUILT';
export const PACKAGES_REBUILT_LEVEL = 'REPRO_OCI_PACKAGES_REBUILT';
