/**
 * Shared pieces of the benchmarks: a throwaway database on the local server, shipclock as real
 * processes (`node bin/shipclock.js serve|worker`), the receiver and floor processes, an API
 * client, percentiles. Every process and database a benchmark starts is registered here and
 * removed on exit, also on Ctrl-C.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort } from '../src/db/embedded.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = path.join(ROOT, 'bin/shipclock.js');
export const DEFAULT_DATABASE_URL = 'postgres://root@127.0.0.1:5432/postgres';

const cleanups: Array<() => Promise<void> | void> = [];
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.unshift(fn);
}
export async function cleanup(): Promise<void> {
  for (const fn of cleanups.splice(0)) await Promise.resolve().then(fn).catch(() => {});
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => void cleanup().finally(() => process.exit(130)));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const log = (msg: string) => process.stderr.write(`# ${msg}\n`);

/** A fresh database on the server named by `adminUrl` (a database the user may CREATE DATABASE from); dropped at cleanup. */
export async function createBenchDatabase(adminUrl: string): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `shipclock_bench_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  };
  onCleanup(drop);
  return { url: u.toString(), name, drop };
}

export const ADMIN = { email: 'bench@example.com', password: 'bench-password-1' };

export function shipclockEnv(databaseUrl: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    DATABASE_URL: databaseUrl,
    HOST: '127.0.0.1',
    SHIPCLOCK_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'shipclock-bench-')),
    SHIPCLOCK_SECRET_KEY: Buffer.alloc(32, 9).toString('base64'),
    SHIPCLOCK_ADMIN_EMAIL: ADMIN.email,
    SHIPCLOCK_ADMIN_PASSWORD: ADMIN.password,
    SHIPCLOCK_TOKEN_TTL_SECONDS: '86400',
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
    // Any SHIPCLOCK_* setting in the benchmark's own environment reaches shipclock (e.g. SHIPCLOCK_WARM_UP_CALLS).
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('SHIPCLOCK_'))),
    ...extra,
  };
}

export interface Proc {
  child: ChildProcess;
  url: string;
  pid: number;
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

function track(child: ChildProcess): { exited: Promise<number | null>; output: () => string } {
  let out = '';
  child.stdout?.on('data', (c) => { out = (out + c).slice(-200_000); });
  child.stderr?.on('data', (c) => { out = (out + c).slice(-200_000); });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { exited, output: () => out };
}

function stopper(child: ChildProcess, exited: Promise<number | null>) {
  return async (graceMs = 30_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const code = await exited;
    clearTimeout(t);
    return code;
  };
}

export async function spawnShipclock(role: 'serve' | 'worker', env: NodeJS.ProcessEnv): Promise<Proc> {
  const port = await freePort();
  // BENCH_NODE_ARGS: extra node flags for the shipclock processes (e.g. --cpu-prof).
  const nodeArgs = process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : [];
  const child = spawn(process.execPath, [...nodeArgs, BIN, role], { env: { ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  const { exited, output } = track(child);
  // BENCH_LOG_DIR: keep each process's log (with BENCH_LOG_LEVEL=debug: claims and dispatch timings).
  if (process.env.BENCH_LOG_DIR) {
    const file = fs.createWriteStream(path.join(process.env.BENCH_LOG_DIR, `${role}-${child.pid}.log`));
    child.stdout?.pipe(file);
    child.stderr?.pipe(file);
  }
  const stop = stopper(child, exited);
  onCleanup(() => stop(5000).then(() => {}));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`shipclock ${role} exited ${child.exitCode}: ${output().slice(-2000)}`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`shipclock ${role} did not answer /readyz within 90 s: ${output().slice(-2000)}`);
    await sleep(100);
  }
  return { child, url, pid: child.pid!, output, stop };
}

export interface Receiver {
  url: string;
  pid: number;
  /** [id, run_at ms, arrival ms, idempotency-key] per request since the last call. */
  results(): Promise<Array<[string | null, number, number, string | null]>>;
  stop(): Promise<number | null>;
}

export async function spawnReceiver(): Promise<Receiver> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bench/receiver.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const { exited } = track(child);
  const stop = stopper(child, exited);
  onCleanup(() => stop(2000).then(() => {}));
  const port = await new Promise<number>((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout! });
    rl.once('line', (l) => resolve(Number(l)));
    child.once('exit', () => reject(new Error('the receiver exited')));
  });
  const base = `http://127.0.0.1:${port}`;
  return {
    url: `${base}/hook`,
    pid: child.pid!,
    results: async () => (await fetch(`${base}/results`)).json() as Promise<Array<[string | null, number, number, string | null]>>,
    stop,
  };
}

