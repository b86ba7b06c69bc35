/**
 * `shipclock schedules …` end to end: the real executable against an in-process server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withCliFixture } from './helpers/cli.ts';

const { cli } = withCliFixture({ apps: ['migrations', 'api'] });

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
