import { spawn, type ChildProcess } from 'node:child_process';
import { createSign, randomBytes, X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { makeTempDir, removeDir, runOk } from './cli.js';
import { listenOnLoopback } from './http-server.js';

/**
 * A real CNCF distribution registry (Debian's docker-registry) on 127.0.0.1 with its own config and temp storage,
 * optionally behind htpasswd basic auth or token auth with the tiny token server below.
 */

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface TokenServer {
  /** The realm registries send clients to. */
  realm: string;
  service: string;
  issuer: string;
  /** PEM of the signing certificate (the registry's rootcertbundle). */
  certPath: string;
  /** `GET /token?…` lines, one per token issued or refused. */
  requests: string[];
  stop(): Promise<void>;
}

export interface TokenServerOptions {
  /** username → password; anyone else is refused, and anonymous clients get pull only if allowAnonymousPull. */
  users: Record<string, string>;
  allowAnonymousPull?: boolean;
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/** A token server per the Docker token spec, issuing RS256 JWTs whose x5c header carries a self-signed cert. */
export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const dir = await makeTempDir('token');
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  await runOk('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=repro-oci test token signer']);
  const key = await readFile(keyPath, 'utf8');
  const certDer = new X509Certificate(await readFile(certPath)).raw.toString('base64');
  const service = 'repro-oci-test-registry';
  const issuer = 'repro-oci-test-issuer';
  const requests: string[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(`${req.method} ${url.pathname}?${url.searchParams}`);
    let user: string | undefined;
    const auth = req.headers.authorization;
    if (auth?.startsWith('Basic ')) {
      const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const [name, password] = [decoded.slice(0, colon), decoded.slice(colon + 1)];
      if (options.users[name] !== password) {
        res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"details":"bad credentials"}');
        return;
      }
      user = name;
    }
    if (url.pathname !== '/token' || url.searchParams.get('service') !== service) {
      res.writeHead(400).end();
      return;
    }
    const access = url.searchParams.getAll('scope').flatMap((scope) => {
      const [type, ...rest] = scope.split(':');
      const actions = rest.pop()!.split(',');
      const granted = user ? actions : options.allowAnonymousPull ? actions.filter((a) => a === 'pull') : [];
      return granted.length ? [{ type, name: rest.join(':'), actions: granted }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer] };
    const claims = { iss: issuer, sub: user ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = createSign('RSA-SHA256').update(signingInput).sign(key);
    const token = `${signingInput}.${b64url(signature)}`;
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  };
  const { port, close } = await listenOnLoopback(handler);
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certPath,
    requests,
    stop: async () => {
      await close();
      await removeDir(dir);
    },
  };
}

export interface StartRegistryOptions {
  /** username → password, for htpasswd basic auth (bcrypt entries made with htpasswd -B). */
  htpasswd?: Record<string, string>;
  token?: TokenServer;
}

export interface RunningRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  url: string;
  storage: string;
  /** What the registry logged so far (its access log included). */
  log(): string;
  stop(): Promise<void>;
}

export async function startRegistry(options: StartRegistryOptions = {}): Promise<RunningRegistry> {
  const dir = await makeTempDir('registry');
  const storage = join(dir, 'storage');
  const port = await freePort();
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
  ];
  if (options.htpasswd) {
    const file = join(dir, 'htpasswd');
    const entries: string[] = [];
    for (const [user, password] of Object.entries(options.htpasswd)) {
      entries.push((await runOk('htpasswd', ['-nbB', user, password])).stdout.trim());
    }
    await writeFile(file, `${entries.join('\n')}\n`);
    lines.push('auth:', '  htpasswd:', '    realm: repro-oci-test', `    path: ${file}`);
  } else if (options.token) {
    const t = options.token;
    lines.push('auth:', '  token:', `    realm: ${t.realm}`, `    service: ${t.service}`, `    issuer: ${t.issuer}`, `    rootcertbundle: ${t.certPath}`);
  }
  const config = join(dir, 'config.yml');
  await writeFile(config, `${lines.join('\n')}\n`);
  let output = '';
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  let exited = false;
  child.on('exit', () => (exited = true));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) throw new Error(`docker-registry exited at start:\n${output}`);
    const ok = await fetch(`${url}/v2/`)
      .then((r) => r.status === 200 || r.status === 401)
      .catch(() => false);
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not answer on ${url}:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    host: `127.0.0.1:${port}`,
    url,
    storage,
    log: () => output,
    stop: async () => {
      if (!exited) {
        const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        await Promise.race([gone, new Promise((resolve) => setTimeout(resolve, 5000))]);
        if (!exited) child.kill('SIGKILL');
      }
      await removeDir(dir);
    },
  };
}
