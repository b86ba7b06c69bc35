/**
 * Composition root: config → database (embedded or DATABASE_URL) → migrations → admin bootstrap
 * → scheduler → HTTP. `shipclock serve` runs it all; `shipclock worker` runs the scheduler with
 * only /healthz, /readyz and /metrics on PORT.
 */
import { configureWebhooks } from './providers/webhook.ts';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { buildApi } from './api/app.ts';
import { EventsHub } from './api/events-hub.ts';
import { type Config, ConfigError, loadConfig } from './config.ts';
import { type EmbeddedDatabase, startEmbedded } from './db/embedded.ts';
import { Listener } from './db/listener.ts';
import { migrate } from './db/migrate.ts';
import { createPool, type Pool } from './db/pool.ts';
import { DUE_CHANNEL, EVENTS_CHANNEL } from './db/sql/events.ts';
import { startNotifier } from './notifications/notifier.ts';
import { ReminderRunner } from './notifications/reminders.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { setMetricsPool } from './observability/metrics.ts';
import { secretsOf } from './providers/redact.ts';
import type { Credentials } from './providers/types.ts';
import { GATES_CHANNEL, registerGate } from './scheduler/gates.ts';
import { approvalGate } from './services/approvals.ts';
import { OccurrenceMaterializer } from './scheduler/occurrences.ts';
import { Scheduler } from './scheduler/scheduler.ts';
import { SecretBox } from './secrets/box.ts';
import { AuthService, bootstrapAdmin } from './services/auth.ts';
import { loadCredentials } from './services/credentials.ts';
import { OidcService } from './services/oidc.ts';
import type { TargetResolver } from './services/deployments.ts';
import { freezeGate } from './services/freezes.ts';

export type Role = 'serve' | 'worker';

export interface Shipclock {
  url: string;
  config: Config;
  pool: Pool;
  logger: Logger;
  scheduler: Scheduler;
  workerId: string;
  /** Graceful stop: no new claims, in-flight work finished or handed back, then close. */
  stop(): Promise<void>;
}

async function waitForDatabase(pool: Pool, logger: Logger, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      await pool.query('SELECT 1');
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`the database does not answer: ${(err as Error).message}`, { cause: err });
      if (attempt === 0) logger.warn({ err: (err as Error).message }, 'waiting for the database');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

const NO_SECRETS: readonly string[] = Object.freeze([]);

export function makeTargetResolver(pool: Pool, box: SecretBox): TargetResolver {
  return async (row) => {
    // Nothing to add (no secret, no stored credentials): the row's own target, not a copy per row
    // (a burst holds 50,000 resolved targets from claim to call).
    if (!row.target_secret && typeof row.target.credentials !== 'string') return { target: row.target, secrets: NO_SECRETS };
    const target = { ...row.target };
    const secrets: string[] = [];
    if (row.target_secret) {
      target.secret = box.open(row.target_secret);
      secrets.push(String(target.secret));
    }
    let credentials: Credentials | undefined;
    if (typeof target.credentials === 'string') {
      credentials = await loadCredentials(pool, box, row.team_id, target.credentials);
      for (const [k, v] of Object.entries(credentials)) if (k !== 'provider' && typeof v === 'string') secrets.push(v);
      // The secrets inside a kubeconfig document (its tokens and client keys) too.
      secrets.push(...secretsOf(credentials).filter((v) => !secrets.includes(v)));
    }
    return { target, credentials, secrets };
  };
}

