/**
 * The audit log: entries written in the caller's transaction, secrets masked, listed newest
 * first per team with keyset pagination.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useTestDatabase } from './helpers/db.ts';
import { inTransaction } from '../src/db/pool.ts';
import { recordAudit, scrubSecrets } from '../src/audit/record.ts';
import { listAudit } from '../src/db/sql/audit.ts';

const db = useTestDatabase();

async function team(name: string) {
  const id = (await db.pool.query(`INSERT INTO teams (name) VALUES ($1) RETURNING id`, [name])).rows[0].id as string;
  const user = (await db.pool.query(
    `INSERT INTO users (email, password_hash, team_id, role) VALUES ($1, 'x', $2, 'owner') RETURNING id`,
    [`${name}@example.com`, id],
  )).rows[0].id as string;
  return { id, user };
}

test('recordAudit writes in the caller\'s transaction and masks secrets', async () => {
  const t = await team('audit-a');
  await assert.rejects(inTransaction(db.pool, async (c) => {
    await recordAudit(c, { teamId: t.id, actorId: t.user, action: 'app.create', targetId: 'x', details: {} });
    throw new Error('rolled back');
  }));
  assert.equal((await listAudit(db.pool, t.id, { beforeId: null, limit: 10 })).length, 0);

  await inTransaction(db.pool, (c) => recordAudit(c, {
    teamId: t.id, actorId: t.user, action: 'credential.create', targetId: 'cred-1',
    details: { name: 'prod', provider: 'aws', secret_access_key: 'AKIASECRET', nested: { token: 'do-tok', password: 'pw' }, target: { secret: 's3' } },
  }));
  const [row] = await listAudit(db.pool, t.id, { beforeId: null, limit: 10 });
  assert.equal(row.action, 'credential.create');
  assert.equal(row.actor_email, 'audit-a@example.com');
  assert.equal(row.target_id, 'cred-1');
  assert.ok(row.at instanceof Date);
  const text = JSON.stringify(row.details);
  for (const s of ['AKIASECRET', 'do-tok', 'pw', 's3']) assert.ok(!text.includes(`"${s}"`), `${s} leaked: ${text}`);
  assert.equal((row.details as { name: string }).name, 'prod');
});

test('listAudit: newest first, per team, keyset pages, filters', async () => {
  const a = await team('audit-b');
  const b = await team('audit-c');
  for (let i = 0; i < 7; i++) {
    await recordAudit(db.pool, { teamId: a.id, actorId: a.user, action: i % 2 ? 'deployment.create' : 'deployment.cancel', targetId: `d${i}`, details: { i } });
  }
  await recordAudit(db.pool, { teamId: b.id, actorId: null, action: 'team.create', targetId: b.id });
  const seen: string[] = [];
  let before: string | null = null;
  for (;;) {
    const page = await listAudit(db.pool, a.id, { beforeId: before, limit: 3 });
    seen.push(...page.map((r) => r.target_id!));
    if (page.length < 3) break;
    before = page[page.length - 1].id;
  }
  assert.deepEqual(seen, ['d6', 'd5', 'd4', 'd3', 'd2', 'd1', 'd0']);
  assert.equal((await listAudit(db.pool, a.id, { beforeId: null, limit: 50, action: 'deployment.create' })).length, 3);
  const other = await listAudit(db.pool, b.id, { beforeId: null, limit: 50 });
  assert.deepEqual(other.map((r) => [r.action, r.actor_id]), [['team.create', null]]);
});

test('scrubSecrets keeps the shape and non-secret values', () => {
  assert.deepEqual(scrubSecrets({ a: 1, list: [{ token: 't' }], has_secret: true, when: new Date(0) }), {
    a: 1, list: [{ token: '[redacted]' }], has_secret: true, when: '1970-01-01T00:00:00.000Z',
  });
});

test('API: GET /v1/audit (owners) records who created, rescheduled and canceled what', async () => {
  const { startTestServer, utcFields } = await import('./helpers/server.ts');
  const server = await startTestServer();
  try {
    const t = server.adminToken;
    const me = (await server.api('GET', '/v1/me', undefined, t)).body;
    const member = await server.api('POST', `/v1/teams/${me.team.id}/members`, { email: 'dep@example.com', password: 'deployer-password', role: 'deployer' }, t);
    const deployerToken = await server.login('dep@example.com', 'deployer-password');
    const cred = await server.api('POST', '/v1/credentials', { name: 'do', provider: 'digitalocean', token: 'dop_v1_supersecret' }, t);
    assert.equal(cred.status, 201);
    const app = await server.api('POST', '/v1/apps', { name: 'api', target: { type: 'webhook', url: 'http://127.0.0.1:1/x', secret: 'hook-secret' } }, t);
    const dep = await server.api('POST', '/v1/scheduled_deployments', { app: app.body.id, ...utcFields(3600_000) }, deployerToken);
    assert.equal(dep.status, 201);
    const id = dep.body.result.id;
    assert.equal((await server.api('PATCH', `/v1/scheduled_deployments/${id}`, utcFields(7200_000), deployerToken)).status, 200);
    assert.equal((await server.api('POST', `/v1/scheduled_deployments/${id}/cancel`, undefined, deployerToken)).status, 200);
    assert.equal((await server.api('DELETE', `/v1/credentials/${cred.body.id}`, undefined, t)).status, 204);

    assert.equal((await server.api('GET', '/v1/audit', undefined, deployerToken)).status, 403);
    const all = await server.api('GET', '/v1/audit?limit=500', undefined, t);
    assert.equal(all.status, 200);
    const actions = all.body.result.map((e: { action: string }) => e.action);
    assert.deepEqual(actions.slice(0, 7), [
      'credential.delete', 'deployment.cancel', 'deployment.reschedule', 'deployment.create', 'app.create', 'credential.create', 'member.create',
    ]);
    const byAction = (a: string) => all.body.result.find((e: { action: string }) => e.action === a);
    assert.equal(byAction('deployment.cancel').actor.email, 'dep@example.com');
    assert.equal(byAction('deployment.cancel').target_id, id);
    assert.equal(byAction('credential.create').actor.email, server.adminEmail);
    assert.equal(byAction('member.create').target_id, member.body.id);
    assert.ok(!Number.isNaN(Date.parse(byAction('deployment.create').at)));
    const text = JSON.stringify(all.body);
    assert.ok(!text.includes('dop_v1_supersecret') && !text.includes('hook-secret'), 'no secrets in the audit log');

    // Pages of 2, newest first, no overlap, same order as one big page.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `?limit=2&cursor=${cursor}` : '?limit=2';
      const p = await server.api('GET', `/v1/audit${q}`, undefined, t);
      assert.equal(p.status, 200);
      assert.ok(p.body.result.length <= 2);
      seen.push(...p.body.result.map((e: { id: string }) => e.id));
      cursor = p.body.next_cursor;
    } while (cursor);
    assert.deepEqual(seen, all.body.result.map((e: { id: string }) => e.id));

    const filtered = await server.api('GET', `/v1/audit?target_id=${id}`, undefined, t);
    assert.deepEqual(filtered.body.result.map((e: { action: string }) => e.action), ['deployment.cancel', 'deployment.reschedule', 'deployment.create']);
    assert.equal((await server.api('GET', '/v1/audit?cursor=not-a-cursor', undefined, t)).status, 400);
    assert.equal((await server.api('GET', '/v1/audit?limit=501', undefined, t)).status, 400);
  } finally {
    await server.stop();
  }
});
