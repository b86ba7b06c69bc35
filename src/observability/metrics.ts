/**
 * Prometheus metrics (prom-client), served at GET /metrics. One registry per process.
 */
import type pg from 'pg';
import client from 'prom-client';

export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });

export const deploymentsFinished = new client.Counter({
  name: 'shipclock_deployments_finished_total',
  help: 'Deployments that reached a final state, by state.',
  labelNames: ['state'] as const,
  registers: [registry],
});

export const rollbacksFinished = new client.Counter({
  name: 'shipclock_rollbacks_finished_total',
  help: 'Rollbacks that ended, by state (succeeded, failed, not_possible).',
  labelNames: ['state'] as const,
  registers: [registry],
});

export const fireLag = new client.Histogram({
  name: 'shipclock_fire_lag_seconds',
  help: 'Seconds from a deployment\'s scheduled instant to the start of its first attempt.',
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60],
  registers: [registry],
});

export const providerCallDuration = new client.Histogram({
  name: 'shipclock_provider_call_duration_seconds',
  help: 'Duration of provider calls (start/poll/cancel), by provider and outcome.',
  labelNames: ['provider', 'outcome'] as const,
  buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

export const clockSkew = new client.Gauge({
  name: 'shipclock_clock_skew_seconds',
  help: 'This process\'s clock minus the database\'s clock, in seconds.',
  registers: [registry],
});

export const notificationDeliveries = new client.Counter({
  name: 'shipclock_notification_deliveries_total',
  help: 'Notification delivery attempts, by outcome (delivered, retry, failed = given up).',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

/**
 * The database pool the scrape-time gauges below read. Set once at boot by each process
 * (setMetricsPool); until then they report nothing rather than failing the scrape.
 */
let metricsPool: pg.Pool | undefined;

export function setMetricsPool(pool: pg.Pool | undefined): void {
  metricsPool = pool;
}

export const deploymentsDueNextMinute = new client.Gauge({
  name: 'shipclock_deployments_due_next_minute',
  help: 'Scheduled deployments whose instant falls within the next 60 seconds (database clock).',
  registers: [registry],
  async collect() {
    if (!metricsPool) return;
    try {
      // Served by the partial index deployments_scheduled_run_at_idx; bounded so a slow
      // database cannot hang the scrape.
      const query = metricsPool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM deployments
          WHERE state = 'scheduled' AND run_at >= now() AND run_at < now() + interval '1 minute'`,
      );
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), 2000);
      });
      query.catch(() => {}); // a late failure after the timeout must not go unhandled
      try {
        const { rows } = await Promise.race([query, timeout]);
        this.set(rows[0]?.n ?? 0);
      } finally {
        clearTimeout(timer);
      }
    } catch {
      // Database unreachable: keep the last value; /readyz reports the outage.
    }
  },
});

export const dbPoolConnections = new client.Gauge({
  name: 'shipclock_db_pool_connections',
  help: 'This process\'s database pool: connections by state (total, idle, waiting = queued requests).',
  labelNames: ['state'] as const,
  registers: [registry],
  collect() {
    if (!metricsPool) return;
    this.set({ state: 'total' }, metricsPool.totalCount);
    this.set({ state: 'idle' }, metricsPool.idleCount);
    this.set({ state: 'waiting' }, metricsPool.waitingCount);
  },
});

export const dbPoolMax = new client.Gauge({
  name: 'shipclock_db_pool_max_connections',
  help: 'Configured size of this process\'s database pool (SHIPCLOCK_DB_POOL_SIZE).',
  registers: [registry],
  collect() {
    if (!metricsPool) return;
    this.set(metricsPool.options.max ?? 10);
  },
});
