import { createReadStream, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { listenOnLoopback } from '../../src/util/loopback.js';
import { join, normalize } from 'node:path';

/** A fault the server injects into the next requests that match `path` (a substring). */
export interface Fault {
  path: string;
  /** How many matching requests it applies to. */
  times: number;
  kind: 'status' | 'drop' | 'truncate';
  status?: number;
  /** For truncate: bytes sent before the connection is cut. */
  after?: number;
}

export interface FileServer {
  url: string;
  requests: string[];
  faults: Fault[];
  close(): Promise<void>;
}

/** Serves a directory on 127.0.0.1 (a random port) with Range support and injectable faults. */
export async function serveDirectory(root: string): Promise<FileServer> {
  const requests: string[] = [];
  const faults: Fault[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(`${req.method} ${path}${req.headers.range ? ` ${req.headers.range}` : ''}`);
    const fault = faults.find((f) => f.times > 0 && path.includes(f.path));
    if (fault) fault.times--;
    if (fault?.kind === 'status') {
      res.writeHead(fault.status ?? 500).end();
      return;
    }
    if (fault?.kind === 'drop') {
      req.socket.destroy();
      return;
    }
    const file = join(root, normalize(path));
    let size: number;
    try {
      const info = statSync(file);
      if (!info.isFile() || !file.startsWith(root)) throw new Error('not a file');
      size = info.size;
    } catch {
      res.writeHead(404).end();
      return;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      if (start >= size) {
        res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
        return;
      }
      res.writeHead(206, { 'Content-Length': size - start, 'Content-Range': `bytes ${start}-${size - 1}/${size}` });
    } else {
      res.writeHead(200, { 'Content-Length': size });
    }
    if (fault?.kind === 'truncate') {
      // Send the first bytes, let them reach the client, then close the connection short of Content-Length.
      const head = readFileSync(file).subarray(start, start + (fault.after ?? 0));
      res.write(head, () => setTimeout(() => res.socket?.end(), 100));
      return;
    }
    createReadStream(file, { start }).pipe(res);
  };
  const { port, close } = await listenOnLoopback(handler);
  return { url: `http://127.0.0.1:${port}`, requests, faults, close };
}

export { listenOnLoopback };
