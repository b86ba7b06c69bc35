/**
 * `shipclock freezes …`, `release` and `schedule` on a freeze, end to end: the real executable against an in-process server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withCliFixture } from './helpers/cli.ts';

const { cli } = withCliFixture({ apps: ['migrations', 'api'] });

test('freezes create (one-off, --apps by name), schedule prints the freeze and the next allowed time, release, ls, rm', async () => {
  const scheduled = await cli(['schedule', 'api', '--at', '2031-12-24 12:00', '--tz', 'Europe/Berlin', '--json']);
  assert.equal(scheduled.code, 0, scheduled.stderr);
  const held = JSON.parse(scheduled.stdout);

  const c = await cli(['freezes', 'create', 'Christmas', '--from', '2031-12-24 00:00', '--to', '2031-12-27 08:00', '--tz', 'Europe/Berlin', '--apps', 'api', '--reason', 'holidays']);
  assert.equal(c.code, 0, c.stderr);
  const id = /created freeze (\S+)/.exec(c.stdout)![1];
  assert.match(c.stdout, /2031-12-24 00:00 Europe\/Berlin → 2031-12-27 08:00/);
  assert.match(c.stdout, new RegExp(`held 1 scheduled deployment.*\\n\\s+${held.id}  api  2031-12-24 12:00 Europe/Berlin`));

  const refused = await cli(['schedule', 'api', '--at', '2031-12-25 10:00', '--tz', 'America/New_York']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /"Christmas" \(holidays\), which ends 2031-12-27 02:00 America\/New_York/);
  assert.match(refused.stderr, /freeze:\s+Christmas \(/);
  assert.match(refused.stderr, /next allowed: 2031-12-27 02:00 America\/New_York = 2031-12-27T07:00:00.000Z/);
  assert.match(refused.stderr, /try:\s+--at "2031-12-27 02:00" --tz America\/New_York/);

  const overridden = await cli(['schedule', 'api', '--at', '2031-12-25 10:00', '--tz', 'America/New_York', '--override-freeze', 'hotfix', '--json']);
  assert.equal(overridden.code, 0, overridden.stderr);
  assert.equal(JSON.parse(overridden.stdout).freeze_override.reason, 'hotfix');

  const ls = await cli(['freezes', 'ls']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, new RegExp(`${id}\\s+Christmas\\s+.*\\s+api\\s+2031-12-23T23:00:00.000Z → 2031-12-27T07:00:00.000Z\\s+holidays`));

  const r = await cli(['release', held.id, '--reason', 'the shop must open']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`${held.id}  scheduled`));
  assert.equal((await cli(['release', held.id])).code, 2, '--reason is required');

  const rm = await cli(['freezes', 'rm', id]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.match((await cli(['freezes', 'ls'])).stdout, /no freezes/);
});

test('freezes create recurring (--cron, --duration) and usage errors', async () => {
  const c = await cli(['freezes', 'create', 'weekend', '--cron', '0 16 * * 5', '--duration', '64h', '--tz', 'Europe/Berlin', '--json']);
  assert.equal(c.code, 0, c.stderr);
  const f = JSON.parse(c.stdout);
  assert.equal(f.kind, 'recurring');
  assert.equal(f.duration_seconds, 64 * 3600);
  assert.equal(f.apps, null);
  assert.equal((await cli(['freezes', 'create', 'x', '--from', '2031-01-01 00:00', '--cron', '* * * * *'])).code, 2);
  assert.equal((await cli(['freezes', 'create', 'x', '--from', '2031-01-01 00:00'])).code, 2);
  const bad = await cli(['freezes', 'create', 'x', '--from', '2031-01-02 00:00', '--to', '2031-01-01 00:00', '--tz', 'UTC']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /end .* must be after start/);
  assert.equal((await cli(['freezes', 'rm', f.id])).code, 0);
});
