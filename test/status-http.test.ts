import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { NotFoundError, UserError } from '../src/errors.js';
import { getBytes, getConditional } from '../src/status/http-get.js';
import { listenOnLoopback } from './support/http-server.js';

/**
 * status's HTTP client (node:http on kept-alive connections, for thousands of attestations): the contract of
 * fetchConditional — retries, time limits, size limits on the decoded bytes, 304 rules — against servers that
 * misbehave on purpose.
 */

const RETRY = { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 };

interface Served {
  url: string;
  requests: IncomingMessage[];
  sockets: Set<Socket>;
}

async function serve(t: TestContext, handler: (req: IncomingMessage, res: ServerResponse, n: number) => void): Promise<Served> {
  const requests: IncomingMessage[] = [];
  const sockets = new Set<Socket>();
  const { port, close } = await listenOnLoopback((req, res) => {
    requests.push(req);
    sockets.add(req.socket);
    handler(req, res, requests.length);
  });
  t.after(close);
  return { url: `http://127.0.0.1:${port}`, requests, sockets };
}

const rejects = async (promise: Promise<unknown>, pattern: RegExp, type: new (...args: never[]) => Error = UserError): Promise<void> => {
  await assert.rejects(promise, (err: Error) => {
    assert.ok(err instanceof type, `${err.name}: ${err.message}`);
    assert.match(err.message, pattern);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  });
};

test('requests share kept-alive connections', async (t) => {
  const s = await serve(t, (_req, res) => res.end('ok'));
  for (let i = 0; i < 20; i++) assert.equal((await getBytes(`${s.url}/a/${i}`, 'r', 10, RETRY)).toString(), 'ok');
  await Promise.all(Array.from({ length: 20 }, (_, i) => getBytes(`${s.url}/b/${i}`, 'r', 10, RETRY)));
  assert.equal(s.requests.length, 40);
  assert.ok(s.sockets.size <= 16, `${s.sockets.size} connections for 40 requests`);
});

test('gzip and brotli answers are decoded, and the limit holds for the decoded bytes (a bomb is cut)', async (t) => {
  const text = 'x'.repeat(5000);
  const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
  const s = await serve(t, (req, res) => {
    assert.equal(req.headers['accept-encoding'], 'gzip, br');
    if (req.url === '/gzip') res.writeHead(200, { 'Content-Encoding': 'gzip' }).end(gzipSync(text));
    else if (req.url === '/br') res.writeHead(200, { 'Content-Encoding': 'br' }).end(brotliCompressSync(text));
    else if (req.url === '/bomb') res.writeHead(200, { 'Content-Encoding': 'gzip' }).end(bomb);
    else if (req.url === '/broken') res.writeHead(200, { 'Content-Encoding': 'gzip' }).end('not gzip');
    else res.writeHead(200, { 'Content-Encoding': 'compress' }).end('?');
  });
  assert.equal((await getBytes(`${s.url}/gzip`, 'r', 5000, RETRY)).toString(), text);
  assert.equal((await getBytes(`${s.url}/br`, 'r', 5000, RETRY)).toString(), text);
  await rejects(getBytes(`${s.url}/gzip`, 'r', 4999, RETRY), /^r: http:\S+\/gzip: more than the 4999-byte limit$/);
  await rejects(getBytes(`${s.url}/bomb`, 'r', 1024 * 1024, RETRY), /more than the 1048576-byte limit$/);
  await rejects(getBytes(`${s.url}/broken`, 'r', 1000, RETRY), /\/broken: not valid gzip/);
  await rejects(getBytes(`${s.url}/other`, 'r', 1000, RETRY), /Content-Encoding "compress" was not asked for$/);
});

