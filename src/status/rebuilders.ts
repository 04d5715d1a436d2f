import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { exists, readUserFile } from '../util/fs.js';
import { displayName } from '../util/raw-name.js';
import { parseYamlText, schemaChecker } from '../util/yaml-schema.js';
import { parseRebuilderKeys, type AttestationKey } from './attestation.js';
import type { Policy, Rebuilder } from './model.js';

interface RebuildersFile {
  rebuilders: { name: string; url: string; keys?: string[] }[];
  policy?: { require?: number; failOnBad?: boolean; attestations?: 'required' | 'optional'; packages?: { match: string; require: number }[] };
}

const checkRebuildersFile = schemaChecker<RebuildersFile>('rebuilders.schema.json');

/** Public keys from a file the user named (PEM, or an in-toto JSON public key). */
export async function readKeyFile(path: string, what: string): Promise<AttestationKey[]> {
  return parseRebuilderKeys(await readUserFile(path, what), `${what} ${path}`);
}

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

/** `--rebuilder URL` or `--rebuilder URL=KEYFILE` (its attestations are checked with that key, nothing is fetched or pinned). */
export async function rebuilderOption(text: string): Promise<Rebuilder> {
  const at = text.indexOf('=');
  if (at === -1) return rebuilderFromUrl(text);
  const rebuilder = rebuilderFromUrl(text.slice(0, at));
  return { ...rebuilder, keys: await readKeyFile(text.slice(at + 1), `--rebuilder ${rebuilder.url}= key file`) };
}

export interface RebuildersConfig {
  rebuilders: Rebuilder[];
  policy: Partial<Policy>;
}

/** A rebuilders file (schemas/rebuilders.schema.json); key files are relative to it. */
export async function parseRebuildersFile(text: string, what: string, baseDir: string): Promise<RebuildersConfig> {
  const doc = checkRebuildersFile(parseYamlText(text, what), what);
  const rebuilders: Rebuilder[] = [];
  for (const [i, r] of doc.rebuilders.entries()) {
    const keys: AttestationKey[] = [];
    for (const file of r.keys ?? []) keys.push(...(await readKeyFile(resolve(baseDir, file), `${what}: /rebuilders/${i}/keys: key file`)));
    rebuilders.push({ name: r.name, url: normalizeBaseUrl(r.url, `${what}: /rebuilders/${i}/url`), ...(keys.length ? { keys } : {}) });
  }
  const p = doc.policy ?? {};
  const policy: Partial<Policy> = {
    ...(p.require !== undefined ? { require: p.require } : {}),
    ...(p.failOnBad !== undefined ? { failOnBad: p.failOnBad } : {}),
    ...(p.attestations !== undefined ? { attestations: p.attestations } : {}),
    ...(p.packages !== undefined ? { rules: p.packages.map((rule) => ({ match: rule.match, require: rule.require })) } : {}),
  };
  return { rebuilders, policy };
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
export async function selectRebuilders(urls: string[], file: string | undefined): Promise<RebuildersConfig> {
  const rebuilders: Rebuilder[] = [];
  let policy: Partial<Policy> = {};
  let path = file;
  if (path === undefined && urls.length === 0) {
    const fallback = defaultRebuildersPath();
    if (await exists(fallback)) path = fallback;
  }
  if (path !== undefined) {
    const config = await parseRebuildersFile(await readUserFile(path, 'rebuilders file'), `rebuilders file ${path}`, dirname(resolve(path)));
    rebuilders.push(...config.rebuilders);
    policy = config.policy;
  }
  for (const url of urls) rebuilders.push(await rebuilderOption(url));
  if (rebuilders.length === 0) throw new UserError(`no rebuilders: give --rebuilder URL or --rebuilders FILE (or write ${defaultRebuildersPath()})`);
  const names = new Set<string>();
  const bases = new Set<string>();
  for (const r of rebuilders) {
    if (names.has(r.name)) throw new UserError(`rebuilder ${displayName(r.name)} is given twice`);
    if (bases.has(r.url)) throw new UserError(`rebuilder ${displayName(r.url)} is given twice`);
    names.add(r.name);
    bases.add(r.url);
  }
  return { rebuilders, policy };
}