/** Runs the floor process (bench/floor.mjs): N POSTs at `instant` to `url`, no scheduler. */
/**
 * The floors: `pooled` (bench/floor-pooled.mjs, the outside checks' floor: 128 warm keep-alive
 * connections, what fire lag is judged against) and `per-connection` (bench/floor.mjs: node:http
 * opening a connection per request in flight at the instant, the floor used before issue 14).
 */
export type FloorKind = 'pooled' | 'per-connection';

export async function runFloor(url: string, n: number, instant: number, prefix: string, kind: FloorKind = 'pooled'): Promise<{ sent: number; ok: number; errors: number }> {
  const program = kind === 'pooled' ? 'bench/floor-pooled.mjs' : 'bench/floor.mjs';
  const child = spawn(process.execPath, [path.join(ROOT, program), url, String(n), String(instant), prefix], { stdio: ['ignore', 'pipe', 'inherit'] });
  const { exited, output } = track(child);
  onCleanup(() => { child.kill('SIGKILL'); });
  const code = await exited;
  if (code !== 0) throw new Error(`the floor process exited ${code}: ${output()}`);
  return JSON.parse(output().trim().split('\n').pop()!);
}

/**
 * Sends `n` POSTs (the floor's shape) to the receiver's `/warm`, which answers and does not
 * record them, so that the first measured burst does not meet a receiver whose code V8 has not
 * compiled yet. Without it the first round of every run was measured against a cold receiver,
 * while the floor, which runs after it, always met a warm one.
 */
export async function warmReceiver(receiverUrl: string, n: number): Promise<void> {
  await runFloor(new URL('/warm', receiverUrl).toString(), n, Date.now() + 1000, 'warm-receiver', 'per-connection');
}

export class Api {
  token = '';
  constructor(readonly url: string) {}
  async call(method: string, p: string, body?: unknown): Promise<{ status: number; body: any }> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(this.url + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }
  async login(email = ADMIN.email, password = ADMIN.password): Promise<void> {
    const r = await this.call('POST', '/v1/auth/login', { email, password });
    if (r.status !== 200) throw new Error(`login: ${r.status} ${JSON.stringify(r.body)}`);
    this.token = r.body.access_token;
  }
  async ok(method: string, p: string, body?: unknown, expect = [200, 201]): Promise<any> {
    const r = await this.call(method, p, body);
    if (!expect.includes(r.status)) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }
}

/** Runs `fn` over `items` with at most `concurrency` at a time, in order of items. */
export async function mapLimit<T, R>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

/** Nearest-rank percentile of sorted values. */
export function pct(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function summary(values: number[]): { n: number; p50: number; p99: number; max: number; min: number } {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, min: s[0] ?? NaN, p50: pct(s, 50), p99: pct(s, 99), max: s[s.length - 1] ?? NaN };
}

/** UTC fields of an instant, as POST /v1/scheduled_deployments takes them. */
export function utcFields(ms: number) {
  const d = new Date(ms);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(), timezone: 'UTC' };
}

/** Resident set size of a process, in MB (Linux). */
export function rssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

export const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '—');

export function table(rows: Array<Record<string, string | number>>): string {
  const cols = Object.keys(rows[0] ?? {});
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padStart(w[i])).join('  ');
  return [line(cols), line(w.map((x) => '-'.repeat(x))), ...rows.map((r) => line(cols.map((c) => String(r[c]))))].join('\n');
}

/** CPU time (user + system) a process has used so far, in ms (Linux /proc; 0 elsewhere or once it is gone). */
export function cpuMs(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // utime and stime are fields 14 and 15 of stat (11 and 12 after the command), in clock ticks of 10 ms.
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}
