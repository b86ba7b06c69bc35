/**
 * Warm-up at start: loads and compiles the webhook path (node:http, TLS, V8's optimizations of
 * what runs often) with calls to a throwaway local server, so that the first burst after a start
 * is sent as fast as later ones. No request leaves the machine. The calls go DISPATCH_CHUNK at a
 * time, the shape of a burst: with 10 at a time, the first 3,000-deployment burst of three fresh
 * processes was 1.8× slower than the next one (docs/decisions/0002).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../observability/logger.ts';
import { providerFor } from '../providers/index.ts';
import { DISPATCH_CHUNK } from './burst.ts';

export async function warmUp(calls: number, signal: AbortSignal, isStopping: () => boolean, logger: Logger): Promise<void> {
  const provider = providerFor('webhook');
  if (!provider || calls <= 0) return;
  const started = performance.now();
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('{}'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/warm-up`;
    for (let round = 0; round * DISPATCH_CHUNK < calls && !isStopping(); round++) {
      await Promise.all(Array.from({ length: Math.min(DISPATCH_CHUNK, calls - round * DISPATCH_CHUNK) }, (_, i) => provider.start({
        deployment: { id: `warm-up-${round}-${i}`, teamId: '', appId: '', appName: 'warm-up', runAt: new Date(), attempt: 1, startedAt: new Date() },
        target: { type: 'webhook', url, secret: 'warm-up', timeout_seconds: 5 },
        ref: null, signal, log: () => {},
      })));
    }
    logger.debug({ calls, ms: Math.round(performance.now() - started) }, 'webhook path warmed up');
  } finally {
    server.closeAllConnections();
    server.close();
  }
}
