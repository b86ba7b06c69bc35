/**
 * `npm run bench -- api [--clients 50] [--seconds 10] [--dependency] [--json]`
 *
 * `--dependency`: every request also names a dependency (another of the 200 apps, 15 minutes
 * earlier), the path that writes two rows in a transaction.
 *
 * `clients` concurrent clients, each POSTing /v1/scheduled_deployments back to back for
 * `seconds` (after a 2 s warm-up that is not counted), against `shipclock serve` as a real
 * process on a fresh database. Each request schedules one deployment of one of 200 webhook
 * apps at a random second of the next 30 days (never firing during the run). Reports
 * latency p50/p99/max, req/s and errors, and the CPU spent per request in the measured window by
 * the serve process and by the PostgreSQL backends of the bench database (Linux /proc, a local
 * server; blank elsewhere): unlike the latency, that hardly depends on what else the shared
 * machine is doing, so it compares two versions measured at different loads.
 *
 * The clients share the machine with the server and PostgreSQL, so they use node:http with a
 * keep-alive agent (one connection per client), which costs about half the CPU of `fetch`;
 * BENCH_API_CLIENT=fetch runs the same workload through `fetch`, for comparison with earlier
 * figures. SHIPCLOCK_DB_POOL_SIZE, when set, is passed on to the server.
 */
import fs from 'node:fs';
import http from 'node:http';
import pg from 'pg';
import {
  Api, cleanup, cpuMs, createBenchDatabase, fmt, log, mapLimit, shipclockEnv, sleep, spawnShipclock, summary, table, utcFields,
} from './lib.ts';

export interface ApiOptions {
  clients: number;
  seconds: number;
  json: boolean;
  databaseUrl: string;
  dependency: boolean;
}

export async function apiBench(o: ApiOptions): Promise<void> {
  const db = await createBenchDatabase(o.databaseUrl);
  try {
    const poolSize = process.env.SHIPCLOCK_DB_POOL_SIZE;
    const serve = await spawnShipclock('serve', shipclockEnv(db.url, poolSize ? { SHIPCLOCK_DB_POOL_SIZE: poolSize } : {}));
    const api = new Api(serve.url);
    await api.login();
    const apps = await mapLimit(Array.from({ length: 200 }, (_, i) => i), 8, async (i) =>
      (await api.ok('POST', '/v1/apps', { name: `api-${i}`, target: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } })).id as string);
    log(`200 apps created; ${o.clients} clients for ${o.seconds} s (+2 s warm-up)`);
    const headers = { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' };
    const post = process.env.BENCH_API_CLIENT === 'fetch' ? fetchPost(`${serve.url}/v1/scheduled_deployments`, headers) : httpPost(`${serve.url}/v1/scheduled_deployments`, headers, o.clients);
    log(`client: ${process.env.BENCH_API_CLIENT === 'fetch' ? 'fetch' : 'node:http'}${poolSize ? `; SHIPCLOCK_DB_POOL_SIZE=${poolSize}` : ''}`);
    const lat: number[] = [];
    let errors = 0;
    const statuses = new Map<number, number>();
    const start = Date.now();
    const measureFrom = start + 2000;
    const end = measureFrom + o.seconds * 1000;
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    // The serve process and PostgreSQL's backends on the bench database, sampled when the measured window opens and closes.
    const backends = async () => (await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()')).rows.map((r) => r.pid);
    let cpuFrom: { serve: number; pg: Map<number, number> } | undefined;
    const opened = sleep(measureFrom - Date.now()).then(async () => {
      cpuFrom = { serve: cpuMs(serve.pid), pg: new Map((await backends()).map((pid) => [pid, cpuMs(pid)])) };
    });
    await Promise.all(Array.from({ length: o.clients }, async (_, c) => {
      let i = c;
      while (Date.now() < end) {
        const app = apps[i++ % apps.length];
        const body = JSON.stringify({
          app, ...utcFields(Date.now() + 3_600_000 + Math.floor(Math.random() * 30 * 86_400) * 1000),
          ...(o.dependency ? { dependency: apps[(i + 100) % apps.length] } : {}),
        });
        const t0 = performance.now();
        const status = await post(body);
        const ms = performance.now() - t0;
        if (Date.now() < measureFrom) continue;
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status !== 201) errors++;
        lat.push(ms);
      }
    }));
    const elapsed = (Date.now() - measureFrom) / 1000;
    await opened;
    // A backend that started within the window counts from 0 (it did nothing before).
    const serveCpu = cpuMs(serve.pid) - cpuFrom!.serve;
    const pgCpu = (await backends()).reduce((a, pid) => a + cpuMs(pid) - (cpuFrom!.pg.get(pid) ?? 0), 0);
    await admin.end();
    const s = summary(lat);
    const perRequest = (ms: number) => (serveCpu > 0 && lat.length ? (ms * 1000) / lat.length : null);
    const result = {
      dependency: o.dependency, clients: o.clients, seconds: elapsed, requests: lat.length, req_per_s: lat.length / elapsed, p50: s.p50, p99: s.p99, max: s.max, errors,
      statuses: Object.fromEntries(statuses), serve_cpu_us_per_request: perRequest(serveCpu), postgres_cpu_us_per_request: perRequest(pgCpu),
      load: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
    };
    if (o.json) console.log(JSON.stringify(result, null, 2));
    else {
      console.log(`\napi: POST /v1/scheduled_deployments${o.dependency ? ' with a dependency' : ''}, ${o.clients} concurrent clients, ${elapsed.toFixed(1)} s measured`);
      const us = (v: number | null) => (v === null ? '' : v.toFixed(0));
      console.log(table([{
        requests: lat.length, 'req/s': result.req_per_s.toFixed(0), p50_ms: fmt(s.p50), p99_ms: fmt(s.p99), max_ms: fmt(s.max), errors,
        serve_cpu_us: us(result.serve_cpu_us_per_request), pg_cpu_us: us(result.postgres_cpu_us_per_request), load: result.load,
      }]));
    }
    await sleep(100);
    await serve.stop();
  } finally {
    await cleanup();
  }
}

/** One POST, answering its status (-1 on a network error): through `fetch`. */
function fetchPost(url: string, headers: Record<string, string>): (body: string) => Promise<number> {
  return async (body) => {
    try {
      const res = await fetch(url, { method: 'POST', headers, body });
      await res.arrayBuffer();
      return res.status;
    } catch {
      return -1;
    }
  };
}

/** One POST, answering its status (-1 on a network error): node:http, one kept-alive connection per client. */
function httpPost(url: string, headers: Record<string, string>, clients: number): (body: string) => Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  return (body) => new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      res.on('error', () => resolve(-1));
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.resume();
    });
    req.on('error', () => resolve(-1));
    req.end(body);
  });
}

