import { isIndexMediaType } from '../oci/mediatypes.js';
import { checkConfig, checkIndex, checkManifest, type RawJson } from '../oci/raw-json.js';
import type { Descriptor, Manifest } from '../oci/types.js';
import { bytesStream, LayoutDestination, readJsonBlob } from '../transports/layout.js';
import type { ImageSource } from '../transports/types.js';
import { RECIPE_LABEL } from './recipe.js';
import { readRecipeBytes } from './read-recipe.js';
import { recipeArtifact } from '../publish/artifacts.js';

export interface ArchiveResult {
  root: Descriptor;
  manifests: number;
  recipes: number;
  layers: boolean;
}

/**
 * Keeps the exact bytes a digest stands for — index, manifests, configs, and layers when asked — in an OCI layout,
 * so the image can be looked up and rebuilt after its registry forgets it. Without layers, the recipe an image
 * carries is kept as an OCI artifact whose subject is the image manifest; `rebuild` finds it there.
 */
export async function archiveImage(source: ImageSource, dir: string, tag: string | undefined, options: { layers: boolean }): Promise<ArchiveResult> {
  const destination = await LayoutDestination.create(dir, tag, `oci:${dir}`);
  const extra: Descriptor[] = [];
  let manifests = 0;
  const put = async (descriptor: Descriptor, bytes: Buffer): Promise<void> => {
    if (!(await destination.hasBlob(descriptor.digest))) await destination.putBlob(descriptor, bytesStream(bytes));
  };
  const visited = new Set<string>(); // an index DAG's shared children are kept once
  const walk = async (descriptor: Descriptor, raw: RawJson<unknown>): Promise<void> => {
    visited.add(descriptor.digest);
    if (isIndexMediaType(descriptor.mediaType)) {
      for (const child of checkIndex(raw, `index ${descriptor.digest}`, descriptor.mediaType).value.manifests) {
        if (!visited.has(child.digest)) await walk(child, await readJsonBlob(source, child, 'manifest'));
      }
    } else {
      manifests++;
      const manifest: Manifest = checkManifest(raw, `manifest ${descriptor.digest}`, descriptor.mediaType).value;
      const config = await readJsonBlob(source, manifest.config, 'config');
      await put(manifest.config, config.bytes);
      if (options.layers) {
        for (const layer of manifest.layers) if (!(await destination.hasBlob(layer.digest))) await destination.putBlob(layer, await source.openBlob(layer));
      } else if (isImageConfig(config) && (config.value as { config?: { Labels?: Record<string, string> } }).config?.Labels?.[RECIPE_LABEL]) {
        extra.push(await keepRecipe(descriptor, manifest));
      }
    }
    await put(descriptor, raw.bytes);
  };
  const keepRecipe = async (subject: Descriptor, manifest: Manifest): Promise<Descriptor> => {
    const { bytes } = await readRecipeBytes(source, subject, manifest);
    const artifact = recipeArtifact(subject, bytes); // the same artifact `publish` pushes
    for (const blob of artifact.blobs) await put(blob.descriptor, blob.bytes);
    await put(artifact.descriptor, artifact.bytes);
    return artifact.descriptor;
  };
  try {
    const { descriptor, raw } = await source.root();
    await walk(descriptor, raw);
    await destination.commit(descriptor, extra);
    return { root: descriptor, manifests, recipes: extra.length, layers: options.layers };
  } catch (err) {
    await destination.abort();
    throw err;
  }
}

function isImageConfig(raw: RawJson<unknown>): boolean {
  try {
    checkConfig(raw, 'config');
    return true;
  } catch {
    return false; // an artifact's config: nothing to keep beyond its bytes
  }
}
