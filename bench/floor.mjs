#!/usr/bin/env node
// The floor: what this machine can do for the same work with no scheduler at all. A plain
// process that, on a timer, sends N POSTs at an instant to a receiver, with the same client as
// the webhook provider (global fetch = undici, keep-alive) and the same body and headers, and
// drains each answer. Usage: floor.mjs URL N INSTANT_MS [ID_PREFIX]. Prints {sent, ok, errors}.
const [url, nArg, instantArg, prefix = 'floor'] = process.argv.slice(2);
const n = Number(nArg);
const instant = Number(instantArg);
const runAt = new Date(instant).toISOString();
const reqs = [];
for (let i = 0; i < n; i++) {
  const id = `${prefix}-${i}`;
  const body = JSON.stringify({ deployment_id: id, app_id: id, app_name: `bench-${i}`, run_at: runAt, attempt: 1 });
  reqs.push({ body, headers: { 'content-type': 'application/json', 'user-agent': 'shipclock', 'idempotency-key': id } });
}
let ok = 0;
let errors = 0;
const fire = () => {
  if (Date.now() < instant) return void setTimeout(fire, instant - Date.now());
  const all = [];
  for (const r of reqs) {
    all.push(fetch(url, { method: 'POST', headers: r.headers, body: r.body, redirect: 'manual' })
      .then(async (res) => { await res.text(); if (res.ok) ok++; else errors++; }, () => { errors++; }));
  }
  Promise.all(all).then(() => {
    console.log(JSON.stringify({ sent: n, ok, errors }));
    process.exit(0);
  });
};
// Warm up first, as shipclock does at start (SHIPCLOCK_WARM_UP_CALLS, 100 at a time), but with
// 1,000 calls where shipclock's default is 500: load undici, JIT the request path, grow the heap.
// The floor is the best this machine does, not a cold start.
const warmUrl = new URL('/warm', url).toString();
for (let i = 0; i < 1000 && Date.now() < instant - 300; i += 100) {
  await Promise.all(reqs.slice(0, 100).map((r) =>
    fetch(warmUrl, { method: 'POST', headers: r.headers, body: r.body, redirect: 'manual' }).then((res) => res.text()).catch(() => {})));
}
setTimeout(fire, Math.max(0, instant - Date.now()));
