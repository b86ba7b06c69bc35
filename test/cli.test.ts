/**
 * The `shipclock` client end to end: the real executable (bin/shipclock.js) in a child process
 * against an in-process server on a fresh database.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { type CliFixture, startCliFixture } from './helpers/cli.ts';
import { type TestServer, utcFields } from './helpers/server.ts';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/fake-webhook.ts';

let fixture: CliFixture;
let server: TestServer;
let ok: WebhookReceiver;
let broken: WebhookReceiver;
let dir: string;
let configFile: string;
const cli = (args: string[], env?: NodeJS.ProcessEnv) => fixture.home.cli(args, env);

/** "YYYY-MM-DD HH:MM:SS" in UTC, `ms` from now, rounded up to a whole second. */
function utcAt(ms: number): string {
  const d = new Date(Math.ceil((Date.now() + ms) / 1000) * 1000);
  return d.toISOString().slice(0, 19).replace('T', ' ');
}

before(async () => {
  // Not logged in: the first test logs in. The config file's folder does not exist yet.
  fixture = await startCliFixture({ login: false, configFile: path.join('conf', 'config.json') });
  ({ server, home: { dir, configFile } } = fixture);
  ok = await startWebhookReceiver();
  broken = await startWebhookReceiver();
  broken.respondWith(500);
  for (const [name, url] of [['db-migrate', ok.url], ['api', ok.url], ['broken', broken.url]]) {
    const r = await server.api('POST', '/v1/apps', { name, target: { type: 'webhook', url }, retry: { max_attempts: 1 } }, server.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
});

after(async () => {
  await ok?.close();
  await broken?.close();
  await fixture?.stop();
});

test('login keeps the token in a 0600 config file', async () => {
  const bad = await cli(['login', '--url', server.url, '--email', server.adminEmail, '--password', 'wrong-password']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /email or password is wrong/);
  assert.equal(fs.existsSync(configFile), false);

  const r = await cli(['login', '--url', server.url, '--email', server.adminEmail, '--password', server.adminPassword]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /logged in/);
  assert.equal(fs.statSync(configFile).mode & 0o777, 0o600);
  const saved = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  assert.equal(saved.url, server.url);
  assert.ok(saved.token.length > 20);
});

test('apps ls, as a table and as JSON', async () => {
  const r = await cli(['apps', 'ls']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /NAME/);
  for (const name of ['db-migrate', 'api', 'broken']) assert.match(r.stdout, new RegExp(`\\b${name}\\b`));
  const j = await cli(['apps', 'ls', '--json']);
  assert.deepEqual(JSON.parse(j.stdout).map((a: { name: string }) => a.name).sort(), ['api', 'broken', 'db-migrate']);
});

test('schedule by app name with --after and --lead, then ls, show and cancel', async () => {
  const at = utcAt(6 * 3600_000); // read as Berlin time: still hours ahead
  const r = await cli(['schedule', 'api', '--at', at, '--tz', 'Europe/Berlin', '--after', 'db-migrate', '--lead', '90s', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout);
  assert.equal(d.app.name, 'api');
  assert.equal(d.timezone, 'Europe/Berlin');
  assert.equal(d.state, 'scheduled');
  assert.equal(d.dependency.app.name, 'db-migrate');
  assert.equal(Date.parse(d.run_at) - Date.parse(d.dependency.run_at), 90_000);
  assert.equal(`${d.local.year}-${String(d.local.month).padStart(2, '0')}-${String(d.local.day).padStart(2, '0')} ${String(d.local.hour).padStart(2, '0')}:${String(d.local.minute).padStart(2, '0')}:${String(d.local.second).padStart(2, '0')}`, at);

  // --tz defaults to the machine's zone (TZ=UTC here).
  const human = await cli(['schedule', 'db-migrate', '--at', utcAt(7200_000)]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^scheduled [0-9a-f-]{36} {2}db-migrate {2}scheduled .* UTC/);

  const ls = await cli(['ls']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.ok(ls.stdout.includes(d.id));
  assert.match(ls.stdout, /STATE/);
  const lsJson = JSON.parse((await cli(['ls', '--state', 'scheduled', '--json'])).stdout);
  assert.ok(lsJson.some((x: { id: string }) => x.id === d.id));
  assert.ok(lsJson.every((x: { state: string }) => x.state === 'scheduled'));

  const show = await cli(['show', d.id]);
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /app: +api/);
  assert.match(show.stdout, /dependency: .*db-migrate/);
  assert.match(show.stdout, /events:/);
  assert.equal(JSON.parse((await cli(['show', d.id, '--json'])).stdout).id, d.id);

  const cancel = await cli(['cancel', d.id]);
  assert.equal(cancel.code, 0, cancel.stderr);
  assert.match(cancel.stdout, /canceled/);
  const after = await server.api('GET', `/v1/scheduled_deployments/${d.id}`, undefined, server.adminToken);
  assert.equal(after.body.result.state, 'canceled');
  assert.equal(after.body.result.dependency.state, 'canceled');
});

test('watch exits 0 when the deployment succeeds and 1 when it fails', async () => {
  // Scheduled through the API (the schedule command has its own test above): each CLI run starts
  // a node process, which on a loaded machine can take longer than a short lead.
  const apps = (await server.api('GET', '/v1/apps', undefined, server.adminToken)).body.result as Array<{ id: string; name: string }>;
  const scheduleSoon = async (name: string) => {
    const r = await server.api('POST', '/v1/scheduled_deployments', { app: apps.find((a) => a.name === name)!.id, ...utcFields(3000) }, server.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.result as { id: string };
  };
  const good = await scheduleSoon('api');
  const bad = await scheduleSoon('broken');
  const [w1, w2] = await Promise.all([cli(['watch', good.id]), cli(['watch', bad.id])]);
  assert.equal(w1.code, 0, w1.stdout + w1.stderr);
  assert.match(w1.stdout, /succeeded/);
  assert.equal(w2.code, 1, w2.stdout + w2.stderr);
  assert.match(w2.stdout, /failed/);
  // Watching something already over answers at once.
  const again = await cli(['watch', good.id]);
  assert.equal(again.code, 0);
});

test('errors name the problem; usage errors exit 2', async () => {
  const unknown = await cli(['schedule', 'nope', '--at', utcAt(3600_000)]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /unknown app 'nope'/);
  const unknownDep = await cli(['schedule', 'api', '--at', utcAt(3600_000), '--after', 'ghost']);
  assert.match(unknownDep.stderr, /unknown dependency app 'ghost'/);

  const past = await cli(['schedule', 'api', '--at', '2001-01-01 00:00', '--tz', 'UTC']);
  assert.equal(past.code, 1);
  assert.match(past.stderr, /past/i);

  for (const args of [
    ['schedule', 'api', '--at', 'tomorrow'],
    ['schedule', 'api', '--at', '2030-02-30 10:00'],
    ['schedule', 'api', '--at', '2030-01-01 10:00', '--tz', 'Mars/Base'],
    ['schedule', 'api', '--at', '2030-01-01 10:00', '--lead', '15m'],
    ['schedule', 'api'],
    ['ls', '--state', 'done'],
    ['frobnicate'],
    ['show'],
  ]) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /error/);
  }
  const missing = await cli(['show', '00000000-0000-4000-8000-000000000000']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /unknown deployment/);

  const help = await cli(['schedule', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--after <app>/);

  const loggedOut = await cli(['ls'], { SHIPCLOCK_CONFIG: path.join(dir, 'none.json') });
  assert.equal(loggedOut.code, 1);
  assert.match(loggedOut.stderr, /not logged in/);
});
