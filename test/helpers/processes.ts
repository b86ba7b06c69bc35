/**
 * Real shipclock processes for behaviour tests (`node bin/shipclock.js serve|worker`), a TCP
 * proxy to put between them and PostgreSQL (to cut the database away and bring it back), an
 * HTTP proxy to put between them and a provider's fake (to keep one answer from a process that
 * is then killed), and bulk SQL setup for tests that are about firing, not about the API.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type pg from 'pg';
import { freePort } from '../../src/db/embedded.ts';
import { call } from './accounts.ts';
import { eventually } from './server.ts';

const BIN = path.resolve('bin/shipclock.js');

export interface Proc {
  child: ChildProcess;
  url: string;
  pid: number;
  output(): string;
  exited: Promise<number | null>;
  alive(): boolean;
}

/** `children`: where to note the process as soon as it is spawned, for the file's after() to kill it even if it never became ready. */
export async function spawnShipclock(role: 'serve' | 'worker', env: NodeJS.ProcessEnv, children?: ChildProcess[]): Promise<Proc> {
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, role], { env: { LOG_LEVEL: 'info', ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  children?.push(child);
  let out = '';
  child.stdout!.on('data', (c) => { out += c; });
  child.stderr!.on('data', (c) => { out += c; });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const url = `http://127.0.0.1:${port}`;
  await eventually(async () => {
    if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${out}`);
    return (await fetch(`${url}/readyz`)).ok;
  }, 60_000, `${role} to be ready`);
  return { child, url, pid: child.pid!, output: () => out, exited, alive: () => child.exitCode === null && child.signalCode === null };
}

const FINAL_STATES = ['succeeded', 'failed', 'canceled', 'skipped', 'missed'];

/** The deployment's row (`columns`) once it is in a final state, polled in the database. */
export async function endedRow(pool: pg.Pool, id: string, timeoutMs: number, columns = 'state, error, log, provider_ref') {
  return eventually(async () => {
    const r = (await pool.query(`SELECT ${columns} FROM deployments WHERE id = $1`, [id])).rows[0];
    return FINAL_STATES.includes(r.state) ? r : null;
  }, timeoutMs, 'the deployment to end');
}

/** SIGKILL, then waits for the exit. */
export async function kill9(p: Proc): Promise<void> {
  if (p.alive()) p.child.kill('SIGKILL');
  await p.exited;
}

/** The API of a process started with testEnv(), as its first admin: calls with the admin's token. */
export async function adminApi(p: Proc, env: NodeJS.ProcessEnv) {
  const login = await call(p.url, 'POST', '/v1/auth/login', { body: { email: env.SHIPCLOCK_ADMIN_EMAIL, password: env.SHIPCLOCK_ADMIN_PASSWORD } });
  if (login.status !== 200) throw new Error(`login failed: ${login.status} ${login.text}`);
  const token = login.body.access_token as string;
  return (method: string, path: string, body?: unknown) => call(p.url, method, path, { body, token });
}

export interface HoldingProxy {
  url: string;
  /** Resolves when the first call `hold` picked has been forwarded (it took effect upstream) and its answer kept. */
  held: Promise<void>;
  /** Answers every later call, the picked ones included. */
  stopHolding(): void;
  close(): Promise<void>;
}

/**
 * An HTTP proxy to `upstream` (a provider's fake) that forwards every call but keeps the answer
 * of those `hold` picks from the caller, for ever: the call took effect at the provider and the
 * process that made it dies waiting, as in a crash mid-call. `hold` sees each call once its
 * answer came back from upstream, in order.
 */
export async function startHoldingProxy(upstream: string, hold: (req: http.IncomingMessage) => boolean): Promise<HoldingProxy> {
  let holding = true;
  let held!: () => void;
  const heldCall = new Promise<void>((r) => { held = r; });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const answer = await fetch(upstream + (req.url ?? '/'), {
        method: req.method,
        body: req.method === 'GET' || req.method === 'HEAD' ? undefined : Buffer.concat(chunks),
        headers: Object.fromEntries(Object.entries(req.headers).filter(([k]) => !['host', 'connection', 'content-length'].includes(k)).map(([k, v]) => [k, String(v)])),
      });
      const body = Buffer.from(await answer.arrayBuffer());
      if (holding && hold(req)) {
        held();
        return; // never answered
      }
      res.writeHead(answer.status, Object.fromEntries([...answer.headers].filter(([k]) => !['content-length', 'transfer-encoding', 'connection', 'content-encoding'].includes(k))));
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    held: heldCall,
    stopHolding: () => { holding = false; },
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

export interface TcpProxy {
  port: number;
  /** Destroys every connection and refuses new ones until restore(). */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

/** A TCP proxy to `target` on loopback: lets a test take the database away from a process and bring it back. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let down = false;
  const server = net.createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => { client.destroy(); upstream.destroy(); });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
    },
    restore() { down = false; },
    close: () => new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

/** The same database URL, through the proxy. */
export function viaProxy(url: string, proxy: TcpProxy): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.toString();
}

/** Waits until the admin user exists (the serve process created it), then returns the team id. */
export async function teamId(pool: pg.Pool): Promise<string> {
  return eventually(async () => (await pool.query<{ team_id: string }>('SELECT team_id FROM users LIMIT 1')).rows[0]?.team_id, 30_000, 'the first team');
}

/**
 * Bulk setup straight in SQL: `n` webhook apps (one per deployment) and one deployment each due
 * at `runAt` (ms), then a NOTIFY as the API would send. Returns the deployment ids.
 */
export async function insertWebhookDeployments(
  pool: pg.Pool, team: string, url: string, n: number, runAt: number, opts: { expiresAfterSeconds?: number; prefix?: string } = {},
): Promise<string[]> {
  const r = await pool.query<{ id: string }>(
    `WITH a AS (
       INSERT INTO apps (team_id, name, target, retry_max_attempts, retry_backoff_seconds)
       SELECT $1, $5 || g, jsonb_build_object('type', 'webhook', 'url', $2::text), 3, 1 FROM generate_series(1, $3::int) g
       RETURNING id
     )
     INSERT INTO deployments (team_id, app_id, run_at, timezone, local_year, local_month, local_day, local_hour, local_minute,
         local_second, utc_offset, expires_after_seconds, expires_at, due_at)
     SELECT $1, a.id, to_timestamp($4::float8 / 1000), 'UTC', 2026, 1, 1, 0, 0, 0, '+00:00', $6::int,
            to_timestamp($4::float8 / 1000) + $6::int * interval '1 second', to_timestamp($4::float8 / 1000)
       FROM a
     RETURNING id`,
    [team, url, n, runAt, opts.prefix ?? `bulk-${runAt}-`, opts.expiresAfterSeconds ?? 3600],
  );
  await pool.query(`SELECT pg_notify('shipclock_due', '')`);
  return r.rows.map((x) => x.id);
}
