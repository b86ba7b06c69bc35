/**
 * Every setting shipclock reads from the environment, validated once at boot. A wrong value
 * stops the process with a message naming the variable. Defaults are listed in README.md.
 */
import path from 'node:path';

export interface Config {
  port: number;
  host: string;
  /** Unset: run the embedded PostgreSQL under dataDir. */
  databaseUrl: string | undefined;
  dataDir: string;
  dbPoolSize: number;
  adminEmail: string | undefined;
  adminPassword: string | undefined;
  /** 32-byte key for AES-256-GCM, from SHIPCLOCK_SECRET_KEY (base64 or hex); unset: generated into dataDir. */
  secretKey: string | undefined;
  tokenTtlSeconds: number;
  logLevel: string;
  /** Safety-net poll of the database for due work (LISTEN/NOTIFY does the fast path). */
  pollIntervalMs: number;
  /** How long before an instant a process claims the deployments due then. */
  prefetchMs: number;
  /** How long a claimed deployment stays owned without a heartbeat before another process takes it. */
  leaseSeconds: number;
  warmUpCalls: number;
  digitaloceanApiUrl: string;
  /** Recurring schedules: occurrences within this many seconds ahead become deployment rows. */
  scheduleHorizonSeconds: number;
  /** Recurring schedules: at most this many future occurrence rows per schedule. */
  scheduleMaxAhead: number;
  /** Recurring schedules: missed occurrences recorded one by one per catch-up after downtime. */
  scheduleMaxMissed: number;
}

export class ConfigError extends Error {}

function int(env: NodeJS.ProcessEnv, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const logLevel = env.LOG_LEVEL || 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "${logLevel}"`);
  }
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL must start with postgres:// or postgresql://');
  }
  const doUrl = env.SHIPCLOCK_DIGITALOCEAN_API_URL || 'https://api.digitalocean.com';
  if (!/^https?:\/\//.test(doUrl)) throw new ConfigError('SHIPCLOCK_DIGITALOCEAN_API_URL must be an http(s) URL');
  return {
    port: int(env, 'PORT', 8080, 0, 65535),
    host: env.HOST || '127.0.0.1',
    databaseUrl,
    dataDir: path.resolve(env.SHIPCLOCK_DATA_DIR || '.shipclock'),
    dbPoolSize: int(env, 'SHIPCLOCK_DB_POOL_SIZE', 10, 2, 200),
    adminEmail: env.SHIPCLOCK_ADMIN_EMAIL || undefined,
    adminPassword: env.SHIPCLOCK_ADMIN_PASSWORD || undefined,
    secretKey: env.SHIPCLOCK_SECRET_KEY || undefined,
    tokenTtlSeconds: int(env, 'SHIPCLOCK_TOKEN_TTL_SECONDS', 12 * 3600, 60, 30 * 24 * 3600),
    logLevel,
    pollIntervalMs: int(env, 'SHIPCLOCK_POLL_INTERVAL_MS', 1000, 50, 60_000),
    prefetchMs: int(env, 'SHIPCLOCK_PREFETCH_MS', 1500, 0, 30_000),
    leaseSeconds: int(env, 'SHIPCLOCK_LEASE_SECONDS', 30, 5, 3600),
    warmUpCalls: int(env, 'SHIPCLOCK_WARM_UP_CALLS', 2000, 0, 10_000),
    digitaloceanApiUrl: doUrl.replace(/\/+$/, ''),
    scheduleHorizonSeconds: int(env, 'SHIPCLOCK_SCHEDULE_HORIZON_SECONDS', 86_400, 60, 30 * 86_400),
    scheduleMaxAhead: int(env, 'SHIPCLOCK_SCHEDULE_MAX_AHEAD', 100, 1, 1000),
    scheduleMaxMissed: int(env, 'SHIPCLOCK_SCHEDULE_MAX_MISSED', 100, 1, 10_000),
  };
}