export async function startShipclock(role: Role, env: NodeJS.ProcessEnv = process.env, logger?: Logger): Promise<Shipclock> {
  const config = loadConfig(env);
  const log = logger ?? createLogger(config.logLevel, undefined, config.logFormat);
  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    const dir = path.join(config.dataDir, 'pg');
    log.info({ dir }, 'no DATABASE_URL: starting the embedded PostgreSQL');
    embedded = await startEmbedded(dir, { log: (line) => log.debug({ component: 'postgres' }, line) });
    databaseUrl = embedded.url;
  }
  const pool = createPool(databaseUrl, config.dbPoolSize);
  try {
    await waitForDatabase(pool, log);
    const applied = await migrate(pool);
    if (applied.length) log.info({ applied }, 'database migrated');
  } catch (err) {
    await pool.end().catch(() => {});
    await embedded?.stop();
    throw err;
  }
  const box = SecretBox.load(config.secretKey, config.dataDir);
  if (role === 'serve') {
    const boot = await bootstrapAdmin(pool, config.adminEmail, config.adminPassword);
    if (boot?.generatedPassword) {
      // Printed once, on purpose: the only way in on a fresh install without SHIPCLOCK_ADMIN_PASSWORD.
      log.warn(`first start: sign in as ${boot.email} with the one-time password ${boot.generatedPassword} and change it`);
    } else if (boot) log.info({ email: boot.email }, 'created the first admin user');
  }
  const workerId = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  // A worker serves no event streams: it listens for due work (and fire-gate changes) only, and
  // does not parse every state change of every process (two NOTIFYs per deployment, thousands in a burst).
  const channels = role === 'worker' ? [DUE_CHANNEL, GATES_CHANNEL] : [EVENTS_CHANNEL, DUE_CHANNEL, GATES_CHANNEL];
  const listener = new Listener(databaseUrl, channels, (m) => log.info(m));
  await listener.start();
  const resolveTarget = makeTargetResolver(pool, box);
  configureWebhooks({ connections: config.webhookConnections });
  // Fire gates, asked in this order: a freeze (which holds a row, asked again when released) goes
  // before a missing approval (which ends it skipped). registerGate ignores a second registration.
  registerGate(freezeGate);
  registerGate(approvalGate);
  const scheduler = new Scheduler({
    pool, listener, logger: log.child({ component: 'scheduler' }), workerId,
    prefetchMs: config.prefetchMs, pollIntervalMs: config.pollIntervalMs, leaseSeconds: config.leaseSeconds, warmUpCalls: config.warmUpCalls,
    resolveTarget: (row) => resolveTarget(row),
  });
  const auth = new AuthService(pool, config.tokenTtlSeconds, { limits: config.loginLimits });
  const oidc = config.oidc && new OidcService(config.oidc, {
    pool, box, auth, logger: log, secureCookie: config.publicUrl?.startsWith('https:') === true,
  });
  const api = await buildApi({
    config, pool, box, auth, oidc, hub: new EventsHub(listener), logger: log, resolveTarget, role,
  });
  const address = await api.listen({ port: config.port, host: config.host });
  scheduler.start();
  // Recurring schedules' occurrences become deployment rows ahead of time, in every process.
  const materializer = new OccurrenceMaterializer({
    pool, logger: log.child({ component: 'schedules' }),
    limits: { horizonMs: config.scheduleHorizonSeconds * 1000, maxAhead: config.scheduleMaxAhead, maxMissed: config.scheduleMaxMissed },
  });
  materializer.start();
  const notifier = startNotifier({ pool, logger: log, box });
  // Reminders are timed in every process; one of them queues each (decision 0012).
  const reminders = new ReminderRunner({
    pool, logger: log, box, publicUrl: config.publicUrl, pollIntervalMs: Math.min(config.pollIntervalMs, 1000), onQueued: () => notifier.wake(),
  });
  reminders.start();
  setMetricsPool(pool);
  log.info({ url: address, role, worker_id: workerId }, 'shipclock is running');

  let stopping: Promise<void> | null = null;
  return {
    url: address.replace('0.0.0.0', '127.0.0.1').replace('[::]', '[::1]'),
    config, pool, logger: log, scheduler, workerId,
    stop() {
      stopping ??= (async () => {
        await materializer.stop();
        await scheduler.stop();
        await reminders.stop();
        await notifier.stop();
        await api.close().catch(() => {});
        await listener.stop();
        await pool.end().catch(() => {});
        await embedded?.stop().catch(() => {});
      })();
      return stopping;
    },
  };
}

/** `shipclock serve` / `shipclock worker`: runs until SIGTERM or SIGINT, then stops within 30 s. */
export async function runServer(role: Role): Promise<void> {
  let sc: Shipclock;
  try {
    sc = await startShipclock(role);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`shipclock: ${err.message}`);
      process.exit(2);
    }
    console.error(`shipclock: cannot start: ${(err as Error).message}`);
    process.exit(1);
  }
  const shutdown = (signal: string) => {
    sc.logger.info({ signal }, 'stopping: no new work; finishing or handing back what is in flight');
    setTimeout(() => {
      sc.logger.error('did not stop within 30 s; exiting');
      process.exit(1);
    }, 30_000).unref();
    sc.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

export async function runMigrate(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, undefined, config.logFormat);
  let embedded: EmbeddedDatabase | undefined;
  let url = config.databaseUrl;
  if (!url) {
    embedded = await startEmbedded(path.join(config.dataDir, 'pg'));
    url = embedded.url;
  }
  const pool = createPool(url, 2);
  try {
    const applied = await migrate(pool);
    log.info({ applied }, applied.length ? 'migrations applied' : 'the database is up to date');
  } finally {
    await pool.end();
    await embedded?.stop();
  }
}
