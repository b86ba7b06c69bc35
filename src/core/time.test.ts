import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { Temporal } from '@js-temporal/polyfill';
import { ValidationError } from './errors.ts';
import { canonicalZone, type Disambiguation, isValidZone, localTimeAt, resolveLocalTime, ZONE_CACHE_MAX, zoneCacheSize } from './time.ts';

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
    // Temporal reads a zone out of an ISO date-time; those are offsets in disguise.
    for (const iso of ['2020-01-01T00:00+05:00', '2020-01-01T00:00Z', '2020-01-01T00:00[Europe/Berlin]', 'Europe/Berlin ']) {
      rejects(() => resolveLocalTime(at(2027, 1, 1, 1), iso), 'unknown_timezone', 'timezone');
      assert.equal(isValidZone(iso), false, iso);
    }
    assert.ok(isValidZone('Etc/GMT+5'));
    assert.ok(isValidZone('America/Port-au-Prince'));
    assert.ok(isValidZone('EST5EDT'));
    assert.ok(isValidZone('Europe/Kyiv'));
    assert.equal(canonicalZone('europe/berlin'), 'Europe/Berlin');
    assert.equal(canonicalZone('utc'), 'UTC');
    assert.equal(canonicalZone('US/Eastern'), 'US/Eastern');
    assert.equal(canonicalZone('Mars/Olympus_Mons'), 'Mars/Olympus_Mons');
    assert.ok(isValidZone('US/Eastern'));
    assert.ok(isValidZone('UTC'));
  });

  it('localTimeAt is the inverse', () => {
    const ms = resolveLocalTime(at(2027, 11, 7, 1, 30), 'America/New_York', 'later').epochMs;
    assert.deepEqual(localTimeAt(ms, 'America/New_York'), { ...at(2027, 11, 7, 1, 30), utcOffset: '-05:00' });
  });
});

/**
 * resolveLocalTime and localTimeAt answer most calls from cached Intl offsets instead of
 * Temporal: check them against Temporal itself, every hour of two years and every minute
 * around each offset change, in zones with unusual rules.
 */
