/** A webhook receiver that records every request (arrival time, headers, raw body) and answers as told. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Hit {
  at: number;
  path: string;
  headers: http.IncomingHttpHeaders;
  raw: string;
  body: any;
}

export interface WebhookReceiver {
  url: string;
  hits: Hit[];
  /** Answer with these statuses in turn (the last one repeats); default 200. */
  respondWith(...statuses: number[]): void;
  /** Delay each answer by ms. */
  delay(ms: number): void;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const hits: Hit[] = [];
  let statuses = [200];
  let delayMs = 0;
  const server = http.createServer((req, res) => {
    const at = Date.now();
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown = null;
      try { body = JSON.parse(raw); } catch { /* keep raw */ }
      hits.push({ at, path: req.url ?? '/', headers: req.headers, raw, body });
      const status = statuses.length > 1 ? statuses.shift()! : statuses[0];
      setTimeout(() => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: status < 300 }));
      }, delayMs);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    hits,
    respondWith: (...s) => { statuses = s.length ? s : [200]; },
    delay: (ms) => { delayMs = ms; },
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
