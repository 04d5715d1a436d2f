/**
 * The bundled example's digest on every machine. It covers the generated packages, the lock, the setup preset, the
 * recipe (which names the repro-oci version) and the layer compressor: a change to any of them must be a
 * deliberate one, made here.
 */
export const EXAMPLE_DIGEST = 'sha256:346f84861ff94381abc13e1e12808c4ca7ccf179e64ecbb9490fe96f627406b1';
