import { readUserFile } from '../util/fs.js';
import { parseYamlText, schemaChecker } from '../util/yaml-schema.js';
import { checkSourceDateEpoch } from '../util/time.js';
import { UserError } from '../errors.js';
import type { Compression } from '../oci/mediatypes.js';
import { getCompressor, type Compressor } from '../compress/index.js';
import type { DirectoryRules } from '../rootfs/tree.js';
import type { SetupSettings } from '../setup/setup.js';

/** IMAGE.yaml, as documented by schemas/image-config.schema.json. */
export interface ImageSettings {
  platform?: string;
  sourceDateEpoch?: number;
  config?: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[];
    Cmd?: string[];
    WorkingDir?: string;
    Labels?: Record<string, string>;
    ExposedPorts?: string[];
    StopSignal?: string;
  };
  annotations?: Record<string, string>;
  layer?: { compression?: Compression; level?: number; parallel?: boolean };
  rootfs?: DirectoryRules;
  setup?: SetupSettings;
  /** Only for a bootstrap tarball output (src/bootstrap/). */
  bootstrap?: { imageId?: string; imageVersion?: string; level?: number };
}

const check = schemaChecker<ImageSettings>('image-config.schema.json');

export function parseImageSettings(text: string, what: string): ImageSettings {
  return checkImageSettings(parseYamlText(text, what) ?? {}, what);
}

/** Validates settings already parsed (the `image:` section of a spec). */
export function checkImageSettings(value: unknown, what: string): ImageSettings {
  return check(value, what);
}

export async function loadImageSettings(path: string): Promise<ImageSettings> {
  const text = await readUserFile(path, 'config');
  return parseImageSettings(text, `config ${path}`);
}

/** SOURCE_DATE_EPOCH as given by flag, environment or settings, in that order; 0 when none (never the clock). */
export function resolveSourceDateEpoch(flag: string | undefined, env: string | undefined, settings: ImageSettings): number {
  const pick = flag ?? (env !== undefined && env !== '' ? env : undefined);
  if (pick !== undefined) {
    if (!/^[0-9]+$/.test(pick) || !Number.isSafeInteger(Number(pick))) throw new UserError(`SOURCE_DATE_EPOCH ${JSON.stringify(pick)} is not a non-negative integer`);
    return checkSourceDateEpoch(Number(pick));
  }
  return checkSourceDateEpoch(settings.sourceDateEpoch ?? 0, 'sourceDateEpoch');
}

/** The layer compressor the settings choose: gzip level 6 in parallel blocks unless they say otherwise. */
export function layerCompressor(settings: ImageSettings): Compressor {
  return getCompressor(settings.layer?.compression ?? 'gzip', settings.layer?.level, settings.layer?.parallel ?? true);
}

export function parsePlatform(text: string | undefined): { os: string; architecture: string; variant?: string } {
  const [os, architecture, variant] = (text ?? 'linux/amd64').split('/');
  return variant ? { os: os!, architecture: architecture!, variant } : { os: os!, architecture: architecture! };
}
