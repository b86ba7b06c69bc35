/**
 * No password, token or secret of the account features in a log line (JSON or pretty), an error
 * or a response, but the one answer that creates an API token.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from '../src/observability/logger.ts';
import { call } from './helpers/accounts.ts';
import { startTestServer } from './helpers/server.ts';

for (const format of ['json', 'pretty'] as const) {
  describe(`account secrets stay out of ${format} logs and answers`, () => {
    it('signs in (wrong and right), adds a member, changes a password, creates, uses and revokes a token', async () => {
      let logs = '';
      const sink = new Writable({ write(chunk, _e, cb) { logs += chunk; cb(); } });
      const s = await startTestServer({ logger: createLogger('trace', sink, format), env: { LOG_LEVEL: 'trace', SHIPCLOCK_LOGIN_MAX_FAILURES_PER_EMAIL: '2' } });
      const answers: string[] = [];
      const api = async (method: string, path: string, body?: unknown, token?: string) => {
        const r = await call(s.url, method, path, { body, token });
        answers.push(r.text);
        return r;
      };
      try {
        const secrets = ['wrong-guess-secret-1', 'members-initial-pw-1', 'members-second-pw-2', s.adminPassword];
        const teamId = (await api('GET', '/v1/me', undefined, s.adminToken)).body.team.id;
        await api('POST', '/v1/auth/login', { email: s.adminEmail, password: 'wrong-guess-secret-1' });
        await api('POST', `/v1/teams/${teamId}/members`, { email: 'logged@example.com', password: 'members-initial-pw-1', role: 'deployer' }, s.adminToken);
        const login = await api('POST', '/v1/auth/login', { email: 'logged@example.com', password: 'members-initial-pw-1' });
        const token = login.body.access_token as string;
        answers.pop(); // a login answers with its token, by definition
        await api('POST', '/v1/me/password', { current_password: 'wrong-guess-secret-1', new_password: 'members-second-pw-2' }, token);
        await api('POST', '/v1/me/password', { current_password: 'members-initial-pw-1', new_password: 'short' }, token);
        assert.equal((await api('POST', '/v1/me/password', { current_password: 'members-initial-pw-1', new_password: 'members-second-pw-2' }, token)).status, 204);
        const created = await api('POST', '/v1/tokens', { name: 'ci' }, token);
        const apiToken = created.body.token as string;
        answers.pop(); // the one-time answer that shows an API token
        await api('GET', '/v1/apps', undefined, apiToken);
        await api('GET', '/v1/tokens', undefined, token);
        await api('GET', `/v1/teams/${teamId}/members`, undefined, s.adminToken);
        await api('POST', '/v1/tokens', { name: 'child' }, apiToken);
        await api('DELETE', `/v1/tokens/${created.body.id}`, undefined, token);
        await api('GET', '/v1/apps', undefined, apiToken);
        for (let i = 0; i < 3; i++) await api('POST', '/v1/auth/login', { email: 'logged@example.com', password: 'wrong-guess-secret-1' });
        await api('GET', '/v1/audit?limit=500', undefined, s.adminToken);

        assert.ok(logs.length > 0, 'something was logged');
        for (const v of [...secrets, token, apiToken, apiToken.slice(4), s.adminToken]) {
          assert.ok(!logs.includes(v), `a secret is in the ${format} log`);
          for (const a of answers) assert.ok(!a.includes(v), `a secret is in an answer: ${a.slice(0, 200)}`);
        }
      } finally {
        await s.stop();
      }
    });
  });
}
