import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { listenOnLoopback } from './http-server.js';

/**
 * A registry with the referrers API (distribution-spec 1.1), emulated in front of Debian's docker-registry 2.8,
 * which lacks it: a manifest PUT whose body has a `subject` is forwarded, answered with `OCI-Subject`, and
 * remembered; `GET /v2/<name>/referrers/<digest>[?artifactType=T]` answers the index of those remembered, as the
 * spec describes (descriptors with artifactType and annotations). Everything else passes through unchanged.
 */
export interface ReferrersRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** `METHOD /path` of every request, in order. */
  requests: string[];
  close(): Promise<void>;
}

interface Referrer {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export async function startReferrersRegistry(target: string): Promise<ReferrersRegistry> {
  const [targetHost, targetPort] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const requests: string[] = [];
  const referrers = new Map<string, Referrer[]>(); // `<name>@<subject digest>` → referrers

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer | undefined, extraHeaders: Record<string, string> = {}): void => {
    const upstream = httpRequest({ host: targetHost, port: targetPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, { ...answer.headers, ...((answer.statusCode ?? 0) < 300 ? extraHeaders : {}) });
      answer.pipe(res);
    });
    upstream.on('error', () => req.socket.destroy());
    if (body) upstream.end(body);
    else req.pipe(upstream);
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://registry');
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    const listing = /^\/v2\/(.+)\/referrers\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
    if (req.method === 'GET' && listing) {
      const artifactType = url.searchParams.get('artifactType');
      const all = referrers.get(`${listing[1]}@${listing[2]}`) ?? [];
      const manifests = artifactType ? all.filter((r) => r.artifactType === artifactType) : all;
      const headers: Record<string, string> = { 'Content-Type': 'application/vnd.oci.image.index.v1+json' };
      if (artifactType) headers['OCI-Filters-Applied'] = 'artifactType';
      res.writeHead(200, headers).end(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
      return;
    }
    const put = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'PUT' && put) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        let parsed: { subject?: { digest?: string }; artifactType?: string; config?: { mediaType?: string }; annotations?: Record<string, string>; mediaType?: string } = {};
        try {
          parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
        } catch {
          // not JSON: the registry answers it
        }
        const subject = parsed.subject?.digest;
        if (!subject) return forward(req, res, body);
        const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
        const key = `${put[1]}@${subject}`;
        const list = referrers.get(key) ?? [];
        if (!list.some((r) => r.digest === digest)) {
          list.push({
            mediaType: String(req.headers['content-type'] ?? parsed.mediaType),
            digest,
            size: body.length,
            artifactType: parsed.artifactType ?? parsed.config?.mediaType ?? '',
            ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
          });
          referrers.set(key, list);
        }
        forward(req, res, body, { 'OCI-Subject': subject });
      });
      return;
    }
    forward(req, res, undefined);
  };
  const { port, close } = await listenOnLoopback(handler);
  return { host: `127.0.0.1:${port}`, requests, close };
}
