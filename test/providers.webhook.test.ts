/**
 * Webhook-provider specifics beyond the conformance suite: prepare() opens the connection ahead
 * of the instant and the call then uses it (no handshake at the instant); a response body is read
 * only up to its bound; a prepare that cannot connect costs the call nothing; connections to one
 * origin are bounded (SHIPCLOCK_WEBHOOK_CONNECTIONS) and reused across deployments.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, test } from 'node:test';
import { freePort } from '../src/db/embedded.ts';
import type { ProviderContext } from '../src/providers/types.ts';
import { configureWebhooks, type WebhookTarget, WEBHOOK_DEFAULT_CONNECTIONS, webhookProvider } from '../src/providers/webhook.ts';

function ctx(target: Omit<WebhookTarget, 'type'>): ProviderContext<WebhookTarget> {
  return {
    deployment: { id: randomUUID(), teamId: 't', appId: 'a', appName: 'web', runAt: new Date(), attempt: 1, startedAt: new Date() },
    target: { type: 'webhook', ...target }, ref: null, signal: new AbortController().signal, log: () => {},
  };
}

/** A receiver that records each connection it accepts and the socket each request came on. */
async function receiver(answer: (res: http.ServerResponse) => void = (res) => res.end('{}')) {
  const connections: Array<{ socket: Socket; at: number }> = [];
  const requests: Array<{ socket: Socket; at: number }> = [];
  const server = http.createServer((req, res) => {
    requests.push({ socket: req.socket, at: performance.now() });
    req.resume();
    req.on('end', () => answer(res));
  });
  server.on('connection', (socket: Socket) => connections.push({ socket, at: performance.now() }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, connections, requests };
}

const until = async (what: () => boolean, ms = 5000) => {
  const deadline = Date.now() + ms;
  while (!what()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('prepare() opens the connection before the instant and the call is sent on it', async () => {
  const rx = await receiver();
  webhookProvider.prepare!({ type: 'webhook', url: rx.url });
  await until(() => rx.connections.length === 1);
  const opened = rx.connections[0];
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(rx.requests.length, 0, 'nothing is sent ahead of the call');

  const result = await webhookProvider.start(ctx({ url: rx.url }));
  assert.equal(result.kind, 'succeeded');
  assert.equal(rx.connections.length, 1, 'no new connection at the call');
  assert.equal(rx.requests[0].socket, opened.socket, 'the request came on the prepared connection');
  assert.ok(rx.requests[0].at > opened.at);
});

test('one prepared connection per deployment: a burst of calls takes them all', async () => {
  const rx = await receiver();
  for (let i = 0; i < 20; i++) webhookProvider.prepare!({ type: 'webhook', url: rx.url });
  await until(() => rx.connections.length === 20);
  const results = await Promise.all(Array.from({ length: 20 }, () => webhookProvider.start(ctx({ url: rx.url }))));
  assert.deepEqual(new Set(results.map((r) => r.kind)), new Set(['succeeded']));
  assert.equal(rx.connections.length, 20, 'every call found its connection open');
  assert.equal(new Set(rx.requests.map((r) => r.socket)).size, 20);
});

test('a prepare that cannot connect, or a URL it cannot use, costs the call nothing', async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/hook`;
  webhookProvider.prepare!({ type: 'webhook', url });
  webhookProvider.prepare!({ type: 'webhook', url: 'not a url' });
  webhookProvider.prepare!({ type: 'webhook', url: 'ftp://example.com/x' });
  await new Promise((r) => setTimeout(r, 100));
  const result = await webhookProvider.start(ctx({ url }));
  assert.equal(result.kind, 'retry');
  assert.match((result as { error: string }).error, /ECONNREFUSED/);
  const ftp = await webhookProvider.start(ctx({ url: 'ftp://example.com/x' }));
  assert.deepEqual(ftp, { kind: 'failed', error: 'webhook request failed: webhook URL scheme ftp: is not http or https' });
});

test('a response body is read up to 64 KiB and no further; the status still counts', async () => {
  const rx = await receiver((res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    // A receiver that streams without end.
    const chunk = 'x'.repeat(16 * 1024);
    const timer = setInterval(() => { if (!res.write(chunk)) { /* back-pressure: keep going anyway */ } }, 1);
    res.on('close', () => clearInterval(timer));
  });
  const lines: string[] = [];
  const c = { ...ctx({ url: rx.url }), log: (l: string) => lines.push(l) };
  const result = await webhookProvider.start(c);
  assert.equal(result.kind, 'succeeded');
  assert.match(lines[0], /→ 200: x{500}$/, 'the log keeps a 500-character excerpt');
});

test('a connection opened for http:// is never used for https:// to the same host and port', async () => {
  const rx = await receiver();
  webhookProvider.prepare!({ type: 'webhook', url: rx.url });
  await until(() => rx.connections.length === 1);
  // The receiver speaks plain HTTP: a call meant for https must not go out unencrypted on the
  // plain connection (it would be answered 200); it must attempt TLS and fail.
  const result = await webhookProvider.start(ctx({ url: rx.url.replace('http:', 'https:'), timeout_seconds: 5 }));
  assert.equal(result.kind, 'retry', JSON.stringify(result));
  assert.equal(rx.requests.length, 0, 'nothing was sent in plain text');
  const plain = await webhookProvider.start(ctx({ url: rx.url }));
  assert.equal(plain.kind, 'succeeded');
  assert.equal(rx.requests[0].socket, rx.connections[0].socket, 'the http call took the connection opened for it');
});

test('connections to one origin are bounded and reused: prepare stops at the cap, a burst queues for them', async () => {
  configureWebhooks({ connections: 5 });
  after(() => configureWebhooks({ connections: WEBHOOK_DEFAULT_CONNECTIONS }));
  const rx = await receiver();
  for (let i = 0; i < 20; i++) webhookProvider.prepare!({ type: 'webhook', url: rx.url });
  await until(() => rx.connections.length === 5);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(rx.connections.length, 5, 'no more opened ahead than the cap');
  const results = await Promise.all(Array.from({ length: 60 }, () => webhookProvider.start(ctx({ url: rx.url }))));
  assert.deepEqual(new Set(results.map((r) => r.kind)), new Set(['succeeded']));
  assert.equal(rx.requests.length, 60);
  assert.equal(rx.connections.length, 5, 'the 60 calls shared the 5 connections');
  // A later burst reuses the kept-alive connections, and prepare opens none beyond them.
  for (let i = 0; i < 20; i++) webhookProvider.prepare!({ type: 'webhook', url: rx.url });
  await Promise.all(Array.from({ length: 30 }, () => webhookProvider.start(ctx({ url: rx.url }))));
  assert.equal(rx.connections.length, 5, 'connections are reused across deployments');
});

test('a call waiting in the pool past its timeout is never sent, and a stop ends the calls in flight', async () => {
  configureWebhooks({ connections: 1 });
  after(() => configureWebhooks({ connections: WEBHOOK_DEFAULT_CONNECTIONS }));
  // The receiver holds every answer until released: the one connection stays busy.
  const held: http.ServerResponse[] = [];
  const rx = await receiver((res) => held.push(res));
  const first = webhookProvider.start(ctx({ url: rx.url, timeout_seconds: 0.3 }));
  await until(() => rx.requests.length === 1);
  // Queued behind the first (cap 1): its timeout passes before a connection is free.
  const queued = webhookProvider.start(ctx({ url: rx.url, timeout_seconds: 0.3 }));
  const [a, b] = await Promise.all([first, queued]);
  assert.equal(a.kind, 'retry');
  assert.match(a.kind === 'retry' ? a.error : '', /no response within 0\.3 s/);
  assert.equal(b.kind, 'retry');
  assert.match(b.kind === 'retry' ? b.error : '', /no response within 0\.3 s/);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(rx.requests.length, 1, 'the queued call was not sent after its timeout');

  // A stop (the scheduler's signal) ends a call in flight at once, long before its timeout.
  const stop = new AbortController();
  const c = ctx({ url: rx.url, timeout_seconds: 30 });
  const started = performance.now();
  const inFlight = webhookProvider.start({ ...c, signal: stop.signal });
  await until(() => rx.requests.length === 2);
  stop.abort(new Error('shipclock is stopping'));
  const r = await inFlight;
  assert.equal(r.kind, 'retry');
  assert.match(r.kind === 'retry' ? r.error : '', /stopping/);
  assert.ok(performance.now() - started < 10_000, 'ended by the stop, not by its 30 s timeout');
  for (const res of held) res.end('{}');
});
