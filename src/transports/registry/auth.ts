import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../errors.js';
import { fetchOnce, readBody, withRetries, type RetryPolicy } from './http.js';
import { DOCKER_HUB, isLoopbackHost } from './reference.js';

/**
 * Registry authentication: anonymous, HTTP Basic, and the bearer-token flow of the Docker token spec — a 401 with
 * `WWW-Authenticate: Bearer realm=…,service=…,scope=…` sends us to the realm for a token (with Basic credentials
 * when we have them), and the token is reused for every later request that needs the same scopes.
 */

export interface Credentials {
  username: string;
  password: string;
  /** Where they came from, for error messages (never the secret itself). */
  source: string;
}

/** `USER:PASS` as skopeo's --creds takes it (the password may contain colons). */
export function parseCreds(text: string, source = '--creds'): Credentials {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new UserError(`${source}: expected USERNAME:PASSWORD`);
  return { username: text.slice(0, colon), password: text.slice(colon + 1), source };
}

/** The auth files consulted, most preferred first (containers-auth.json(5), then Docker's config). */
export function authFilePaths(env: NodeJS.ProcessEnv = process.env): string[] {
  const paths: string[] = [];
  if (env.REGISTRY_AUTH_FILE) {
    paths.push(env.REGISTRY_AUTH_FILE);
  } else {
    if (env.XDG_RUNTIME_DIR) paths.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
    paths.push(join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'containers', 'auth.json'));
  }
  paths.push(join(env.DOCKER_CONFIG || join(homedir(), '.docker'), 'config.json'));
  return paths;
}

/** An auths key as written (`https://index.docker.io/v1/`, `host:port`, `host/ns/repo`) in the form we match. */
function normalizeAuthKey(key: string): string {
  let k = key.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  if (/^[^/]+\/v[12]$/.test(k)) k = k.slice(0, k.lastIndexOf('/'));
  const [host, ...rest] = k.split('/');
  const h = host!.toLowerCase();
  const hub = h === 'index.docker.io' || h === 'registry-1.docker.io' ? DOCKER_HUB : h;
  return [hub, ...rest].join('/');
}

function decodeEntry(entry: unknown, source: string): Credentials | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined;
  const e = entry as { auth?: unknown; username?: unknown; password?: unknown };
  if (typeof e.auth === 'string' && e.auth !== '') {
    const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new UserError(`${source}: the auth field is not base64 of USERNAME:PASSWORD`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source };
  }
  if (typeof e.username === 'string' && typeof e.password === 'string' && e.username !== '') {
    return { username: e.username, password: e.password, source };
  }
  return undefined;
}

/**
 * Credentials for `registry/repository` from the auth files: the most specific key wins within a file
 * (`host/ns/repo`, then `host/ns`, then `host`), and the first file with a match wins.
 */
export async function lookupCredentials(registry: string, repository: string, env: NodeJS.ProcessEnv = process.env): Promise<Credentials | undefined> {
  const candidates: string[] = [];
  const parts = repository.split('/');
  for (let n = parts.length; n >= 1; n--) candidates.push(`${registry}/${parts.slice(0, n).join('/')}`);
  candidates.push(registry);
  for (const path of authFilePaths(env)) {
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    let auths: Record<string, unknown>;
    try {
      const parsed = JSON.parse(text) as { auths?: unknown };
      auths = typeof parsed.auths === 'object' && parsed.auths !== null ? (parsed.auths as Record<string, unknown>) : {};
    } catch {
      throw new UserError(`${path}: not valid JSON`);
    }
    const byKey = new Map<string, unknown>();
    for (const [key, value] of Object.entries(auths)) byKey.set(normalizeAuthKey(key), value);
    for (const candidate of candidates) {
      const creds = decodeEntry(byKey.get(candidate), `${path} (${candidate})`);
      if (creds) return creds;
    }
  }
  return undefined;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses a WWW-Authenticate header into its challenges (RFC 7235: scheme, then auth-params). */
export function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  const re = /\s*,?\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*))?/gy;
  let m: RegExpExecArray | null;
  let current: Challenge | undefined;
  while ((m = re.exec(header)) !== null && m[0] !== '') {
    const [, name, value] = m;
    if (value === undefined) {
      current = { scheme: name!.toLowerCase(), params: {} };
      challenges.push(current);
    } else if (current) {
      current.params[name!.toLowerCase()] = value.startsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value;
    }
  }
  return challenges;
}