test('redirects are followed (at most 5, http and https only); messages name the URL asked for', async (t) => {
  const s = await serve(t, (req, res) => {
    const hop = /^\/hop\/(\d+)$/.exec(req.url ?? '');
    if (hop) res.writeHead(302, { Location: Number(hop[1]) > 0 ? `/hop/${Number(hop[1]) - 1}` : '/end' }).end();
    else if (req.url === '/file') res.writeHead(301, { Location: 'file:///etc/passwd' }).end();
    else if (req.url === '/end') res.end('end');
    else res.writeHead(404).end();
  });
  assert.equal((await getBytes(`${s.url}/hop/4`, 'r', 10, RETRY)).toString(), 'end');
  await rejects(getBytes(`${s.url}/hop/5`, 'r', 10, RETRY), /^r: http:\S+\/hop\/5: more than 5 redirects$/);
  await rejects(getBytes(`${s.url}/file`, 'r', 10, RETRY), /\/file: redirected to a file: URL$/);
  await rejects(getBytes(`${s.url}/gone`, 'r', 10, RETRY), /\/gone: HTTP 404 \(not found\)$/, NotFoundError);
  await rejects(getBytes('file:///etc/passwd', 'r', 10, RETRY), /only http and https/);
});

test('transient failures are retried: 5xx, 429 with Retry-After, a cut connection, a truncated body, no answer in time', async (t) => {
  const s = await serve(t, (req, res, n) => {
    if (req.url === '/flaky' && n % 2 === 1) res.writeHead(503).end();
    else if (req.url === '/busy' && n % 2 === 1) res.writeHead(429, { 'Retry-After': '0' }).end();
    else if (req.url === '/cut') req.socket.destroy();
    else if (req.url === '/short') res.writeHead(200, { 'Content-Length': '10' }).end('12345', () => req.socket.destroy());
    else if (req.url === '/silent') req.socket.setTimeout(0);
    else if (req.url === '/chunked') res.write('fi', () => res.end('ne'));
    else res.end('fine');
  });
  assert.equal((await getBytes(`${s.url}/flaky`, 'r', 10, RETRY)).toString(), 'fine');
  assert.equal((await getBytes(`${s.url}/busy`, 'r', 10, RETRY)).toString(), 'fine');
  await rejects(getBytes(`${s.url}/cut`, 'r', 10, RETRY), /\/cut: (ECONNRESET|socket hang up) \(after 2 attempts\)$/);
  await rejects(getBytes(`${s.url}/short`, 'r', 10, RETRY), /\/short: (connection lost after 5 bytes|truncated \(5 of 10 bytes\)|connection lost \(\S+\)) \(after 2 attempts\)$/);
  const started = Date.now();
  await rejects(getBytes(`${s.url}/silent`, 'r', 10, RETRY, 200), /\/silent: no complete answer within 200 ms \(after 2 attempts\)$/);
  assert.ok(Date.now() - started < 5000);
  await rejects(getBytes(`${s.url}/x`, 'r', 3, RETRY), /\/x: 4 bytes exceeds the 3-byte limit$/);
  await rejects(getBytes(`${s.url}/chunked`, 'r', 3, RETRY), /\/chunked: more than the 3-byte limit$/);
});

test('If-Modified-Since: a 304 to it is "not modified", a 304 to a request without it an error', async (t) => {
  const s = await serve(t, (req, res) => {
    if (req.headers['if-modified-since'] === 'Mon, 01 Jun 2026 12:00:00 GMT' || req.url === '/always') res.writeHead(304).end();
    else res.writeHead(200, { 'Last-Modified': 'Mon, 01 Jun 2026 12:00:00 GMT' }).end('body');
  });
  assert.deepEqual(await getConditional(`${s.url}/a`, 'r', 10, RETRY), { body: Buffer.from('body'), lastModified: 'Mon, 01 Jun 2026 12:00:00 GMT' });
  assert.equal(await getConditional(`${s.url}/a`, 'r', 10, RETRY, 1000, 'Mon, 01 Jun 2026 12:00:00 GMT'), 'not modified');
  await rejects(getConditional(`${s.url}/always`, 'r', 10, RETRY), /HTTP 304 \(not modified\) to a request that was not conditional$/);
});

test('a kept-alive connection the server closed meanwhile is not a failure', async (t) => {
  const s = await serve(t, (_req, res) => res.end('ok'));
  assert.equal((await getBytes(`${s.url}/one`, 'r', 10, RETRY)).toString(), 'ok');
  for (const socket of s.sockets) socket.destroy();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal((await getBytes(`${s.url}/two`, 'r', 10, { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 })).toString(), 'ok');
});
