#!/usr/bin/env node
// The floor: what this machine can do for the same work with no scheduler at all. A plain
// process that, on a timer, sends N POSTs at an instant to a receiver, with the same client as
// the webhook provider (node:http with a keep-alive agent, src/providers/webhook.ts) and the same
// body and headers, and drains each answer. Usage: floor.mjs URL N INSTANT_MS [ID_PREFIX].
// Prints {sent, ok, errors}.
import http from 'node:http';

const [url, nArg, instantArg, prefix = 'floor'] = process.argv.slice(2);
const n = Number(nArg);
const instant = Number(instantArg);
const runAt = new Date(instant).toISOString();
const agent = new http.Agent({ keepAlive: true });
const reqs = [];
for (let i = 0; i < n; i++) {
  const id = `${prefix}-${i}`;
  const body = JSON.stringify({ deployment_id: id, app_id: id, app_name: `bench-${i}`, run_at: runAt, attempt: 1 });
  reqs.push({ body, headers: { 'content-type': 'application/json', 'user-agent': 'shipclock', 'idempotency-key': id, 'content-length': String(Buffer.byteLength(body)) } });
}

function post(target, r) {
  return new Promise((resolve) => {
    const req = http.request(target, { method: 'POST', agent, headers: r.headers }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode >= 200 && res.statusCode < 300));
      res.on('error', () => resolve(false));
    });
    req.on('error', () => resolve(false));
    req.end(r.body);
  });
}

let ok = 0;
let errors = 0;
const fire = () => {
  if (Date.now() < instant) return void setTimeout(fire, instant - Date.now());
  const all = [];
  for (const r of reqs) all.push(post(url, r).then((good) => { if (good) ok++; else errors++; }));
  Promise.all(all).then(() => {
    console.log(JSON.stringify({ sent: n, ok, errors }));
    process.exit(0);
  });
};
// Warm up first, as shipclock does at start (SHIPCLOCK_WARM_UP_CALLS: 2,000 calls, 100 at a
// time), as far as the time before the instant allows: load the client, JIT the request path,
// grow the heap. The floor is the best this machine does, not a cold start.
const warmUrl = new URL('/warm', url).toString();
for (let i = 0; i < 2000 && Date.now() < instant - 300; i += 100) {
  await Promise.all(reqs.slice(0, 100).map((r) => post(warmUrl, r)));
}
setTimeout(fire, Math.max(0, instant - Date.now()));
