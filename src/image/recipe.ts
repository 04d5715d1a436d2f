import { UserError } from '../errors.js';
import { checkLock, type Lock } from '../lock/lock.js';
import { checkSpec, type Spec } from '../lock/spec.js';
import { parseJsonText } from '../util/json-text.js';
import { checkSourceDateEpoch } from '../util/time.js';
import { canonicalJsonPretty } from '../oci/canonical-json.js';
import { sha256, type Digest } from '../oci/digest.js';

/**
 * The recipe an image carries so that it can be rebuilt from the image alone: the spec, the lock, the
 * SOURCE_DATE_EPOCH, the compressor identity and the repro-oci version that built it. It is a file in the
 * rootfs at RECIPE_PATH, and the config label RECIPE_LABEL holds its digest.
 */
export const RECIPE_PATH = 'usr/share/repro-oci/recipe.json';
export const RECIPE_LABEL = 'io.github.repro-oci.recipe';
export const RECIPE_VERSION = 1;

export interface Recipe {
  recipeVersion: number;
  /** The repro-oci version that built the image. */
  reproOci: string;
  spec: Spec;
  lock: Lock;
  sourceDateEpoch: number;
  /** Compressor identity of the layer (see src/compress). */
  compressor: string;
}

export function serializeRecipe(recipe: Recipe): { bytes: Buffer; digest: Digest } {
  const bytes = Buffer.from(canonicalJsonPretty(recipe), 'utf8');
  return { bytes, digest: sha256(bytes) };
}

export function parseRecipe(bytes: Buffer, expected: string | undefined, what: string): Recipe {
  if (expected !== undefined && sha256(bytes) !== expected) throw new UserError(`${what}: ${RECIPE_PATH} does not match the digest in the ${RECIPE_LABEL} label`);
  const recipe = parseJsonText(bytes.toString('utf8'), `${what}: ${RECIPE_PATH}`) as Recipe;
  if (recipe?.recipeVersion !== RECIPE_VERSION) throw new UserError(`${what}: unsupported recipe version ${JSON.stringify(recipe?.recipeVersion)}`);
  if (typeof recipe.reproOci !== 'string' || typeof recipe.compressor !== 'string' || !Number.isSafeInteger(recipe.sourceDateEpoch) || !recipe.spec || !recipe.lock) throw new UserError(`${what}: malformed recipe`);
  // An image's recipe is a stranger's document: every part is checked as strictly as the user's own files.
  checkSourceDateEpoch(recipe.sourceDateEpoch, `${what}: recipe sourceDateEpoch`);
  checkLock(recipe.lock, `${what}: recipe lock`);
  checkSpec(recipe.spec, `${what}: recipe spec`);
  return recipe;
}
