/**
 * Scale-out: three processes (`serve` + two `worker`s) share 3,000 deployments due at one
 * instant; each fires exactly once, none early, none lost. (The timing figures are a benchmark:
 * `npm run bench -- fire --count 3000 --workers 2`; this test asserts no speed.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { startWebhookReceiver } from './helpers/fake-webhook.ts';
import { insertWebhookDeployments, type Proc, spawnShipclock, teamId } from './helpers/processes.ts';
import { eventually, testEnv } from './helpers/server.ts';

const COUNT = 3000;

describe('three processes, 3,000 deployments due at once', () => {
  let db: TestDatabase;
  const procs: Proc[] = [];
  before(async () => { db = await createTestDatabase({ migrate: false }); });
  after(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    await db.drop();
  });

  it('each fires exactly once, none early, none lost, and the processes share them', async () => {
    const env = testEnv(db.url, { LOG_LEVEL: 'warn' });
    procs.push(await spawnShipclock('serve', env));
    procs.push(...(await Promise.all([spawnShipclock('worker', env), spawnShipclock('worker', env)])));
    const team = await teamId(db.pool);
    const hook = await startWebhookReceiver();
    const runAt = Math.ceil((Date.now() + 4000) / 1000) * 1000;
    const ids = await insertWebhookDeployments(db.pool, team, hook.url, COUNT, runAt);
    assert.ok(Date.now() < runAt - 1500, 'set up before the claims begin');
    await eventually(async () => {
      const r = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM deployments WHERE id = ANY($1::uuid[]) AND state = 'succeeded'`, [ids]);
      return r.rows[0].n === COUNT;
    }, 180_000, `all ${COUNT} to succeed`);
    const per = new Map<string, number>();
    for (const h of hook.hits) per.set(h.body.deployment_id, (per.get(h.body.deployment_id) ?? 0) + 1);
    assert.equal(per.size, COUNT, 'none lost');
    assert.deepEqual([...new Set(per.values())], [1], 'none twice');
    assert.ok(hook.hits.every((h) => h.at >= runAt), 'none early');
    const by = await db.pool.query<{ who: string; n: number }>(
      `SELECT split_part(message, ' on ', 2) AS who, count(*)::int AS n FROM deployment_events
        WHERE deployment_id = ANY($1::uuid[]) AND state = 'running' GROUP BY 1 ORDER BY 2 DESC`, [ids]);
    assert.equal(by.rows.reduce((a, r) => a + r.n, 0), COUNT, 'one running event each');
    const lags = hook.hits.map((h) => h.at - runAt).sort((a, b) => a - b);
    console.log(`# fired by ${by.rows.length} process(es): ${by.rows.map((r) => r.n).join(' + ')}; lag p50 ${lags[Math.floor(COUNT / 2)]} ms, p99 ${lags[Math.ceil(COUNT * 0.99) - 1]} ms (informative only)`);
    assert.ok(by.rows.length >= 2, 'the burst was shared between processes');
    await hook.close();
  });
});
