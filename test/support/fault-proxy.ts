import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { listenOnLoopback } from './http-server.js';

/** A fault injected into the next requests whose `METHOD /path?query` matches. */
export interface ProxyFault {
  match: RegExp;
  /** How many matching requests it applies to (Infinity for all). */
  times: number;
  /**
   * drop: close the connection without answering (the registry never sees the request);
   * status: answer `status` (with Retry-After when given) without forwarding;
   * truncate: forward, then cut the response body after half its bytes;
   * corrupt: forward, then serve the body with its first byte changed (same length, wrong digest);
   * redirect: answer 307 to `location` + the request's path (blob storage elsewhere);
   * partial: (an upload PATCH) hand the registry only the first half of the body, as a complete request with its
   * Content-Length and Content-Range cut to match, then drop the client's connection unanswered — a body cut
   * off in transit that the registry kept part of.
   */
  kind: 'drop' | 'status' | 'truncate' | 'corrupt' | 'redirect' | 'partial';
  status?: number;
  location?: string;
  retryAfter?: string;
}

export interface FaultProxy {
  /** `127.0.0.1:PORT` */
  host: string;
  /** `METHOD /path?query` of every request, in order, with ` range=bytes=N-` when it asked for a range. */
  requests: string[];
  faults: ProxyFault[];
  close(): Promise<void>;
}

/**
 * A loopback HTTP proxy in front of a registry. It forwards the Host header unchanged, so the Locations the
 * registry hands out point back at the proxy and every request of an upload passes through it.
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const [targetHost, targetPort] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const requests: string[] = [];
  const faults: ProxyFault[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const line = `${req.method} ${req.url}`;
    requests.push(req.headers.range ? `${line} range=${req.headers.range}` : line);
    const fault = faults.find((f) => f.times > 0 && f.match.test(line));
    if (fault) fault.times--;
    if (fault?.kind === 'drop') {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'redirect') {
      req.resume();
      res.writeHead(307, { Location: `${fault.location}${req.url}`, Connection: 'close' }).end();
      return;
    }
    if (fault?.kind === 'status') {
      req.resume();
      res.writeHead(fault.status ?? 500, { Connection: 'close', ...(fault.retryAfter !== undefined ? { 'Retry-After': fault.retryAfter } : {}) }).end();
      return;
    }
    if (fault?.kind === 'partial') {
      const body: Buffer[] = [];
      req.on('data', (c: Buffer) => body.push(c));
      req.on('end', () => {
        const all = Buffer.concat(body);
        const half = all.subarray(0, Math.floor(all.length / 2));
        const start = Number(/^(\d+)-/.exec(String(req.headers['content-range']))?.[1] ?? 0);
        const headers = { ...req.headers, 'content-length': String(half.length), 'content-range': `${start}-${start + half.length - 1}` };
        const upstream = httpRequest({ host: targetHost, port: targetPort, method: req.method, path: req.url, headers }, (answer) => {
          answer.resume();
          answer.on('end', () => req.socket.destroy());
        });
        upstream.on('error', () => req.socket.destroy());
        upstream.end(half);
      });
      return;
    }
    const upstream = httpRequest({ host: targetHost, port: targetPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      const headers = { ...answer.headers };
      if (fault?.kind === 'truncate' || fault?.kind === 'corrupt') {
        const chunks: Buffer[] = [];
        answer.on('data', (c: Buffer) => chunks.push(c));
        answer.on('end', () => {
          const body = Buffer.concat(chunks);
          res.writeHead(answer.statusCode ?? 502, headers);
          if (fault.kind === 'corrupt') {
            if (body.length > 0) body[0] = body[0]! ^ 0xff;
            res.end(body);
          } else {
            res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket?.destroy());
          }
        });
        return;
      }
      res.writeHead(answer.statusCode ?? 502, headers);
      answer.pipe(res);
    });
    upstream.on('error', () => req.socket.destroy());
    req.pipe(upstream);
  };
  const { port, close } = await listenOnLoopback(handler);
  return { host: `127.0.0.1:${port}`, requests, faults, close };
}
