/**
 * `shipclock schedules …` end to end: the real executable against an in-process server.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer } from './helpers/server.ts';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'shipclock.js');
let server: TestServer;
let dir: string;
let configFile: string;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH, HOME: dir, TZ: 'UTC', SHIPCLOCK_CONFIG: configFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shipclock-cli-'));
  configFile = path.join(dir, 'config.json');
  server = await startTestServer();
  for (const name of ['migrations', 'api']) {
    const r = await server.api('POST', '/v1/apps', { name, target: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } }, server.adminToken);
    assert.equal(r.status, 201);
  }
  const r = await cli(['login', '--url', server.url, '--email', server.adminEmail, '--password', server.adminPassword]);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await server?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('schedules create (by app name, --after, --lead), ls, pause, resume, rm', async () => {
  const c = await cli(['schedules', 'create', 'api', '--cron', '30 9 * * 1-5', '--tz', 'Europe/Berlin', '--after', 'migrations', '--lead', '15m', '--json']);
  assert.equal(c.code, 0, c.stderr);
  const s = JSON.parse(c.stdout);
  assert.equal(s.app.name, 'api');
  assert.equal(s.dependency.name, 'migrations');
  assert.equal(s.dependency_lead_seconds, 900);
  assert.equal(s.timezone, 'Europe/Berlin');
  assert.equal(s.next_runs.length, 5);

  const human = await cli(['schedules', 'show', s.id]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /"30 9 \* \* 1-5" Europe\/Berlin/);
  assert.match(human.stdout, / 09:30:00 \(UTC\+0[12]:00\) = /);

  const ls = await cli(['schedules', 'ls']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, new RegExp(`${s.id}\\s+api\\s+30 9 \\* \\* 1-5\\s+Europe/Berlin\\s+active`));

  const p = await cli(['schedules', 'pause', s.id]);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /^paused /);
  assert.match((await cli(['schedules', 'ls'])).stdout, /paused/);
  const again = await cli(['schedules', 'pause', s.id]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already paused/);
  assert.equal((await cli(['schedules', 'resume', s.id])).code, 0);
  const rm = await cli(['schedules', 'rm', s.id]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.match((await cli(['schedules', 'ls'])).stdout, /no schedules/);
  const gone = await cli(['schedules', 'rm', s.id]);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /unknown schedule/);
});

test('schedules preview shows local times, offsets and the DST notes', async () => {
  const r = await cli(['schedules', 'preview', '--cron', '30 2 * * *', '--tz', 'America/New_York', '--from', '2027-03-13T12:00:00Z', '--count', '2']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[1], /^2027-03-14 03:30:00\s+-04:00\s+2027-03-14T07:30:00.000Z\s+shifted \(DST gap\)$/);
  assert.match(lines[2], /^2027-03-15 02:30:00\s+-04:00\s+2027-03-15T06:30:00.000Z$/);
});

test('errors: a bad cron names the field (exit 1); bad option values are usage errors (exit 2)', async () => {
  const bad = await cli(['schedules', 'create', 'api', '--cron', '61 * * * *', '--tz', 'UTC']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /not a valid cron expression/);
  assert.equal((await cli(['schedules', 'create', 'api', '--cron', '0 9 * * *', '--tz', 'Mars/Base'])).code, 2);
  assert.equal((await cli(['schedules', 'create', 'api', '--cron', '0 9 * * *', '--lead', '5m'])).code, 2);
  assert.equal((await cli(['schedules', 'create', 'api', '--cron', '0 9 * * *', '--dst-gap', 'later'])).code, 2);
  const unknown = await cli(['schedules', 'create', 'nope', '--cron', '0 9 * * *', '--tz', 'UTC']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /unknown app 'nope'/);
});
