/**
 * `shipclock approve` / `reject` and the approval column of `ls`, through the real executable
 * against an in-process server on a fresh database.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { addMember } from './helpers/accounts.ts';
import { type CliFixture, startCliFixture } from './helpers/cli.ts';
import { type TestServer, utcFields } from './helpers/server.ts';

let fixture: CliFixture;
let server: TestServer;
let appId: string;
const cli = (args: string[]) => fixture.home.cli(args);

before(async () => {
  fixture = await startCliFixture({ login: false, prefix: 'shipclock-cli-appr-' });
  server = fixture.server;
  const team = (await server.api('GET', '/v1/me', undefined, server.adminToken)).body.team.id;
  await addMember(server, team, 'second@example.com', 'second-password-1', 'deployer');
  const r = await server.api('POST', '/v1/apps', { name: 'api', target: { type: 'webhook', url: 'http://127.0.0.1:9/' }, approval: { required: 2 } }, server.adminToken);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  appId = r.body.id;
  await fixture.home.login(server.url, 'second@example.com', 'second-password-1');
});

after(async () => {
  await fixture?.stop();
});

test('approve, reject and ls show the approval state', async () => {
  const mk = async (hours: number) => {
    const r = await server.api('POST', '/v1/scheduled_deployments', { app: appId, ...utcFields(hours * 3600_000) }, server.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.result.id as string;
  };
  const a = await mk(2);
  const b = await mk(3);

  let r = await cli(['ls']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /APPROVAL/);
  assert.match(r.stdout, new RegExp(`${a}\\s+api\\s+scheduled\\s+pending 0/2`));

  r = await cli(['approve', a, '--comment', 'checked the migration']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`${a}  scheduled  approval pending 1/2`));
  r = await cli(['ls']);
  assert.match(r.stdout, new RegExp(`${a}\\s+api\\s+scheduled\\s+pending 1/2`));

  r = await cli(['approve', a]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /already approved or rejected/);

  r = await cli(['reject', b]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--comment is required/);
  r = await cli(['reject', b, '--comment', 'not on a Friday']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /approval rejected/);

  r = await cli(['ls', '--approval', 'pending']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(a));
  assert.doesNotMatch(r.stdout, new RegExp(b));

  r = await cli(['show', b]);
  assert.match(r.stdout, /approval:\s+rejected/);
  assert.match(r.stdout, /rejected by second@example.com at .*: not on a Friday/);
});
