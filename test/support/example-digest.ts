/**
 * The bundled example's digest on every machine. It covers the generated packages, the lock, the setup preset, the
 * recipe (which names the repro-oci version) and the layer compressor: a change to any of them must be a
 * deliberate one, made here.
 */
export const EXAMPLE_DIGEST = 'sha256:ea750736967743fc43634ebabc2f5d4b9f4fee967ad0c3b4c3f09c0d23b53d16';
