import type { InstalledTree } from '../install/installer.js';
import type { LayerVerdict } from './layer-reproduction.js';
import type { Lock } from '../lock/lock.js';
import type { Digest } from '../oci/digest.js';
import type { ImageConfig, Manifest } from '../oci/types.js';
import type { ImageSource } from '../transports/types.js';
import { layerDiffIds } from '../transports/verify.js';

/**
 * The layer and digest levels of checking a foreign image: each layer rebuilt with the conventions of the tool
 * that wrote it, its diffID (and, where the compressor is reproducible, its digest) compared. This is the one place
 * the content check asks for them; until reproduceLayer (layer-reproduction.ts) is wired in here, every layer is
 * "not checked".
 */

export interface LayerCheck {
  /** 1-based position in the manifest, as the CLI prints it. */
  layer: number;
  digest: Digest;
  diffId: Digest;
  verdict: 'identical' | 'differs' | 'not-checked';
  /** One line: how the layer was rebuilt (the convention detected), or why it was not. */
  detail?: string;
  /** reproduceLayer's verdict (layer-reproduction.ts), once wired in here: the diffID and digest levels. */
  reproduction?: LayerVerdict;
}

export interface LayerCheckInput {
  source: ImageSource;
  label: string;
  manifest: Manifest;
  config: ImageConfig;
  /** The lock made from the image's database, and repro-oci's install of it (alive until the check returns). */
  lock: Lock;
  tree: InstalledTree;
  sourceDateEpoch: number;
  log: (message: string) => void;
}

export async function checkLayers(input: LayerCheckInput): Promise<LayerCheck[]> {
  const diffIds = layerDiffIds(input.manifest, input.config, `${input.label} manifest`);
  return input.manifest.layers.map((layer, i) => ({ layer: i + 1, digest: layer.digest, diffId: diffIds[i]!, verdict: 'not-checked' }));
}
