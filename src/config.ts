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
  /** SHIPCLOCK_WEBHOOK_CONNECTIONS: keep-alive connections per webhook origin per process. */
  webhookConnections: number;
  digitaloceanApiUrl: string;
  /** LOG_FORMAT: readable lines ('pretty') or one JSON object a line; unset: pretty on a terminal, JSON otherwise. */
  logFormat: 'json' | 'pretty';
  /** SHIPCLOCK_PUBLIC_URL: the origin people and identity providers reach this server at, without a trailing slash. */
  publicUrl: string | undefined;
  /** Failed sign-ins allowed per email and per client address within the window (shared by every process). */
  loginLimits: LoginLimits;
  /** Single sign-on; undefined when SHIPCLOCK_OIDC_ISSUER is unset. */
  oidc: OidcConfig | undefined;
  /** Recurring schedules: occurrences within this many seconds ahead become deployment rows. */
  scheduleHorizonSeconds: number;
  /** Recurring schedules: at most this many future occurrence rows per schedule. */
  scheduleMaxAhead: number;
  /** Recurring schedules: missed occurrences recorded one by one per catch-up after downtime. */
  scheduleMaxMissed: number;
}

export interface LoginLimits {
  perEmail: number;
  perAddress: number;
  windowSeconds: number;
}

/** One entry of SHIPCLOCK_OIDC_GROUPS: members of `group` ("*": anyone) join `team` (a name or id) with `role`. */
export interface OidcGroupRule {
  group: string;
  team: string;
  role: 'owner' | 'deployer' | 'viewer';
}

