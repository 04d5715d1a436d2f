import { homedir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { exists, readUserFile } from '../util/fs.js';
import { displayName } from '../util/raw-name.js';
import { parseYamlText, schemaChecker } from '../util/yaml-schema.js';
import type { Rebuilder } from './model.js';

const checkRebuildersFile = schemaChecker<{ rebuilders: { name: string; url: string }[] }>('rebuilders.schema.json');

/** A rebuilder's base URL: http(s), no query or fragment, no trailing slash (paths under it are appended). */
export function normalizeBaseUrl(text: string, what: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UserError(`${what}: ${displayName(text)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UserError(`${what}: ${displayName(text)}: only http and https rebuilders are supported`);
  if (url.search || url.hash || url.username || url.password) throw new UserError(`${what}: ${displayName(text)}: give the base URL alone (no query, fragment or credentials)`);
  return url.href.replace(/\/+$/, '');
}

/** `--rebuilder URL`: named after its host and port (and path, when it has one: two rebuilders may share a host). */
export function rebuilderFromUrl(text: string): Rebuilder {
  const url = normalizeBaseUrl(text, '--rebuilder');
  const { host, pathname } = new URL(url);
  return { name: pathname === '/' ? host : `${host}${pathname}`, url };
}

/** A rebuilders file (schemas/rebuilders.schema.json). */
export function parseRebuildersFile(text: string, what: string): Rebuilder[] {
  const doc = checkRebuildersFile(parseYamlText(text, what), what);
  return doc.rebuilders.map((r, i) => ({ name: r.name, url: normalizeBaseUrl(r.url, `${what}: /rebuilders/${i}/url`) }));
}

/** Where the rebuilders file is looked for when no option names any rebuilder. */
export function defaultRebuildersPath(): string {
  const config = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(config, 'repro-oci', 'rebuilders.yaml');
}

/**
 * The rebuilders to ask: the file's (if given) then each --rebuilder; with neither, the default file if it
 * exists. Two with the same name or URL are refused: each is one independent witness.
 */
export async function selectRebuilders(urls: string[], file: string | undefined): Promise<Rebuilder[]> {
  const rebuilders: Rebuilder[] = [];
  let path = file;
  if (path === undefined && urls.length === 0) {
    const fallback = defaultRebuildersPath();
    if (await exists(fallback)) path = fallback;
  }
  if (path !== undefined) rebuilders.push(...parseRebuildersFile(await readUserFile(path, 'rebuilders file'), `rebuilders file ${path}`));
  rebuilders.push(...urls.map(rebuilderFromUrl));
  if (rebuilders.length === 0) throw new UserError(`no rebuilders: give --rebuilder URL or --rebuilders FILE (or write ${defaultRebuildersPath()})`);
  const names = new Set<string>();
  const bases = new Set<string>();
  for (const r of rebuilders) {
    if (names.has(r.name)) throw new UserError(`rebuilder ${displayName(r.name)} is given twice`);
    if (bases.has(r.url)) throw new UserError(`rebuilder ${displayName(r.url)} is given twice`);
    names.add(r.name);
    bases.add(r.url);
  }
  return rebuilders;
}
