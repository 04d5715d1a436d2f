import fc from 'fast-check';
import { test } from 'node:test';
import { MediaType } from '../src/oci/mediatypes.js';
import { checkConfig, checkDescriptor, checkIndex, checkManifest, documentMediaType, looksLikeIndex, parseRawJson } from '../src/oci/raw-json.js';
import { applyTextEdits, fuzzParameters, hostileText, parsesOrRefuses, textEdits } from './support/fuzz.js';
import { applyTreeEdits, treeEdits } from './support/json-mutation.js';

const digest = (c: string): string => `sha256:${c.repeat(64)}`;
const MANIFEST = {
  schemaVersion: 2,
  mediaType: MediaType.OciManifest,
  config: { mediaType: MediaType.OciConfig, digest: digest('a'), size: 123 },
  layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: digest('b'), size: 456, annotations: { k: 'v' } }],
  annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
};
const INDEX = {
  schemaVersion: 2,
  mediaType: MediaType.OciIndex,
  manifests: [{ mediaType: MediaType.OciManifest, digest: digest('c'), size: 789, platform: { os: 'linux', architecture: 'amd64' } }],
};
const CONFIG = {
  created: '2024-01-01T00:00:00Z',
  architecture: 'amd64',
  os: 'linux',
  config: { Env: ['PATH=/usr/bin'], Cmd: ['/bin/sh'], Labels: { a: 'b' } },
  rootfs: { type: 'layers', diff_ids: [digest('d')] },
  history: [{ created: '2024-01-01T00:00:00Z', created_by: 'x' }],
};
const SAMPLES = [MANIFEST, INDEX, CONFIG];
const MEDIA_TYPES = [undefined, MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, 'text/plain', ''];

/** Parses as every reader of a manifest, index or config would, with every descriptor media type. */
function readAllWays(bytes: Buffer, descriptorMediaType: string | undefined): void {
  const raw = parseRawJson<unknown>(bytes, 'blob sha256:fuzz');
  documentMediaType(raw.value, descriptorMediaType);
  looksLikeIndex(raw.value, descriptorMediaType);
  parsesOrRefuses(() => checkManifest(raw, 'manifest', descriptorMediaType));
  parsesOrRefuses(() => checkIndex(raw, 'index', descriptorMediaType));
  parsesOrRefuses(() => checkConfig(raw, 'config'));
  parsesOrRefuses(() => checkDescriptor(raw.value, 'descriptor'));
}

const RUNS = 3000;

test('fuzz: manifest, index and config parsers on random bytes and JSON', () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)), fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')), hostileText(200).map((t) => Buffer.from(t, 'utf8'))),
      fc.constantFrom(...MEDIA_TYPES),
      (bytes, mediaType) => parsesOrRefuses(() => readAllWays(bytes, mediaType)),
    ),
    fuzzParameters(RUNS),
  );
});

test('fuzz: manifest, index and config parsers on mutations of valid documents', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...SAMPLES),
      fc.oneof(
        treeEdits().map((edits) => (sample: unknown) => JSON.stringify(applyTreeEdits(sample, edits))),
        textEdits().map((edits) => (sample: unknown) => applyTextEdits(JSON.stringify(sample, null, 2), edits)),
      ),
      fc.constantFrom(...MEDIA_TYPES),
      (sample, mutate, mediaType) => parsesOrRefuses(() => readAllWays(Buffer.from(mutate(sample), 'utf8'), mediaType)),
    ),
    fuzzParameters(RUNS),
  );
});
