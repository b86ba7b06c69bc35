#!/usr/bin/env node
// A webhook receiver in its own process, for the benchmarks: records the arrival time of every
// POST (when its headers were parsed, wall clock, ms) with the
// deployment id and instant from its body, answers 200 at once. POSTs to `/warm` are answered and not recorded. `GET /results` returns and
// clears what it recorded. Prints its port as the first line on stdout.
// Plain JavaScript on purpose: it starts in milliseconds and does nothing but receive.
import http from 'node:http';

// The wall clock, read at each arrival (what the bench's instant and PostgreSQL's clock are): a
// monotonic clock anchored at start (performance.timeOrigin + performance.now()) drifts from it
// when the machine's clock is stepped, and one run here counted all 50,000 arrivals "early" that way
// (the floor's lags shifted alike, so the ratio still read 0.71).
const now = () => Date.now();
let hits = [];
const server = http.createServer((req, res) => {
  const at = now();
  if (req.method === 'GET' && req.url === '/results') {
    const out = JSON.stringify(hits);
    hits = [];
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(out);
    return;
  }
  const warm = req.url === '/warm';
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let id = null;
    let runAt = null;
    try {
      const b = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      id = b.deployment_id;
      runAt = Date.parse(b.run_at);
    } catch { /* recorded without an id */ }
    if (!warm) hits.push([id, runAt, at, req.headers['idempotency-key'] ?? null]);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
});
server.keepAliveTimeout = 120_000;
server.headersTimeout = 130_000;
server.maxHeadersCount = 100;
// A deep accept queue: 10,000 connections open at one instant (undici opens one per request in flight).
server.listen({ port: Number(process.env.PORT || 0), host: '127.0.0.1', backlog: 65535 }, () => {
  console.log(server.address().port);
});
process.on('SIGTERM', () => process.exit(0));
