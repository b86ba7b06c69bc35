/**
 * Logs redact secrets; metrics expose the names the operations docs promise, including the
 * scrape-time gauges read from the database.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { createLogger, deploymentLogger } from '../src/observability/logger.ts';
import { registry, setMetricsPool } from '../src/observability/metrics.ts';
import { createPool } from '../src/db/pool.ts';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, logger: createLogger('info', stream) };
}

test('log lines never contain passwords, tokens, secret keys or authorization headers', () => {
  const { lines, logger } = capture();
  const secrets = {
    password: 'hunter2-pass', token: 'do-token-123', secret_access_key: 'wJalrXUtnFEMI-key', authorization: 'Bearer eyJ-abc',
    session_token: 'sess-tok-9', secret: 'webhook-secret-7', access_token: 'jwt-access-1',
  };
  logger.info(secrets, 'top level');
  logger.info({ body: { ...secrets }, req: { headers: { authorization: 'Bearer eyJ-abc', cookie: 'sid=1' } } }, 'nested');
  logger.info({ request: { body: { target: { type: 'webhook', secret: 'webhook-secret-7' }, credentials: { secret_access_key: 'wJalrXUtnFEMI-key' } } } }, 'deep');
  logger.child({ user: { password: 'hunter2-pass' } }).warn('child bindings');
  assert.equal(lines.length, 4);
  const all = lines.join('\n');
  for (const value of [...Object.values(secrets), 'sid=1']) assert.ok(!all.includes(value), `"${value}" leaked:\n${all}`);
  assert.ok(all.includes('[redacted]'));
  const first = JSON.parse(lines[0]);
  assert.equal(first.msg, 'top level');
  assert.equal(first.level, 30);
  assert.equal(first.service, 'shipclock');
});

test('deployment log lines carry deployment_id, app and team', () => {
  const { lines, logger } = capture();
  deploymentLogger(logger, { deploymentId: 'd-1', app: 'api', team: 't-1' }).info('started');
  const line = JSON.parse(lines[0]);
  assert.deepEqual([line.deployment_id, line.app, line.team, line.msg], ['d-1', 'api', 't-1', 'started']);
});

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  setMetricsPool(undefined);
  await db.drop();
});

test('metrics: deployments due in the next minute, pool use, process and scheduler metrics', async () => {
  const team = (await db.pool.query(`INSERT INTO teams (name) VALUES ('m') RETURNING id`)).rows[0].id;
  const app = (await db.pool.query(`INSERT INTO apps (team_id, name, target) VALUES ($1, 'api', '{}') RETURNING id`, [team])).rows[0].id;
  const insert = (runAt: string, state = 'scheduled') => db.pool.query(
    `INSERT INTO deployments (team_id, app_id, state, run_at, timezone, local_year, local_month, local_day, local_hour, local_minute, local_second,
                              utc_offset, expires_after_seconds, expires_at)
     VALUES ($1, $2, $3, ${runAt}, 'UTC', 2030, 1, 1, 0, 0, 0, '+00:00', 3600, now() + interval '1 day')`,
    [team, app, state],
  );
  await insert(`now() + interval '10 seconds'`);
  await insert(`now() + interval '50 seconds'`);
  await insert(`now() + interval '20 seconds'`, 'canceled');
  await insert(`now() + interval '5 minutes'`);
  await insert(`now() - interval '5 seconds'`);

  setMetricsPool(db.pool);
  const text = await registry.metrics();
  assert.match(text, /^shipclock_deployments_due_next_minute 2$/m);
  assert.match(text, /^shipclock_db_pool_connections\{state="total"\} \d+$/m);
  assert.match(text, /^shipclock_db_pool_connections\{state="idle"\} \d+$/m);
  assert.match(text, /^shipclock_db_pool_connections\{state="waiting"\} \d+$/m);
  assert.match(text, /^shipclock_db_pool_max_connections 10$/m);
  for (const name of [
    'shipclock_deployments_finished_total', 'shipclock_fire_lag_seconds', 'shipclock_provider_call_duration_seconds',
    'shipclock_clock_skew_seconds', 'shipclock_notification_deliveries_total', 'process_cpu_seconds_total', 'nodejs_eventloop_lag_seconds',
  ]) {
    assert.ok(text.includes(`# TYPE ${name} `), `${name} missing`);
  }
});

test('a scrape does not fail or hang while the database is unreachable', async () => {
  const dead = createPool('postgres://root@127.0.0.1:1/none', 2);
  setMetricsPool(dead);
  try {
    const started = Date.now();
    const text = await registry.metrics();
    assert.ok(Date.now() - started < 5000);
    assert.match(text, /shipclock_db_pool_connections/);
  } finally {
    setMetricsPool(undefined);
    await dead.end().catch(() => {});
  }
});

test('API: /metrics serves the metric names; /readyz fails while the database is unreachable', async () => {
  const { startTestServer } = await import('./helpers/server.ts');
  const server = await startTestServer();
  try {
    const res = await fetch(`${server.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    for (const name of ['shipclock_deployments_due_next_minute', 'shipclock_db_pool_connections', 'shipclock_fire_lag_seconds', 'process_resident_memory_bytes']) {
      assert.ok(text.includes(name), `${name} missing`);
    }
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
  } finally {
    await server.stop();
  }

  // The same API with a pool whose database does not answer (a closed port).
  const { buildApi } = await import('../src/api/app.ts');
  const { loadConfig } = await import('../src/config.ts');
  const { SecretBox } = await import('../src/secrets/box.ts');
  const pool = createPool('postgres://root@127.0.0.1:1/none', 2);
  const api = await buildApi({
    config: loadConfig({}), pool, box: SecretBox.fromKey(Buffer.alloc(32, 1)), logger: createLogger('silent'), role: 'worker',
    auth: undefined as never, hub: undefined as never, resolveTarget: undefined as never,
  });
  try {
    const ready = await api.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 503);
    assert.ok(!ready.body.includes('ECONNREFUSED'), 'no internals in the answer');
    assert.equal((await api.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  } finally {
    await api.close();
    await pool.end().catch(() => {});
  }
});
