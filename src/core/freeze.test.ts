import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addWallSeconds, coveringAt, type FreezeSpec, nextAllowed, windowsOf } from './freeze.ts';

const Z = (s: string) => Date.parse(s);
const once = (id: string, start: string, end: string, apps: string[] | null = null): FreezeSpec => ({
  id, name: id, reason: null, apps, timezone: 'UTC', kind: 'once', startMs: Z(start), endMs: Z(end),
});
const weekend: FreezeSpec = { id: 'w', name: 'weekend', reason: null, apps: null, timezone: 'Europe/Berlin', kind: 'recurring', cron: '0 16 * * 5', durationSeconds: 64 * 3600 };

describe('freeze windows', () => {
  it('back-to-back and overlapping windows are one stretch; the end is allowed', () => {
    const f = [once('a', '2027-01-10T10:00:00Z', '2027-01-10T12:00:00Z'), once('b', '2027-01-10T12:00:00Z', '2027-01-10T14:00:00Z'), once('c', '2027-01-10T13:00:00Z', '2027-01-10T15:30:00Z')];
    assert.equal(nextAllowed(f, [{ appId: 'x', offsetMs: 0 }], Z('2027-01-10T11:00:00Z')), Z('2027-01-10T15:30:00Z'));
    assert.equal(nextAllowed(f, [{ appId: 'x', offsetMs: 0 }], Z('2027-01-10T15:30:00Z')), Z('2027-01-10T15:30:00Z'));
    assert.equal(nextAllowed(f, [{ appId: 'x', offsetMs: 0 }], Z('2027-01-10T09:59:59Z')), Z('2027-01-10T09:59:59Z'));
  });

  it('a dependency deploying before the instant shifts the answer by its lead', () => {
    const f = [once('d', '2027-01-10T10:00:00Z', '2027-01-10T12:00:00Z', ['dep'])];
    const c = [{ appId: 'app', offsetMs: 0 }, { appId: 'dep', offsetMs: 900_000 }];
    assert.equal(nextAllowed(f, c, Z('2027-01-10T10:20:00Z')), Z('2027-01-10T12:15:00Z'));
    assert.equal(nextAllowed(f, c, Z('2027-01-10T10:10:00Z')), Z('2027-01-10T10:10:00Z'), 'the dependency deploys at 09:55, before the freeze');
    assert.equal(nextAllowed(f, c, Z('2027-01-10T12:16:00Z')), Z('2027-01-10T12:16:00Z'));
  });

  it('a recurring weekend freeze keeps its wall-clock end across both DST changes in Berlin', () => {
    const spring = windowsOf(weekend, Z('2027-03-26T00:00:00Z'), Z('2027-03-27T00:00:00Z'));
    assert.deepEqual(spring.map((w) => [new Date(w.startMs).toISOString(), new Date(w.endMs).toISOString()]), [['2027-03-26T15:00:00.000Z', '2027-03-29T06:00:00.000Z']]);
    const autumn = windowsOf(weekend, Z('2027-10-29T00:00:00Z'), Z('2027-10-30T00:00:00Z'));
    assert.deepEqual(autumn.map((w) => [new Date(w.startMs).toISOString(), new Date(w.endMs).toISOString()]), [['2027-10-29T14:00:00.000Z', '2027-11-01T07:00:00.000Z']]);
    assert.equal(coveringAt([weekend], 'x', Z('2027-03-29T05:59:59Z'))?.freeze.id, 'w');
    assert.equal(coveringAt([weekend], 'x', Z('2027-03-29T06:00:00Z')), null);
    assert.equal(nextAllowed([weekend], [{ appId: 'x', offsetMs: 0 }], Z('2027-03-28T01:30:00Z')), Z('2027-03-29T06:00:00Z'));
  });

  it('an end inside a DST gap moves forward by the gap', () => {
    // 2027-03-28 01:30 + 1 h of wall clock = 02:30, which Berlin skips: 03:30 CEST.
    assert.equal(addWallSeconds({ year: 2027, month: 3, day: 28, hour: 1, minute: 30, second: 0 }, 3600, 'Europe/Berlin'), Z('2027-03-28T01:30:00Z'));
  });

  it('a pattern that leaves no gap answers null within the bound', () => {
    const always: FreezeSpec = { ...weekend, cron: '0 * * * *', durationSeconds: 7200 };
    assert.equal(nextAllowed([always], [{ appId: 'x', offsetMs: 0 }], Z('2027-01-01T00:00:00Z'), 30 * 86_400_000), null);
  });
});