/** `repository:NAME:ACTIONS` */
export function repositoryScope(repository: string, actions: string): string {
  return `repository:${repository}:${actions}`;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

export class Authenticator {
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  /** How many tokens were fetched from a realm (tests check that tokens are reused). */
  tokenRequests = 0;

  constructor(
    private readonly registry: string,
    private readonly credentials: Credentials | undefined,
    private readonly insecure: boolean,
    private readonly retry: RetryPolicy,
    /** The option that gives credentials for this registry, for the hint when it wants some. */
    private readonly credsOption = '--creds',
  ) {}

  /** The Authorization header for a request needing `scopes`, once the registry has told us how to authenticate. */
  async header(scopes: readonly string[]): Promise<string | undefined> {
    if (!this.challenge) return undefined;
    if (this.challenge.scheme === 'basic') return this.basic();
    if (this.challenge.scheme === 'bearer') return `Bearer ${await this.token(scopes)}`;
    return undefined;
  }

  /** Learns from a 401; returns whether a retry with new authentication is worth it. */
  unauthorized(response: Response, scopes: readonly string[]): boolean {
    const header = response.headers.get('www-authenticate');
    const challenges = header ? parseChallenges(header) : [];
    const chosen = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
    if (!chosen) return false;
    const known = this.challenge;
    this.challenge = chosen;
    if (chosen.scheme === 'bearer') {
      // Whatever token we sent was not enough: forget it, so the next header() asks the realm again.
      this.tokens.delete(scopeKey(this.withChallengeScope(scopes)));
      this.tokens.delete(scopeKey(scopes));
      return true;
    }
    if (chosen.scheme === 'basic') return known?.scheme !== 'basic' && this.credentials !== undefined;
    return false;
  }

  /** A one-line explanation of a final 401/403. */
  refusal(status: number, what: string, detail: string): UserError {
    const why = detail ? `: ${detail}` : '';
    if (status === 403) return new UserError(`${what}: access denied (HTTP 403)${why}`);
    if (!this.credentials) {
      return new UserError(`${what}: authentication required (HTTP 401)${why}; pass ${this.credsOption} USER:PASS or add the registry to auth.json or ~/.docker/config.json`);
    }
    return new UserError(`${what}: credentials for ${this.credentials.username} from ${this.credentials.source} were refused (HTTP 401)${why}`);
  }

  private basic(): string | undefined {
    if (!this.credentials) return undefined;
    return `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64')}`;
  }

  private withChallengeScope(scopes: readonly string[]): string[] {
    const extra = this.challenge?.params.scope?.split(' ').filter(Boolean) ?? [];
    return [...new Set([...scopes, ...extra])];
  }

  private async token(requested: readonly string[]): Promise<string> {
    const scopes = this.withChallengeScope(requested);
    const key = scopeKey(scopes);
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > Date.now() + 5000) return cached.token;
    const { realm, service } = this.challenge!.params;
    if (!realm) throw new UserError(`${this.registry}: bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new UserError(`${this.registry}: token realm ${JSON.stringify(realm)} is not a URL`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && (this.insecure || isLoopbackHost(url.host)))) {
      throw new UserError(`${this.registry}: token realm ${realm} is not https (use --insecure to allow it)`);
    }
    if (service) url.searchParams.set('service', service);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    if (this.credentials) url.searchParams.set('account', this.credentials.username);
    const headers: Record<string, string> = {};
    const basic = this.basic();
    if (basic) headers.Authorization = basic;
    const what = `${this.registry}: token from ${url.origin}${url.pathname}`;
    const body = await withRetries(what, this.retry, async () => {
      const response = await fetchOnce(url.href, { headers });
      if (response.status === 401 || response.status === 403) {
        await response.body?.cancel().catch(() => {});
        throw this.refusal(response.status, what, '');
      }
      if (response.status !== 200) {
        await response.body?.cancel().catch(() => {});
        throw new UserError(`${what}: HTTP ${response.status}`);
      }
      return readBody(response, url.href, 1024 * 1024, what);
    });
    this.tokenRequests++;
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
    } catch {
      throw new UserError(`${what}: the answer is not JSON`);
    }
    const token = typeof parsed.token === 'string' && parsed.token ? parsed.token : typeof parsed.access_token === 'string' ? parsed.access_token : '';
    if (!token) throw new UserError(`${what}: the answer holds no token`);
    // The spec's minimum lifetime is 60 seconds when expires_in is missing.
    const lifetime = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : 60;
    this.tokens.set(key, { token, expiresAt: Date.now() + lifetime * 1000 });
    return token;
  }
}

function scopeKey(scopes: readonly string[]): string {
  return [...scopes].sort().join(' ');
}
