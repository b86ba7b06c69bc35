#!/usr/bin/env node
// The pooled floor: a faithful copy of `floor` in ../shared/bench/peers/fire-lag.mjs (what the
// outside checks judge fire lag against), sending to our receiver (bench/receiver.mjs) with the
// webhook provider's body and headers. No scheduler: an undici Agent with a pool of 128
// keep-alive connections, warmed with 64 GETs before the instant; at the instant a timer sends
// the N POSTs and drains each answer. Usage: floor-pooled.mjs URL N INSTANT_MS [ID_PREFIX].
// Prints {sent, ok, errors}.
import { Agent, request } from 'undici';

const [url, nArg, instantArg, prefix = 'floor'] = process.argv.slice(2);
const n = Number(nArg);
const instant = Number(instantArg);
const runAt = new Date(instant).toISOString();
const agent = new Agent({ connections: 128, keepAliveTimeout: 60_000 });
const warmUrl = new URL('/warm', url).toString();
await Promise.all(Array.from({ length: 64 }, () => request(warmUrl, { dispatcher: agent }).then((r) => r.body.dump())));

let ok = 0;
let errors = 0;
const post = async (i) => {
  const id = `${prefix}-${i}`;
  try {
    const r = await request(url, {
      dispatcher: agent, method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'shipclock', 'idempotency-key': id },
      body: JSON.stringify({ deployment_id: id, app_id: id, app_name: `bench-${i}`, run_at: runAt, attempt: 1 }),
    });
    await r.body.dump();
    if (r.statusCode >= 200 && r.statusCode < 300) ok++; else errors++;
  } catch {
    errors++;
  }
};
setTimeout(() => {
  const all = [];
  for (let i = 0; i < n; i++) all.push(post(i));
  Promise.all(all).then(() => {
    console.log(JSON.stringify({ sent: n, ok, errors }));
    process.exit(0);
  });
}, Math.max(0, instant - Date.now()));
