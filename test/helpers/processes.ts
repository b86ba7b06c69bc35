/**
 * Real shipclock processes for behaviour tests (`node bin/shipclock.js serve|worker`), a TCP
 * proxy to put between them and PostgreSQL (to cut the database away and bring it back), and
 * bulk SQL setup for tests that are about firing, not about the API.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import type pg from 'pg';
import { freePort } from '../../src/db/embedded.ts';
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

export async function spawnShipclock(role: 'serve' | 'worker', env: NodeJS.ProcessEnv): Promise<Proc> {
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, role], { env: { LOG_LEVEL: 'info', ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
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
