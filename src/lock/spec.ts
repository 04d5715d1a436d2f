import { readUserFile } from '../util/fs.js';
import { dirname, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseYamlText, schemaChecker } from '../util/yaml-schema.js';
import { UserError } from '../errors.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { sha256, type Digest } from '../oci/digest.js';
import { parseSigLevelSetting } from '../pacman/siglevel.js';

/** A repository given as an object: without servers, it is read from the archive snapshot. */
export interface SpecRepository {
  name: string;
  servers?: string[];
  /** pacman.conf's `[repo]` SigLevel: the flags its tokens touch override the spec's `sigLevel`. */
  sigLevel?: string;
}

/** SPEC.yaml as documented by schemas/spec.schema.json. */
export interface Spec {
  architecture?: string;
  archive?: { url: string; date: string };
  /** A name (read from the archive snapshot), or a name with servers and/or its own SigLevel over `sigLevel`. */
  repositories: (string | SpecRepository)[];
  packages: string[];
  sigLevel?: string;
  keyring?: { dir: string; name?: string };
  /** pacman.conf NoExtract patterns applied when installing. */
  noExtract?: string[];
  image?: Record<string, unknown>;
}

export interface LoadedSpec {
  spec: Spec;
  /**
   * Digest of what resolution depends on (architecture, archive, repositories, packages, sigLevel, keyring) in
   * canonical JSON: formatting, comments and image settings do not change it, so a lock stays valid when only
   * the image settings change.
   */
  digest: Digest;
  /** Directory relative paths in the spec are resolved against. */
  baseDir: string;
}

export interface RepositorySource {
  name: string;
  /** Server URLs with $repo and $arch expanded, in order. */
  servers: string[];
  /** The repository's own SigLevel, as the spec gives it. */
  sigLevel?: string;
}

const check = schemaChecker<Spec>('spec.schema.json');

export function parseSpec(text: string, what: string): Spec {
  return checkSpec(parseYamlText(text, what), what);
}

/** A spec from anywhere (a file, or the recipe of someone else's image): the schema, then what it cannot say. */
export function checkSpec(document: unknown, what: string): Spec {
  const value = check(document, what);
  if (value.archive) {
    const date = new Date(`${value.archive.date}T00:00:00Z`);
    if (Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== value.archive.date) throw new UserError(`${what}: archive date ${value.archive.date} is not a calendar date`);
  }
  if (value.sigLevel !== undefined) parseSigLevelSetting(value.sigLevel, `${what}: sigLevel`);
  for (const repo of value.repositories) {
    const name = typeof repo === 'string' ? repo : repo.name;
    if ((typeof repo === 'string' || repo.servers === undefined) && !value.archive) {
      throw new UserError(`${what}: repository ${name} is given ${typeof repo === 'string' ? 'by name only' : 'without servers'}, which needs an archive snapshot`);
    }
    if (typeof repo !== 'string' && repo.sigLevel !== undefined) parseSigLevelSetting(repo.sigLevel, `${what}: repository ${name} sigLevel`);
  }
  return value;
}

export async function loadSpec(path: string): Promise<LoadedSpec> {
  const text = await readUserFile(path, 'spec');
  const spec = parseSpec(text, `spec ${path}`);
  return { spec, digest: resolutionDigest(spec), baseDir: dirname(resolvePath(path)) };
}

export function resolutionDigest(spec: Spec): Digest {
  const { architecture, archive, repositories, packages, sigLevel, keyring } = spec;
  return sha256(canonicalJsonBytes({ architecture: architecture ?? 'x86_64', archive, repositories, packages, sigLevel, keyring }));
}

export function specArchitecture(spec: Spec): string {
  return spec.architecture ?? 'x86_64';
}

function expand(server: string, repo: string, arch: string): string {
  return server.replace(/\$repo/g, repo).replace(/\$arch/g, arch).replace(/\/+$/, '');
}

/** The Arch Linux Archive's daily snapshot of one repository. */
export function archiveServer(archive: { url: string; date: string }, repo: string, arch: string): string {
  const [y, m, d] = archive.date.split('-');
  return `${archive.url.replace(/\/+$/, '')}/repos/${y}/${m}/${d}/${repo}/os/${arch}`;
}

/** Where the archive keeps every version of a package, whatever the snapshot. */
export function archivePackageUrl(archiveUrl: string, name: string, filename: string): string {
  return `${archiveUrl.replace(/\/+$/, '')}/packages/${name[0]}/${name}/${encodeURIComponent(filename)}`;
}

export function repositorySources(spec: Spec, archiveDate?: string): RepositorySource[] {
  const arch = specArchitecture(spec);
  const archive = spec.archive && { ...spec.archive, date: archiveDate ?? spec.archive.date };
  return spec.repositories.map((repo) => {
    if (typeof repo === 'string') return { name: repo, servers: [archiveServer(archive!, repo, arch)] };
    const servers = repo.servers === undefined ? [archiveServer(archive!, repo.name, arch)] : repo.servers.map((s) => expand(s, repo.name, arch));
    return { name: repo.name, servers, ...(repo.sigLevel !== undefined ? { sigLevel: repo.sigLevel } : {}) };
  });
}

/** Whether a spec's or lock's location is a URL (has a scheme) rather than a path. */
export function isUrl(location: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(location);
}

/** A URL as written in a spec or lock: absolute, or a path relative to `baseDir` (made a file: URL here). */
export function resolveLocation(location: string, baseDir: string): string {
  return isUrl(location) ? location : pathToFileURL(resolvePath(baseDir, location)).href;
}

/**
 * The location of file `name` in `base` (a URL, or a plain path for resolveLocation): a URL gets the name
 * percent-encoded (`:` of an epoch, `+`), a path gets it as it is, since resolveLocation encodes paths itself.
 */
export function locationOfFile(base: string, name: string): string {
  const dir = base.replace(/\/+$/, '');
  return `${dir}/${isUrl(base) ? encodeURIComponent(name) : name}`;
}
