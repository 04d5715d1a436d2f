import { join } from 'node:path';
import { writeExample } from '../../src/example/generate.js';
import { runCliOk, runOk } from './cli.js';

/**
 * The bundled example, locked and built into `dir`: its spec and lock, an OCI layout and an oci-archive of the
 * image (built from the spec, so it carries a recipe), and the lock installed into a root directory (which holds
 * pacman's local database, for `pacman -Q --dbpath`).
 */
export interface ExampleImage {
  spec: string;
  lock: string;
  cache: string;
  layout: string;
  reference: string;
  archive: string;
  root: string;
  /** `pacman -Q` of the installed root: `name version` lines, as pacman sorts them. */
  pacmanQ: string;
  /** The JSON `build --json` printed for the image. */
  buildStdout: string;
  buildStderr: string;
}

export async function exampleImage(dir: string): Promise<ExampleImage> {
  const spec = await writeExample(join(dir, 'example'));
  const cache = join(dir, 'cache');
  const layout = join(dir, 'image');
  const archive = join(dir, 'image.tar');
  const root = join(dir, 'root');
  const env = { env: { SOURCE_DATE_EPOCH: undefined } };
  await runCliOk(['lock', spec], env);
  const built = await runCliOk(['build', spec, '--cache', cache, '-o', `oci:${layout}:v1`, '-o', `oci-archive:${archive}:v1`, '--json'], env);
  await runCliOk(['install', join(dir, 'example', 'spec.lock.json'), '--root', root, '--cache', cache], env);
  const pacmanQ = (await runOk('pacman', ['-Q', '--dbpath', join(root, 'var/lib/pacman')])).stdout;
  return { spec, lock: join(dir, 'example', 'spec.lock.json'), cache, layout, reference: `oci:${layout}:v1`, archive, root, pacmanQ, buildStdout: built.stdout, buildStderr: built.stderr };
}
