/**
 * Behaviour under trouble, with real processes (`node bin/shipclock.js serve|worker`): the
 * database going away around an instant, a graceful stop while deployments are in flight, and a
 * machine whose clock is off. Bounded in time; loopback only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/fake-webhook.ts';
import { insertWebhookDeployments, type Proc, spawnShipclock, startTcpProxy, teamId, type TcpProxy, viaProxy } from './helpers/processes.ts';
import { eventually, testEnv } from './helpers/server.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function states(db: TestDatabase, ids: string[]): Promise<Record<string, number>> {
  const r = await db.pool.query<{ state: string; n: number }>('SELECT state, count(*)::int AS n FROM deployments WHERE id = ANY($1::uuid[]) GROUP BY state', [ids]);
  return Object.fromEntries(r.rows.map((x) => [x.state, x.n]));
}

function hitsPer(hook: WebhookReceiver, ids: string[]): Map<string, number> {
  const want = new Set(ids);
  const m = new Map<string, number>();
  for (const h of hook.hits) if (want.has(h.body?.deployment_id)) m.set(h.body.deployment_id, (m.get(h.body.deployment_id) ?? 0) + 1);
  return m;
}

async function waitEnded(db: TestDatabase, ids: string[], timeoutMs: number): Promise<Record<string, number>> {
  await eventually(async () => {
    const s = await states(db, ids);
    return !s.scheduled && !s.running;
  }, timeoutMs, `${ids.length} deployments to end`);
  return states(db, ids);
}

async function newTeam(db: TestDatabase): Promise<string> {
  return (await db.pool.query<{ id: string }>(`INSERT INTO teams (name) VALUES ('resilience') RETURNING id`)).rows[0].id;
}

describe('database outage: PostgreSQL unreachable for 10 s around an instant', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  const procs: Proc[] = [];
  before(async () => {
    db = await createTestDatabase({ migrate: false });
    const u = new URL(db.url);
    proxy = await startTcpProxy({ host: u.hostname, port: Number(u.port || 5432) });
  });
  after(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    await proxy.close();
    await db.drop();
  });

  it('no process exits; what was due fires once when it returns, or ends missed per its expiry; nothing lost', async () => {
    // Leases (30 s) outlast the outage: no process takes over another's rows meanwhile.
    const env = testEnv(viaProxy(db.url, proxy), { SHIPCLOCK_LEASE_SECONDS: '30' });
    procs.push(await spawnShipclock('serve', env), await spawnShipclock('worker', env));
    const hook = await startWebhookReceiver();
    const team = await teamId(db.pool);
    const cutAt = Date.now() + 3000;
    // claimed before the cut, fire during the outage (the calls need no database; the writes wait)
    const during = await insertWebhookDeployments(db.pool, team, hook.url, 10, cutAt + 1000, { prefix: 'during-' });
    // due during the outage, never claimed before it: fire when the database returns
    const after = await insertWebhookDeployments(db.pool, team, hook.url, 10, cutAt + 3000, { prefix: 'after-' });
    // due during the outage with a 2 s expiry: missed, never run late
    const expiring = await insertWebhookDeployments(db.pool, team, hook.url, 10, cutAt + 3000, { prefix: 'expiring-', expiresAfterSeconds: 2 });
    await sleep(cutAt - Date.now());
    proxy.cut();
    const restoreAt = Date.now() + 10_000;
    while (Date.now() < restoreAt) {
      for (const p of procs) {
        assert.ok(p.alive(), `a process exited during the outage: ${p.output().slice(-2000)}`);
        assert.equal((await fetch(`${p.url}/healthz`)).status, 200);
      }
      await sleep(500);
    }
    proxy.restore();
    const end = await waitEnded(db, [...during, ...after, ...expiring], 45_000);
    assert.deepEqual(end, { succeeded: 20, missed: 10 });
    assert.deepEqual(await states(db, during), { succeeded: 10 });
    assert.deepEqual(await states(db, after), { succeeded: 10 });
    assert.deepEqual(await states(db, expiring), { missed: 10 });
    const per = hitsPer(hook, [...during, ...after]);
    assert.equal(per.size, 20, 'none lost');
    assert.deepEqual([...new Set(per.values())], [1], 'none twice');
    assert.equal(hitsPer(hook, expiring).size, 0, 'the expired ones never ran');
    const runAt = new Map((await db.pool.query<{ id: string; run_at: Date }>('SELECT id, run_at FROM deployments')).rows.map((r) => [r.id, r.run_at.getTime()]));
    assert.ok(hook.hits.every((h) => h.at >= runAt.get(h.body.deployment_id)!), 'none early');
    for (const p of procs) {
      assert.ok(p.alive(), 'still running after the outage');
      await eventually(async () => (await fetch(`${p.url}/readyz`)).status === 200, 10_000, '/readyz after the outage');
    }
    await hook.close();
  });
});

describe('graceful stop: SIGTERM while deployments are in flight', () => {
  let db: TestDatabase;
  const procs: Proc[] = [];
  before(async () => { db = await createTestDatabase({ migrate: false }); });
  after(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    await db.drop();
  });

  it('stops claiming, finishes what is in flight, hands back what is not, exits 0 within 30 s; another process completes the rest exactly once', async () => {
    // A long claim horizon, so that the second group is claimed (held, not started) when SIGTERM arrives.
    const env = testEnv(db.url, { SHIPCLOCK_PREFETCH_MS: '5000' });
    const first = await spawnShipclock('worker', env);
    procs.push(first);
    const team = await newTeam(db);
    const hook = await startWebhookReceiver();
    hook.delay(3000); // the in-flight calls last 3 s
    const t = Date.now() + 2500;
    const inFlight = await insertWebhookDeployments(db.pool, team, hook.url, 5, t, { prefix: 'inflight-' });
    const held = await insertWebhookDeployments(db.pool, team, hook.url, 5, t + 3000, { prefix: 'held-' });
    await eventually(async () => hitsPer(hook, inFlight).size === 5, 15_000, 'the first calls to arrive');
    const heldBy = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM deployments WHERE id = ANY($1::uuid[]) AND lease_owner IS NOT NULL', [held]);
    assert.equal(heldBy.rows[0].n, 5, 'the later group is claimed, waiting for its instant');
    const t0 = Date.now();
    first.child.kill('SIGTERM');
    const code = await first.exited;
    const took = Date.now() - t0;
    assert.equal(code, 0, first.output().slice(-2000));
    assert.ok(took < 30_000, `exited in ${took} ms`);
    assert.ok(took >= 1500, 'it waited for the calls in flight');
    assert.deepEqual(await states(db, inFlight), { succeeded: 5 }, 'the calls in flight were finished and recorded');
    const handed = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM deployments WHERE id = ANY($1::uuid[]) AND state = \'scheduled\' AND lease_owner IS NULL', [held]);
    assert.equal(handed.rows[0].n, 5, 'the waiting ones were handed back, not started');
    hook.delay(0);
    const second = await spawnShipclock('worker', env);
    procs.push(second);
    assert.deepEqual(await waitEnded(db, held, 30_000), { succeeded: 5 });
    const per = hitsPer(hook, [...inFlight, ...held]);
    assert.equal(per.size, 10);
    assert.deepEqual([...new Set(per.values())], [1], 'each exactly once');
    const firers = await db.pool.query<{ id: string; message: string }>(`SELECT deployment_id AS id, message FROM deployment_events WHERE deployment_id = ANY($1::uuid[]) AND state = 'running'`, [held]);
    assert.equal(firers.rows.length, 5);
    assert.ok(firers.rows.every((r) => r.message.split(' on ')[1].split(':')[1] === String(second.pid)), 'the second process ran the handed-back ones');
    await hook.close();
  });
});

describe('clock: the database clock decides; a skewed machine is warned about', () => {
  let db: TestDatabase;
  const procs: Proc[] = [];
  before(async () => { db = await createTestDatabase({ migrate: false }); });
  after(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    await db.drop();
  });

  for (const offset of [1500, -1500]) {
    it(`a process clock ${offset > 0 ? 'ahead of' : 'behind'} the database's by 1.5 s: warns (log + metric) and still fires on the database's instant`, async () => {
      // SHIPCLOCK_TEST_CLOCK_OFFSET_MS is test-only: the scheduler reads its clock shifted by it.
      const p = await spawnShipclock('worker', testEnv(db.url, { SHIPCLOCK_TEST_CLOCK_OFFSET_MS: String(offset), LOG_LEVEL: 'info' }));
      procs.push(p);
      await eventually(async () => /clock differs from the database's by more than 500 ms/.test(p.output()), 15_000, 'the warning');
      const line = p.output().split('\n').find((l) => l.includes('clock differs'))!;
      assert.ok(Math.abs(JSON.parse(line).skew_ms - offset) < 300, line);
      const metrics = await (await fetch(`${p.url}/metrics`)).text();
      const m = /^shipclock_clock_skew_seconds ([-\d.e]+)$/m.exec(metrics);
      assert.ok(m, 'the metric is exported');
      assert.ok(Math.abs(Number(m[1]) - offset / 1000) < 0.3, `shipclock_clock_skew_seconds ${m[1]}`);
      const team = (await db.pool.query<{ id: string }>('SELECT id FROM teams LIMIT 1')).rows[0]?.id ?? (await newTeam(db));
      const hook = await startWebhookReceiver();
      const runAt = Date.now() + 3000;
      const [id] = await insertWebhookDeployments(db.pool, team, hook.url, 1, runAt, { prefix: `skew${offset}-` });
      await eventually(async () => hitsPer(hook, [id]).size === 1, 15_000, 'the call');
      const lag = hook.hits[0].at - runAt;
      assert.ok(lag >= 0, `not early (${lag} ms)`);
      assert.ok(lag < 1000, `not late by the skew (${lag} ms)`);
      p.child.kill('SIGTERM');
      assert.equal(await p.exited, 0);
      await hook.close();
    });
  }
});