describe('the Intl fast path gives the answers of Temporal', () => {
  const zones = [
    'UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kathmandu',
    'Pacific/Chatham', 'America/Santiago', 'Europe/Dublin', 'Africa/Casablanca',
  ];
  const from = Temporal.PlainDateTime.from('2026-01-01T00:00');
  const to = Temporal.PlainDateTime.from('2028-01-01T00:00');

  type Outcome = { epochMs: number; utcOffset: string; ambiguous?: boolean } | { error: string };
  /** What the Temporal-only resolveLocalTime answered, for each disambiguation. */
  function reference(wall: Temporal.PlainDateTime, zone: string): Record<Disambiguation, Outcome> {
    const earlier = wall.toZonedDateTime(zone, { disambiguation: 'earlier' });
    const later = wall.toZonedDateTime(zone, { disambiguation: 'later' });
    if (!earlier.toPlainDateTime().equals(wall)) {
      const gap = { error: 'nonexistent_local_time' };
      return { earlier: gap, later: gap, reject: gap };
    }
    const ambiguous = earlier.epochMilliseconds !== later.epochMilliseconds;
    const pick = (z: Temporal.ZonedDateTime) => ({ epochMs: z.epochMilliseconds, utcOffset: z.offset, ambiguous });
    return { earlier: pick(earlier), later: pick(ambiguous ? later : earlier), reject: ambiguous ? { error: 'ambiguous_local_time' } : pick(earlier) };
  }
  function actual(wall: Temporal.PlainDateTime, zone: string, disambiguation: Disambiguation): Outcome {
    try {
      return resolveLocalTime(at(wall.year, wall.month, wall.day, wall.hour, wall.minute, wall.second), zone, disambiguation);
    } catch (err) {
      if (err instanceof ValidationError) return { error: err.code };
      throw err;
    }
  }
  function same(wall: Temporal.PlainDateTime, zone: string, disambiguations: readonly Disambiguation[]) {
    const expected = reference(wall, zone);
    for (const d of disambiguations) {
      const got = actual(wall, zone, d);
      // The message only on failure: formatting it every time would double the run time.
      if (!isDeepStrictEqual(got, expected[d])) assert.deepEqual(got, expected[d], `${wall.toString()} ${zone} ${d}`);
    }
  }
  /** The local times at which the zone changes its offset, in [from, to). */
  function transitions(zone: string): Temporal.PlainDateTime[] {
    const found: Temporal.PlainDateTime[] = [];
    let z: Temporal.ZonedDateTime | null = from.toZonedDateTime(zone);
    while ((z = z.getTimeZoneTransition('next')) && Temporal.PlainDateTime.compare(z.toPlainDateTime(), to) < 0) found.push(z.toPlainDateTime());
    return found;
  }

  for (const zone of zones) {
    it(`${zone}: every hour of 2026 and 2027, every minute around each change, and localTimeAt`, () => {
      // Every hour: the instant and the offset (or the gap). Whether a time is ambiguous, and
      // what 'later' and 'reject' do, is checked around each change below, where it can happen.
      for (let ms = Date.UTC(2026, 0, 1); ms < Date.UTC(2028, 0, 1); ms += 3_600_000) {
        const d = new Date(ms);
        const local = at(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours());
        const wall = new Temporal.PlainDateTime(local.year, local.month, local.day, local.hour);
        const z = wall.toZonedDateTime(zone, { disambiguation: 'earlier' });
        const expected: Outcome = z.toPlainDateTime().equals(wall) ? { epochMs: z.epochMilliseconds, utcOffset: z.offset } : { error: 'nonexistent_local_time' };
        let got: Outcome;
        try {
          const r = resolveLocalTime(local, zone);
          got = { epochMs: r.epochMs, utcOffset: r.utcOffset };
        } catch (err) {
          got = { error: (err as ValidationError).code };
        }
        if (!isDeepStrictEqual(got, expected)) assert.deepEqual(got, expected, `${wall.toString()} ${zone}`);
      }
      const changes = transitions(zone);
      if (zone !== 'UTC' && zone !== 'Asia/Kathmandu') assert.ok(changes.length >= 2, `${zone} changes its offset`);
      for (const change of changes) {
        for (let wall = change.subtract({ hours: 3 }); Temporal.PlainDateTime.compare(wall, change.add({ hours: 3 })) <= 0; wall = wall.add({ minutes: 1 })) {
          same(wall, zone, ['earlier', 'later', 'reject']);
        }
      }
      // localTimeAt: every third hour, and every minute (with a few milliseconds) around each change.
      const instants: number[] = [];
      for (let ms = Date.UTC(2026, 0, 1); ms < Date.UTC(2028, 0, 1); ms += 3 * 3_600_000) instants.push(ms);
      for (const change of changes) {
        const ms = change.toZonedDateTime(zone).epochMilliseconds;
        for (let t = ms - 10_800_000; t <= ms + 10_800_000; t += 60_000) instants.push(t - 1, t, t + 999);
      }
      for (const ms of instants) {
        const t = Temporal.Instant.fromEpochMilliseconds(ms).toZonedDateTimeISO(zone);
        const p = t.toPlainDateTime(); // each getter of a ZonedDateTime converts again: convert once
        const expected = { year: p.year, month: p.month, day: p.day, hour: p.hour, minute: p.minute, second: p.second, utcOffset: t.offset };
        const got = localTimeAt(ms, zone);
        if (!isDeepStrictEqual(got, expected)) assert.deepEqual(got, expected, `${new Date(ms).toISOString()} ${zone}`);
      }
    });
  }

  it('writes offsets with seconds as Temporal does (Monrovia was UTC-00:44:30 until 1972)', () => {
    const r = resolveLocalTime(at(1971, 6, 1, 12), 'Africa/Monrovia');
    assert.equal(r.utcOffset, '-00:44:30');
    assert.equal(iso(r.epochMs), '1971-06-01T12:44:30.000Z');
    assert.equal(localTimeAt(r.epochMs, 'Africa/Monrovia').utcOffset, '-00:44:30');
    assert.equal(resolveLocalTime(at(2027, 6, 1, 12), 'Africa/Monrovia').utcOffset, '+00:00');
  });

  it('takes zone names in any case and aliases, like Temporal, and keeps its cache bounded', () => {
    assert.equal(iso(resolveLocalTime(at(2027, 7, 15, 9), 'america/new_york').epochMs), '2027-07-15T13:00:00.000Z');
    assert.equal(iso(resolveLocalTime(at(2027, 7, 15, 9), 'US/Eastern').epochMs), '2027-07-15T13:00:00.000Z');
    assert.equal(resolveLocalTime(at(2027, 7, 15, 9), 'Etc/UTC').utcOffset, '+00:00');
    // A client varying the case of a name must not grow the cache without end.
    const name = 'America/Argentina/ComodRivadavia';
    for (let i = 0; i < ZONE_CACHE_MAX + 100; i++) {
      const spelled = [...name].map((c, k) => ((i >> (k % 20)) & 1 ? c.toUpperCase() : c.toLowerCase())).join('');
      assert.ok(isValidZone(spelled), spelled);
    }
    assert.ok(zoneCacheSize() <= ZONE_CACHE_MAX);
    rejects(() => resolveLocalTime(at(2027, 1, 1, 1), '-03:00'), 'unknown_timezone', 'timezone');
  });

  it('localTimeAt still takes what only Temporal handles: fixed offsets, instants before 1970', () => {
    assert.deepEqual(localTimeAt(0, '+05:00'), { ...at(1970, 1, 1, 5), utcOffset: '+05:00' });
    assert.deepEqual(localTimeAt(-86_400_000, 'Europe/Berlin'), { ...at(1969, 12, 31, 1), utcOffset: '+01:00' });
    assert.throws(() => localTimeAt(0, 'Mars/Olympus_Mons'), RangeError);
  });
});
