/**
 * An in-process shipclock (serve role) on a fresh database, with an admin (owner of the first
 * team). Tests talk to it over real HTTP.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger, type Logger } from '../../src/observability/logger.ts';
import { type Role, type Shipclock, startShipclock } from '../../src/server.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';

export interface TestServer {
  url: string;
  db: TestDatabase;
  sc: Shipclock;
  adminEmail: string;
  adminPassword: string;
  adminToken: string;
  api(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: any; headers: Headers }>;
  login(email: string, password: string): Promise<string>;
  /** Starts another process-like instance on the same database (same secret key). */
  another(role?: Role, env?: NodeJS.ProcessEnv): Promise<Shipclock>;
  stop(): Promise<void>;
}

export const TEST_SECRET_KEY = Buffer.alloc(32, 7).toString('base64');

export function testEnv(dbUrl: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    DATABASE_URL: dbUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    SHIPCLOCK_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'shipclock-data-')),
    SHIPCLOCK_SECRET_KEY: TEST_SECRET_KEY,
    SHIPCLOCK_ADMIN_EMAIL: 'admin@example.com',
    SHIPCLOCK_ADMIN_PASSWORD: 'admin-password-1',
    SHIPCLOCK_POLL_INTERVAL_MS: '500',
    SHIPCLOCK_LEASE_SECONDS: '6',
    // Warm-up is for burst speed (benchmarks); tests need only its path exercised.
    SHIPCLOCK_WARM_UP_CALLS: '100',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...extra,
  };
}

/** `logger`: a logger of the test's own (e.g. one writing to a capturing stream, to check what is logged). */
export async function startTestServer(opts: { env?: NodeJS.ProcessEnv; db?: TestDatabase; role?: Role; logger?: Logger } = {}): Promise<TestServer> {
  const db = opts.db ?? (await createTestDatabase());
  const env = testEnv(db.url, opts.env);
  const logger = opts.logger ?? createLogger(env.LOG_LEVEL!);
  const sc = await startShipclock(opts.role ?? 'serve', env, logger);
  const extra: Shipclock[] = [];
  const api = async (method: string, p: string, body?: unknown, token?: string) => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(sc.url + p, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
    const text = await res.text();
    let parsed: unknown = text;
    try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    return { status: res.status, body: parsed as any, headers: res.headers };
  };
  const login = async (email: string, password: string) => {
    const r = await api('POST', '/v1/auth/login', { email, password });
    if (r.status !== 200) throw new Error(`login failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.access_token as string;
  };
  const adminToken = await login(env.SHIPCLOCK_ADMIN_EMAIL!, env.SHIPCLOCK_ADMIN_PASSWORD!);
  return {
    url: sc.url, db, sc, adminEmail: env.SHIPCLOCK_ADMIN_EMAIL!, adminPassword: env.SHIPCLOCK_ADMIN_PASSWORD!, adminToken, api, login,
    async another(role = 'worker', more = {}) {
      const s = await startShipclock(role, { ...env, ...more, SHIPCLOCK_DATA_DIR: env.SHIPCLOCK_DATA_DIR }, logger);
      extra.push(s);
      return s;
    },
    async stop() {
      for (const s of extra) await s.stop().catch(() => {});
      await sc.stop();
      if (!opts.db) await db.drop();
    },
  };
}

/** A time `ms` from now as the body fields of POST /v1/scheduled_deployments, in UTC (whole seconds, rounded up). */
export function utcFields(ms: number): { year: number; month: number; day: number; hour: number; minute: number; second: number; timezone: string } {
  const d = new Date(Math.ceil((Date.now() + ms) / 1000) * 1000);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(), timezone: 'UTC' };
}

/** Polls until `fn` returns a truthy value or `timeoutMs` passes. */
export async function eventually<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
