import { UserError } from '../errors.js';
import { checkConfig, checkManifest } from '../oci/raw-json.js';
import type { Descriptor, Manifest } from '../oci/types.js';
import { readTar } from '../tar/reader.js';
import { readJsonBlob } from '../transports/layout.js';
import type { ImageSource } from '../transports/types.js';
import { isMissingBlob, layerDiffIds, readLayer } from '../transports/verify.js';
import { readSmall } from '../util/fs.js';
import { parseRecipe, RECIPE_LABEL, RECIPE_PATH, type Recipe } from './recipe.js';

/** The image has no repro-oci recipe: `rebuild` then checks it against its pacman database (foreign/verify-content.ts). */
export class NoRecipeError extends UserError {}

/** The media type of a recipe stored as an artifact next to an image (see `archive`). */
export const RECIPE_ARTIFACT_TYPE = 'application/vnd.io.github.repro-oci.recipe.v1+json';

/**
 * The recipe's bytes and the digest the image's config label promises: from the layer that holds
 * RECIPE_PATH, or — for an archive kept without layers — from a recipe artifact whose subject is the manifest.
 * A layer is read to its end and checked against its digest and diffID before its recipe is returned.
 */
export async function readRecipeBytes(source: ImageSource, descriptor: Descriptor, manifest: Manifest): Promise<{ bytes: Buffer; digest: string }> {
  const config = checkConfig(await readJsonBlob(source, manifest.config, 'config'), 'config').value;
  const digest = config.config?.Labels?.[RECIPE_LABEL];
  if (!digest) throw new NoRecipeError(`the image carries no recipe (no ${RECIPE_LABEL} label): it was not built by repro-oci from a spec`);
  const diffIds = layerDiffIds(manifest, config, `manifest ${descriptor.digest}`);
  for (let i = manifest.layers.length - 1; i >= 0; i--) {
    const layer = manifest.layers[i]!;
    const what = `layer ${layer.digest}`;
    let bytes: Buffer | undefined;
    try {
      bytes = await readLayer(source, layer, diffIds[i], what, async (content) => {
        for await (const entry of readTar(content, { what })) {
          if (entry.name.replace(/^\.?\//, '') === RECIPE_PATH && entry.type === 'file') return readSmall(entry.content(), 64 * 1024 * 1024, RECIPE_PATH);
        }
        return undefined;
      });
    } catch (err) {
      if (isMissingBlob(err, layer.digest)) break; // an archive without layers
      throw err;
    }
    if (bytes) return { bytes, digest };
  }
  for (const artifact of (await source.referrers?.(descriptor.digest, RECIPE_ARTIFACT_TYPE)) ?? []) {
    const recipeManifest = checkManifest(await readJsonBlob(source, artifact, 'recipe manifest'), 'recipe manifest', artifact.mediaType).value;
    const layer = recipeManifest.layers.find((l) => l.digest === digest);
    if (layer) return { bytes: (await readJsonBlob(source, layer, 'recipe')).bytes, digest };
  }
  throw new UserError(`the ${RECIPE_LABEL} label is set but neither a layer nor a recipe artifact holds ${RECIPE_PATH}`);
}

export async function readRecipe(source: ImageSource, descriptor: Descriptor, manifest: Manifest): Promise<Recipe> {
  const { bytes, digest } = await readRecipeBytes(source, descriptor, manifest);
  return parseRecipe(bytes, digest, 'image');
}
