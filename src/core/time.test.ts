import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ValidationError } from './errors.ts';
import { isValidZone, localTimeAt, resolveLocalTime } from './time.ts';

const at = (year: number, month: number, day: number, hour: number, minute = 0, second = 0) => ({ year, month, day, hour, minute, second });
const iso = (ms: number) => new Date(ms).toISOString();

function rejects(fn: () => unknown, code: string, field: string) {
  assert.throws(fn, (err: unknown) => err instanceof ValidationError && err.code === code && err.field === field && err.status === 422);
}

describe('resolveLocalTime', () => {
  it('converts with the zone rules in force on that date, not a fixed offset', () => {
    // New York is UTC-5 in winter and UTC-4 in summer.
    assert.equal(iso(resolveLocalTime(at(2027, 1, 15, 9), 'America/New_York').epochMs), '2027-01-15T14:00:00.000Z');
    assert.equal(iso(resolveLocalTime(at(2027, 7, 15, 9), 'America/New_York').epochMs), '2027-07-15T13:00:00.000Z');
    assert.equal(resolveLocalTime(at(2027, 7, 15, 9), 'America/New_York').utcOffset, '-04:00');
    assert.equal(iso(resolveLocalTime(at(2027, 7, 15, 9), 'Asia/Kolkata').epochMs), '2027-07-15T03:30:00.000Z');
    assert.equal(iso(resolveLocalTime(at(2027, 1, 1, 0), 'Pacific/Chatham').epochMs), '2026-12-31T10:15:00.000Z');
  });

  for (const [zone, gap] of [
    ['America/New_York', at(2027, 3, 14, 2, 30)],
    ['Europe/Berlin', at(2027, 3, 28, 2, 30)],
  ] as const) {
    it(`refuses a local time skipped by the spring-forward change in ${zone}, whatever the disambiguation`, () => {
      for (const d of ['earlier', 'later', 'reject'] as const) rejects(() => resolveLocalTime(gap, zone, d), 'nonexistent_local_time', 'hour');
    });
  }

  it('resolves a repeated local time in New York: earlier (default) = EDT, later = EST, reject → 422', () => {
    const t = at(2027, 11, 7, 1, 30);
    assert.equal(iso(resolveLocalTime(t, 'America/New_York').epochMs), '2027-11-07T05:30:00.000Z');
    assert.equal(iso(resolveLocalTime(t, 'America/New_York', 'earlier').epochMs), '2027-11-07T05:30:00.000Z');
    assert.equal(iso(resolveLocalTime(t, 'America/New_York', 'later').epochMs), '2027-11-07T06:30:00.000Z');
    assert.equal(resolveLocalTime(t, 'America/New_York', 'later').utcOffset, '-05:00');
    assert.equal(resolveLocalTime(t, 'America/New_York').ambiguous, true);
    rejects(() => resolveLocalTime(t, 'America/New_York', 'reject'), 'ambiguous_local_time', 'disambiguation');
  });

  it('resolves a repeated local time in Berlin: earlier = CEST, later = CET, reject → 422', () => {
    const t = at(2027, 10, 31, 2, 30);
    assert.equal(iso(resolveLocalTime(t, 'Europe/Berlin', 'earlier').epochMs), '2027-10-31T00:30:00.000Z');
    assert.equal(iso(resolveLocalTime(t, 'Europe/Berlin', 'later').epochMs), '2027-10-31T01:30:00.000Z');
    rejects(() => resolveLocalTime(t, 'Europe/Berlin', 'reject'), 'ambiguous_local_time', 'disambiguation');
  });

  it('handles the edges of the gap and overlap: the minute before and after exist once', () => {
    assert.equal(iso(resolveLocalTime(at(2027, 3, 14, 1, 59, 59), 'America/New_York', 'reject').epochMs), '2027-03-14T06:59:59.000Z');
    assert.equal(iso(resolveLocalTime(at(2027, 3, 14, 3, 0), 'America/New_York', 'reject').epochMs), '2027-03-14T07:00:00.000Z');
    assert.equal(resolveLocalTime(at(2027, 11, 7, 2, 0), 'America/New_York', 'reject').utcOffset, '-05:00');
    assert.equal(resolveLocalTime(at(2027, 11, 7, 0, 59), 'America/New_York', 'reject').utcOffset, '-04:00');
  });

  it('the 23- and 25-hour days: midnight to midnight spans 23 h in spring and 25 h in autumn', () => {
    for (const [zone, spring, autumn] of [
      ['America/New_York', [2027, 3, 14], [2027, 11, 7]],
      ['Europe/Berlin', [2027, 3, 28], [2027, 10, 31]],
      ['Australia/Sydney', [2027, 10, 3], [2027, 4, 4]],
    ] as const) {
      const span = (d: readonly [number, number, number]) => {
        const next = new Date(Date.UTC(d[0], d[1] - 1, d[2] + 1));
        const end = resolveLocalTime(at(next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate(), 0), zone).epochMs;
        return (end - resolveLocalTime(at(d[0], d[1], d[2], 0), zone).epochMs) / 3_600_000;
      };
      assert.equal(span(spring), 23, `${zone} spring`);
      assert.equal(span(autumn), 25, `${zone} autumn`);
    }
  });

  it('refuses impossible dates naming the field', () => {
    rejects(() => resolveLocalTime(at(2027, 2, 29, 9), 'UTC'), 'invalid_date', 'day');
    rejects(() => resolveLocalTime(at(2027, 4, 31, 9), 'UTC'), 'invalid_date', 'day');
    rejects(() => resolveLocalTime(at(2027, 13, 1, 9), 'UTC'), 'invalid_date', 'month');
    rejects(() => resolveLocalTime(at(2027, 0, 1, 9), 'UTC'), 'invalid_date', 'month');
    rejects(() => resolveLocalTime(at(2027, 1, 1, 24), 'UTC'), 'invalid_date', 'hour');
    rejects(() => resolveLocalTime(at(2027, 1, 1, 1, 60), 'UTC'), 'invalid_date', 'minute');
    rejects(() => resolveLocalTime(at(2027, 1, 1, 1, 0, 60), 'UTC'), 'invalid_date', 'second');
    rejects(() => resolveLocalTime({ ...at(2027, 1, 1, 1), hour: 1.5 }, 'UTC'), 'invalid_date', 'hour');
    assert.equal(iso(resolveLocalTime(at(2028, 2, 29, 9), 'UTC').epochMs), '2028-02-29T09:00:00.000Z');
  });

  it('refuses unknown zones and accepts IANA names and aliases', () => {
    rejects(() => resolveLocalTime(at(2027, 1, 1, 1), 'Mars/Olympus_Mons'), 'unknown_timezone', 'timezone');
    rejects(() => resolveLocalTime(at(2027, 1, 1, 1), ''), 'unknown_timezone', 'timezone');
    rejects(() => resolveLocalTime(at(2027, 1, 1, 1), '+05:00'), 'unknown_timezone', 'timezone');
    assert.ok(isValidZone('Europe/Kyiv'));
    assert.ok(isValidZone('US/Eastern'));
    assert.ok(isValidZone('UTC'));
  });

  it('localTimeAt is the inverse', () => {
    const ms = resolveLocalTime(at(2027, 11, 7, 1, 30), 'America/New_York', 'later').epochMs;
    assert.deepEqual(localTimeAt(ms, 'America/New_York'), { ...at(2027, 11, 7, 1, 30), utcOffset: '-05:00' });
  });
});
