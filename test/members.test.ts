/**
 * Members (issue 16): owners list, change and remove their team's members; a team never loses its
 * last owner, even when two owners demote each other at once; a removed member's tokens stop
 * working within a second, and what it scheduled stays.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { USER_CACHE_MS } from '../src/services/auth.ts';
import { addMember, call, sleep } from './helpers/accounts.ts';
import { startTestServer, type TestServer, utcFields } from './helpers/server.ts';

describe('team members', () => {
  let s: TestServer;
  let teamId: string;
  let adminId: string;
  before(async () => {
    s = await startTestServer();
    const me = (await s.api('GET', '/v1/me', undefined, s.adminToken)).body;
    teamId = me.team.id;
    adminId = me.id;
  });
  after(() => s.stop());

  it('lists members a page at a time, to owners only', async () => {
    const owner = await addMember(s, teamId, 'olive@example.com', 'olives-password-1', 'owner');
    const viewer = await addMember(s, teamId, 'vera@example.com', 'veras-password-1', 'viewer');
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r: { status: number; body: any } = await s.api('GET', `/v1/teams/${teamId}/members?limit=1${cursor ? `&cursor=${cursor}` : ''}`, undefined, owner.token);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.result.length, 1);
      seen.push(r.body.result[0].email);
      cursor = r.body.next_cursor;
    } while (cursor);
    assert.deepEqual(seen, ['admin@example.com', 'olive@example.com', 'vera@example.com']);
    const one = (await s.api('GET', `/v1/teams/${teamId}/members`, undefined, owner.token)).body.result[0];
    assert.deepEqual(Object.keys(one).sort(), ['admin', 'created_at', 'email', 'id', 'role', 'sso']);
    assert.equal((await s.api('GET', `/v1/teams/${teamId}/members`, undefined, viewer.token)).status, 403);
    assert.equal((await s.api('GET', `/v1/teams/${teamId}/members?cursor=nonsense`, undefined, owner.token)).status, 400);
  });

  it('changes a role (owners only; another team answers 404); audited', async () => {
    const dora = await addMember(s, teamId, 'dora@example.com', 'doras-password-1', 'deployer');
    const r = await s.api('PATCH', `/v1/teams/${teamId}/members/${dora.id}`, { role: 'viewer' }, s.adminToken);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, { id: dora.id, email: 'dora@example.com', role: 'viewer' });
    // Her own token now acts as a viewer (here at once).
    assert.equal((await s.api('GET', '/v1/me', undefined, dora.token)).body.role, 'viewer');
    assert.equal((await s.api('PATCH', `/v1/teams/${teamId}/members/${dora.id}`, { role: 'owner' }, dora.token)).status, 403);
    assert.equal((await s.api('PATCH', `/v1/teams/${teamId}/members/${dora.id}`, { role: 'boss' }, s.adminToken)).status, 400);

    const other = (await s.api('POST', '/v1/teams', { name: 'elsewhere' }, s.adminToken)).body;
    const them = await addMember(s, other.id, 'them@example.com', 'their-password-1', 'owner');
    assert.equal((await s.api('PATCH', `/v1/teams/${teamId}/members/${dora.id}`, { role: 'owner' }, them.token)).status, 404);
    assert.equal((await s.api('DELETE', `/v1/teams/${teamId}/members/${dora.id}`, undefined, them.token)).status, 404);
    assert.equal((await s.api('GET', `/v1/teams/${teamId}/members`, undefined, them.token)).status, 404);
    // A member of another team is not found through this team.
    assert.equal((await s.api('PATCH', `/v1/teams/${teamId}/members/${them.id}`, { role: 'viewer' }, s.adminToken)).status, 404);

    const audit = await s.api('GET', `/v1/audit?action=member.update&target_id=${dora.id}`, undefined, s.adminToken);
    assert.equal(audit.body.result.length, 1);
    assert.deepEqual(audit.body.result[0].details, { email: 'dora@example.com', role: 'viewer', previous_role: 'deployer' });
  });

  it('refuses to demote or remove the last owner (409 last_owner), and changes nothing', async () => {
    const team = (await s.api('POST', '/v1/teams', { name: 'solo' }, s.adminToken)).body;
    const only = await addMember(s, team.id, 'only@example.com', 'onlys-password-1', 'owner');
    const demote = await s.api('PATCH', `/v1/teams/${team.id}/members/${only.id}`, { role: 'deployer' }, only.token);
    assert.equal(demote.status, 409);
    assert.equal(demote.body.error.code, 'last_owner');
    const remove = await s.api('DELETE', `/v1/teams/${team.id}/members/${only.id}`, undefined, s.adminToken);
    assert.equal(remove.status, 409);
    assert.equal(remove.body.error.code, 'last_owner');
    const list = (await s.api('GET', `/v1/teams/${team.id}/members`, undefined, only.token)).body.result;
    assert.deepEqual(list.map((m: { email: string; role: string }) => [m.email, m.role]), [['only@example.com', 'owner']]);
  });

  it('never leaves zero owners when two owners demote (or remove) each other at once', async () => {
    const team = (await s.api('POST', '/v1/teams', { name: 'pair' }, s.adminToken)).body;
    const a = await addMember(s, team.id, 'pair-a@example.com', 'pair-a-password', 'owner');
    const b = await addMember(s, team.id, 'pair-b@example.com', 'pair-b-password', 'owner');
    for (let round = 0; round < 4; round++) {
      const remove = round % 2 === 1;
      const [ra, rb] = await Promise.all([
        remove ? s.api('DELETE', `/v1/teams/${team.id}/members/${b.id}`, undefined, a.token) : s.api('PATCH', `/v1/teams/${team.id}/members/${b.id}`, { role: 'deployer' }, a.token),
        remove ? s.api('DELETE', `/v1/teams/${team.id}/members/${a.id}`, undefined, b.token) : s.api('PATCH', `/v1/teams/${team.id}/members/${a.id}`, { role: 'deployer' }, b.token),
      ]);
      const ok = [ra, rb].filter((r) => r.status === 200 || r.status === 204);
      assert.equal(ok.length, 1, `round ${round}: ${ra.status} ${JSON.stringify(ra.body)} / ${rb.status} ${JSON.stringify(rb.body)}`);
      for (const r of [ra, rb]) if (!ok.includes(r)) assert.ok([403, 409].includes(r.status), `${r.status} ${JSON.stringify(r.body)}`);
      const owners = (await s.db.pool.query(`SELECT count(*)::int AS n FROM users WHERE team_id = $1 AND role = 'owner' AND deleted_at IS NULL`, [team.id])).rows[0].n;
      assert.equal(owners, 1, `round ${round}`);
      if (!remove) {
        // Both owners again for the next round.
        await s.db.pool.query(`UPDATE users SET role = 'owner' WHERE team_id = $1 AND deleted_at IS NULL`, [team.id]);
      } else break;
      await sleep(USER_CACHE_MS + 50);
    }
  });

  it('removes a member: its tokens stop working (here at once, elsewhere within a second); what it scheduled stays; audited', async () => {
    const app = (await s.api('POST', '/v1/apps', { name: 'kept', target: { type: 'webhook', url: 'http://127.0.0.1:9/x' } }, s.adminToken)).body;
    const gone = await addMember(s, teamId, 'gone@example.com', 'gones-password-1', 'deployer');
    const apiToken = (await s.api('POST', '/v1/tokens', { name: 'ci' }, gone.token)).body.token as string;
    const dep = await s.api('POST', '/v1/scheduled_deployments', { app: app.id, ...utcFields(6 * 3600_000) }, gone.token);
    assert.equal(dep.status, 201);
    const second = await s.another('serve');
    for (const t of [gone.token, apiToken]) assert.equal((await call(second.url, 'GET', '/v1/me', { token: t })).status, 200);

    assert.equal((await s.api('DELETE', `/v1/teams/${teamId}/members/${gone.id}`, undefined, s.adminToken)).status, 204);
    assert.equal((await s.api('GET', '/v1/me', undefined, gone.token)).status, 401);
    assert.equal((await s.api('GET', '/v1/apps', undefined, apiToken)).status, 401);
    assert.equal((await s.api('POST', '/v1/auth/login', { email: 'gone@example.com', password: 'gones-password-1' })).status, 401);
    await sleep(USER_CACHE_MS + 200);
    assert.equal((await call(second.url, 'GET', '/v1/me', { token: gone.token })).status, 401);
    assert.equal((await call(second.url, 'GET', '/v1/me', { token: apiToken })).status, 401);

    // The deployment stays scheduled and keeps pointing at its author (soft delete, no broken FK).
    const d = (await s.api('GET', `/v1/scheduled_deployments/${dep.body.result.id}`, undefined, s.adminToken)).body.result;
    assert.equal(d.state, 'scheduled');
    const row = (await s.db.pool.query('SELECT d.created_by, u.deleted_at FROM deployments d JOIN users u ON u.id = d.created_by WHERE d.id = $1', [d.id])).rows[0];
    assert.equal(row.created_by, gone.id);
    assert.ok(row.deleted_at instanceof Date);
    const members = (await s.api('GET', `/v1/teams/${teamId}/members?limit=500`, undefined, s.adminToken)).body.result.map((m: { email: string }) => m.email);
    assert.ok(!members.includes('gone@example.com'));
    const audit = (await s.api('GET', `/v1/audit?action=member.delete&target_id=${gone.id}`, undefined, s.adminToken)).body.result;
    assert.equal(audit.length, 1);
    assert.equal(audit[0].details.email, 'gone@example.com');
    assert.equal((await s.api('DELETE', `/v1/teams/${teamId}/members/${gone.id}`, undefined, s.adminToken)).status, 404);
    // The email can be given to someone new.
    const again = await addMember(s, teamId, 'gone@example.com', 'a-new-password-1', 'viewer');
    assert.notEqual(again.id, gone.id);
  });

  it('lets only an instance admin remove an instance admin, never the last one', async () => {
    const owner = await addMember(s, teamId, 'owen@example.com', 'owens-password-1', 'owner');
    const r = await s.api('DELETE', `/v1/teams/${teamId}/members/${adminId}`, undefined, owner.token);
    assert.equal(r.status, 403);
    const self = await s.api('DELETE', `/v1/teams/${teamId}/members/${adminId}`, undefined, s.adminToken);
    assert.equal(self.status, 409);
    assert.equal(self.body.error.code, 'last_admin');
  });
});