export interface OidcConfig {
  issuer: string;
  clientId: string;
  /** Unset: a public client, authenticated by PKCE alone. */
  clientSecret: string | undefined;
  scopes: string;
  /** The claim holding the user's groups (an array of strings, or one string). */
  groupsClaim: string;
  /** In order: the first rule matching one of the user's groups decides team and role. */
  groups: OidcGroupRule[];
  /** `${publicUrl}/v1/auth/oidc/callback` */
  redirectUri: string;
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

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** An absolute http(s) URL with nothing after the host but an optional "/": an origin. */
function publicUrl(env: NodeJS.ProcessEnv): string | undefined {
  const raw = env.SHIPCLOCK_PUBLIC_URL;
  if (!raw) return undefined;
  let u: URL | undefined;
  try {
    u = new URL(raw);
  } catch { /* reported below */ }
  if (!u || !/^https?:$/.test(u.protocol) || u.pathname !== '/' || u.search || u.hash || u.username || u.password || raw.includes('?') || raw.includes('#')) {
    throw new ConfigError(`SHIPCLOCK_PUBLIC_URL must be an absolute http(s) URL without a path, query or fragment, such as https://shipclock.example.com, got "${raw}"`);
  }
  return u.origin;
}

function oidcConfig(env: NodeJS.ProcessEnv, publicUrlValue: string | undefined): OidcConfig | undefined {
  const issuer = env.SHIPCLOCK_OIDC_ISSUER;
  if (!issuer) {
    for (const name of ['SHIPCLOCK_OIDC_CLIENT_ID', 'SHIPCLOCK_OIDC_CLIENT_SECRET', 'SHIPCLOCK_OIDC_GROUPS']) {
      if (env[name]) throw new ConfigError(`${name} is set but SHIPCLOCK_OIDC_ISSUER is not: set the issuer to turn single sign-on on`);
    }
    return undefined;
  }
  let u: URL | undefined;
  try {
    u = new URL(issuer);
  } catch { /* reported below */ }
  // Plain http only to this machine (a provider in a test or on localhost): tokens travel there.
  if (!u || !(u.protocol === 'https:' || (u.protocol === 'http:' && LOOPBACK.has(u.hostname)))) {
    throw new ConfigError(`SHIPCLOCK_OIDC_ISSUER must be an https URL (http only for localhost), got "${issuer}"`);
  }
  const clientId = env.SHIPCLOCK_OIDC_CLIENT_ID;
  if (!clientId) throw new ConfigError('SHIPCLOCK_OIDC_CLIENT_ID is required with SHIPCLOCK_OIDC_ISSUER');
  if (!publicUrlValue) throw new ConfigError('SHIPCLOCK_PUBLIC_URL is required with SHIPCLOCK_OIDC_ISSUER: the identity provider sends people back to <SHIPCLOCK_PUBLIC_URL>/v1/auth/oidc/callback');
  const scopes = (env.SHIPCLOCK_OIDC_SCOPES || 'openid email profile').trim().split(/\s+/);
  if (!scopes.includes('openid')) throw new ConfigError(`SHIPCLOCK_OIDC_SCOPES must include openid, got "${env.SHIPCLOCK_OIDC_SCOPES}"`);
  return {
    issuer,
    clientId,
    clientSecret: env.SHIPCLOCK_OIDC_CLIENT_SECRET || undefined,
    scopes: scopes.join(' '),
    groupsClaim: env.SHIPCLOCK_OIDC_GROUPS_CLAIM || 'groups',
    groups: oidcGroups(env.SHIPCLOCK_OIDC_GROUPS),
    redirectUri: `${publicUrlValue}/v1/auth/oidc/callback`,
  };
}

function oidcGroups(raw: string | undefined): OidcGroupRule[] {
  const example = `[{"group":"platform","team":"default","role":"owner"}]`;
  if (!raw) throw new ConfigError(`SHIPCLOCK_OIDC_GROUPS is required with SHIPCLOCK_OIDC_ISSUER: a JSON array of {group, team, role}, e.g. ${example}`);
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new ConfigError(`SHIPCLOCK_OIDC_GROUPS is not valid JSON; expected an array of {group, team, role}, e.g. ${example}`);
  }
  if (!Array.isArray(v) || v.length === 0) throw new ConfigError(`SHIPCLOCK_OIDC_GROUPS must be a non-empty JSON array of {group, team, role}, e.g. ${example}`);
  return v.map((r: unknown, i) => {
    const o = r as Record<string, unknown>;
    const where = `SHIPCLOCK_OIDC_GROUPS[${i}]`;
    if (!o || typeof o !== 'object' || Array.isArray(o)) throw new ConfigError(`${where} must be an object {group, team, role}`);
    const extra = Object.keys(o).filter((k) => !['group', 'team', 'role'].includes(k));
    if (extra.length) throw new ConfigError(`${where} has unknown field ${extra[0]}; expected {group, team, role}`);
    if (typeof o.group !== 'string' || !o.group) throw new ConfigError(`${where}.group must be a non-empty string (a group name, or "*" for anyone)`);
    if (typeof o.team !== 'string' || !o.team) throw new ConfigError(`${where}.team must be a non-empty string (a team name or id)`);
    if (o.role !== 'owner' && o.role !== 'deployer' && o.role !== 'viewer') throw new ConfigError(`${where}.role must be owner, deployer or viewer, got ${JSON.stringify(o.role)}`);
    return { group: o.group, team: o.team, role: o.role };
  });
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
  const logFormat = env.LOG_FORMAT || (process.stdout.isTTY ? 'pretty' : 'json');
  if (logFormat !== 'json' && logFormat !== 'pretty') throw new ConfigError(`LOG_FORMAT must be json or pretty, got "${logFormat}"`);
  const pub = publicUrl(env);
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
    webhookConnections: int(env, 'SHIPCLOCK_WEBHOOK_CONNECTIONS', 128, 1, 4096),
    digitaloceanApiUrl: doUrl.replace(/\/+$/, ''),
    logFormat,
    publicUrl: pub,
    loginLimits: {
      perEmail: int(env, 'SHIPCLOCK_LOGIN_MAX_FAILURES_PER_EMAIL', 10, 1, 10_000),
      perAddress: int(env, 'SHIPCLOCK_LOGIN_MAX_FAILURES_PER_ADDRESS', 100, 1, 100_000),
      windowSeconds: int(env, 'SHIPCLOCK_LOGIN_FAILURE_WINDOW_SECONDS', 900, 1, 86_400),
    },
    oidc: oidcConfig(env, pub),
    scheduleHorizonSeconds: int(env, 'SHIPCLOCK_SCHEDULE_HORIZON_SECONDS', 86_400, 60, 30 * 86_400),
    scheduleMaxAhead: int(env, 'SHIPCLOCK_SCHEDULE_MAX_AHEAD', 100, 1, 1000),
    scheduleMaxMissed: int(env, 'SHIPCLOCK_SCHEDULE_MAX_MISSED', 100, 1, 10_000),
  };
}
