import { UserError } from '../../errors.js';
import { Authenticator, lookupCredentials, parseCreds, type Credentials } from './auth.js';
import { DEFAULT_RETRY, fetchOnce, readBody, withRetries, type RetryPolicy } from './http.js';
import { isLoopbackHost, registryEndpoint } from './reference.js';

/** Options shared by registry sources and destinations. */
export interface RegistryOptions {
  /** `USER:PASS`, or parsed credentials; otherwise the auth files are consulted. */
  creds?: string | Credentials;
  /** The option that gives `creds` (default `--creds`), named when they are malformed, refused or needed. */
  credsOption?: string;
  /** Speak plain http to a non-loopback registry. */
  insecure?: boolean;
  retry?: RetryPolicy;
  /** Environment for the auth-file lookup (tests); default process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface RequestOptions {
  /** Token scopes this request needs (`repository:NAME:pull`). */
  scopes: readonly string[];
  headers?: Record<string, string>;
  /** Bodies are buffers so that a retried request sends the same bytes again. */
  body?: Buffer;
  /** 'manual' to see a redirect instead of following it. */
  redirect?: 'follow' | 'manual' | 'error';
  /** What the request is for, in error messages. */
  what: string;
}

const USER_AGENT = 'repro-oci';

/**
 * HTTP to one registry: the `/v2/` API over https (http only for loopback or when asked), authentication from
 * 401 challenges, and retries with exponential backoff on connection failures, 429 and 5xx, honoring Retry-After.
 */
export class RegistryClient {
  readonly base: string;
  readonly auth: Authenticator;
  readonly retry: RetryPolicy;

  private constructor(
    readonly registry: string,
    credentials: Credentials | undefined,
    insecure: boolean,
    retry: RetryPolicy,
    credsOption: string,
  ) {
    const endpoint = registryEndpoint(registry);
    this.base = `${insecure || isLoopbackHost(endpoint) ? 'http' : 'https'}://${endpoint}`;
    this.retry = retry;
    this.auth = new Authenticator(registry, credentials, insecure, retry, credsOption);
  }

  static async create(registry: string, repository: string, options: RegistryOptions = {}): Promise<RegistryClient> {
    const credsOption = options.credsOption ?? '--creds';
    const credentials =
      typeof options.creds === 'string' ? parseCreds(options.creds, credsOption) : options.creds ?? (await lookupCredentials(registry, repository, options.env ?? process.env));
    return new RegistryClient(registry, credentials, options.insecure === true, options.retry ?? DEFAULT_RETRY, credsOption);
  }

  /** An absolute URL for an API path (`/v2/…`) or a Location the registry gave us (possibly relative). */
  url(pathOrLocation: string): string {
    return new URL(pathOrLocation, this.base).href;
  }

  /**
   * Sends a request, authenticating as the registry asks and retrying transient failures. Returns any other
   * response (including 4xx other than 401) for the caller to judge; a final 401/403 is a UserError.
   */
  async request(method: string, pathOrUrl: string, options: RequestOptions): Promise<Response> {
    const url = this.url(pathOrUrl);
    for (let authAttempt = 0; ; authAttempt++) {
      const response = await withRetries(options.what, this.retry, async () => {
        const headers: Record<string, string> = { 'User-Agent': USER_AGENT, ...(options.headers ?? {}) };
        const authorization = await this.auth.header(options.scopes);
        if (authorization) headers.Authorization = authorization;
        return fetchOnce(url, { method, headers, ...(options.body ? { body: options.body } : {}), redirect: options.redirect ?? 'follow' });
      });
      if (response.status === 401 && authAttempt === 0 && this.auth.unauthorized(response, options.scopes)) {
        await response.body?.cancel().catch(() => {});
        continue;
      }
      if (response.status === 401 || response.status === 403) {
        throw this.auth.refusal(response.status, options.what, await errorDetail(response));
      }
      return response;
    }
  }

  /** A one-line UserError for an unexpected answer, with the registry's error code and message when it sent some. */
  async unexpected(response: Response, what: string): Promise<UserError> {
    const detail = await errorDetail(response);
    const hint = response.status === 404 ? ' (not found)' : '';
    return new UserError(`${what}: HTTP ${response.status}${hint}${detail ? `: ${detail}` : ''}`);
  }
}

/** The registry's error body (`{"errors":[{"code","message"}]}`) in a few words; empty when there is none. */
export async function errorDetail(response: Response): Promise<string> {
  if (response.bodyUsed) return '';
  const body = await readBody(response, response.url, 64 * 1024, 'error').catch(() => undefined);
  if (!body || body.length === 0) return '';
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errors?: { code?: unknown; message?: unknown }[] };
    const errors = Array.isArray(parsed.errors) ? parsed.errors : [];
    const text = errors.map((e) => [e.code, e.message].filter((x) => typeof x === 'string' && x).join(' ')).filter(Boolean).join('; ');
    return text.replace(/\s+/g, ' ').slice(0, 300);
  } catch {
    return '';
  }
}
