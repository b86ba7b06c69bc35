import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Temporal } from '@js-temporal/polyfill';
import { ValidationError } from './errors.ts';
import {
  CronError, type DstGapPolicy, type DstOverlapPolicy, NOTE_REPEATED, NOTE_SHIFTED, nextOccurrence, type Occurrence, occurrences, parseCron,
} from './recurrence.ts';

const iso = (ms: number) => new Date(ms).toISOString();
const utc = (s: string) => Date.parse(s);
const hm = (o: Occurrence) => `${String(o.local.hour).padStart(2, '0')}:${String(o.local.minute).padStart(2, '0')}`;

/** Local midnight to local midnight of one day in a zone, as instants. */
function dayBounds(zone: string, date: string): [number, number] {
  const d = Temporal.PlainDate.from(date);
  return [d.toZonedDateTime(zone).epochMilliseconds, d.add({ days: 1 }).toZonedDateTime(zone).epochMilliseconds];
}

/** The occurrences within one local day (from its midnight, inclusive, to the next, exclusive). */
function onDay(cron: string, zone: string, date: string, dstGap: DstGapPolicy, dstOverlap: DstOverlapPolicy): Occurrence[] {
  const [start, end] = dayBounds(zone, date);
  return occurrences({ cron, timezone: zone, dstGap, dstOverlap }, start - 1, { untilMs: end - 1 });
}

function assertIncreasing(list: Occurrence[]): void {
  for (let i = 1; i < list.length; i++) assert.ok(list[i].epochMs > list[i - 1].epochMs, `strictly increasing at ${i}: ${iso(list[i - 1].epochMs)} then ${iso(list[i].epochMs)}`);
}

/** Every occurrence's local time and offset agree with its instant. */
function assertConsistent(list: Occurrence[], zone: string): void {
  for (const o of list) {
    const z = Temporal.Instant.fromEpochMilliseconds(o.epochMs).toZonedDateTimeISO(zone);
    assert.deepEqual(o.local, { year: z.year, month: z.month, day: z.day, hour: z.hour, minute: z.minute, second: z.second });
    assert.equal(o.utcOffset, z.offset);
  }
}

describe('parseCron', () => {
  it('takes 5 fields, or 6 with seconds first', () => {
    assert.deepEqual(parseCron('30 9 * * 1-5'), { expr: '30 9 * * 1-5', seconds: false });
    assert.deepEqual(parseCron(' */5 * * * * * '), { expr: '*/5 * * * * *', seconds: true });
    assert.equal(parseCron('0 16 * * FRI').seconds, false);
  });

  it('refuses anything else with CronError: 422 invalid_cron naming the field', () => {
    for (const bad of ['', '* * * *', '* * * * * * *', '61 * * * *', '0 25 * * *', 'a b c d e', '0 0 32 * *', '0 0 * 13 *', 'x'.repeat(201)]) {
      assert.throws(() => parseCron(bad), (e: unknown) => e instanceof CronError && e instanceof ValidationError && e.code === 'invalid_cron' && e.field === 'cron' && e.status === 422, bad);
    }
    assert.throws(() => parseCron('61 * * * *', 'recurrence.cron'), (e: unknown) => e instanceof CronError && e.field === 'recurrence.cron');
  });
});

describe('occurrences: ordinary days', () => {
  it('a weekday train at 09:30 Berlin: winter and summer offsets, weekends left out', () => {
    const list = occurrences({ cron: '30 9 * * 1-5', timezone: 'Europe/Berlin' }, utc('2026-03-26T00:00:00Z'), { count: 5 });
    assert.deepEqual(list.map((o) => iso(o.epochMs)), [
      '2026-03-26T08:30:00.000Z', // Thu, CET
      '2026-03-27T08:30:00.000Z', // Fri
      '2026-03-30T07:30:00.000Z', // Mon, CEST (the change was on Sunday the 29th)
      '2026-03-31T07:30:00.000Z',
      '2026-04-01T07:30:00.000Z',
    ]);
    assert.deepEqual(list.map((o) => o.utcOffset), ['+01:00', '+01:00', '+02:00', '+02:00', '+02:00']);
    assert.ok(list.every((o) => hm(o) === '09:30' && o.note === undefined));
  });

  it('is strictly after `from`, and `untilMs` is inclusive', () => {
    const spec = { cron: '0 12 * * *', timezone: 'UTC' };
    assert.equal(iso(nextOccurrence(spec, utc('2026-01-01T12:00:00Z'))!.epochMs), '2026-01-02T12:00:00.000Z');
    assert.equal(iso(nextOccurrence(spec, utc('2026-01-01T11:59:59.999Z'))!.epochMs), '2026-01-01T12:00:00.000Z');
    assert.equal(occurrences(spec, utc('2026-01-01T00:00:00Z'), { untilMs: utc('2026-01-03T12:00:00Z') }).length, 3);
    assert.equal(occurrences(spec, utc('2026-01-01T00:00:00Z'), { untilMs: utc('2026-01-03T11:59:59Z') }).length, 2);
  });

  it('6 fields: every 5 seconds', () => {
    const list = occurrences({ cron: '*/5 * * * * *', timezone: 'America/New_York' }, utc('2026-06-01T12:00:01Z'), { count: 3 });
    assert.deepEqual(list.map((o) => iso(o.epochMs)), ['2026-06-01T12:00:05.000Z', '2026-06-01T12:00:10.000Z', '2026-06-01T12:00:15.000Z']);
  });

  it('an expression that never matches gives nothing (the caller answers "would never fire")', () => {
    assert.equal(nextOccurrence({ cron: '0 0 30 2 *', timezone: 'Europe/Berlin' }, utc('2026-01-01T00:00:00Z')), null);
    assert.equal(nextOccurrence({ cron: '0 0 31 4 *', timezone: 'UTC' }, utc('2026-01-01T00:00:00Z')), null);
    // Rare but real: February 29, every 4 years (8 across 2100).
    assert.equal(iso(nextOccurrence({ cron: '0 0 29 2 *', timezone: 'UTC' }, utc('2026-01-01T00:00:00Z'))!.epochMs), '2028-02-29T00:00:00.000Z');
    assert.equal(iso(nextOccurrence({ cron: '0 0 29 2 *', timezone: 'UTC' }, utc('2097-01-01T00:00:00Z'))!.epochMs), '2104-02-29T00:00:00.000Z');
  });

  it('refuses an unknown zone and an invalid expression with 422s naming their fields', () => {
    assert.throws(() => occurrences({ cron: '0 9 * * *', timezone: 'Mars/Olympus' }, 0, { count: 1 }), (e: unknown) => e instanceof ValidationError && e.code === 'unknown_timezone' && e.field === 'timezone');
    assert.throws(() => occurrences({ cron: '0 9 * *', timezone: 'UTC' }, 0, { count: 1 }), (e: unknown) => e instanceof CronError && e.field === 'cron');
  });
});

/**
 * The 23- and 25-hour days. For each zone: the spring-forward day (gap) and the fall-back day
 * (overlap), with every-5-minutes, hourly and daily crons, for both policies.
 */
const ZONES = [
  // zone, gap day, first wall time skipped, gap minutes, overlap day, first repeated wall time, overlap minutes
  { zone: 'America/New_York', gapDay: '2026-03-08', gapAt: '02:00', gapMin: 60, overlapDay: '2026-11-01', overlapAt: '01:00', overlapMin: 60 },
  { zone: 'Europe/Berlin', gapDay: '2026-03-29', gapAt: '02:00', gapMin: 60, overlapDay: '2026-10-25', overlapAt: '02:00', overlapMin: 60 },
  // Lord Howe Island moves its clocks by 30 minutes: 02:00 → 02:30 in October, 02:00 → 01:30 in April.
  { zone: 'Australia/Lord_Howe', gapDay: '2026-10-04', gapAt: '02:00', gapMin: 30, overlapDay: '2026-04-05', overlapAt: '01:30', overlapMin: 30 },
] as const;

const addMin = (at: string, min: number) => {
  const [h, m] = at.split(':').map(Number);
  const t = h * 60 + m + min;
  return `${String(Math.floor(t / 60)).padStart(2, '0')}:${String(t % 60).padStart(2, '0')}`;
};

for (const z of ZONES) {
  describe(`occurrences in ${z.zone}`, () => {
    it(`the ${24 * 60 - z.gapMin}-minute day (${z.gapDay}) is that long`, () => {
      const [a, b] = dayBounds(z.zone, z.gapDay);
      assert.equal((b - a) / 60_000, 24 * 60 - z.gapMin);
      const [c, d] = dayBounds(z.zone, z.overlapDay);
      assert.equal((d - c) / 60_000, 24 * 60 + z.overlapMin);
    });

    for (const gap of ['shift', 'skip'] as const) {
      it(`spring forward, every 5 minutes, dst_gap ${gap}: one run per 5 minutes of real time, none twice`, () => {
        const list = onDay('*/5 * * * *', z.zone, z.gapDay, gap, 'first');
        // A shifted wall time lands on a real one (02:05 → 03:05), which wins: same runs either way.
        assert.equal(list.length, (24 * 60 - z.gapMin) / 5);
        assertIncreasing(list);
        assertConsistent(list, z.zone);
        for (let i = 1; i < list.length; i++) assert.equal(list[i].epochMs - list[i - 1].epochMs, 300_000);
        assert.ok(list.every((o) => o.note === undefined), 'every run is a real match, none only shifted');
      });

      it(`spring forward, hourly, dst_gap ${gap}`, () => {
        const list = onDay('0 * * * *', z.zone, z.gapDay, gap, 'first');
        assertIncreasing(list);
        assertConsistent(list, z.zone);
        if (z.gapMin === 60) {
          // 02:00 does not exist; shifted it is 03:00, which runs anyway: 23 runs either way.
          assert.equal(list.length, 23);
          assert.ok(!list.some((o) => o.note));
        } else {
          // Lord Howe: 02:00 does not exist; shifted by the 30-minute gap it is 02:30 (a run of its own), skipped it is gone.
          assert.equal(list.length, gap === 'shift' ? 24 : 23);
          const shifted = list.filter((o) => o.note === NOTE_SHIFTED);
          assert.deepEqual(shifted.map(hm), gap === 'shift' ? ['02:30'] : []);
        }
        assert.ok(!list.some((o) => hm(o) === z.gapAt), 'the skipped wall time never appears as such');
      });

      it(`spring forward, daily at a time in the gap, dst_gap ${gap}: ${gap === 'shift' ? 'moved forward by the gap' : 'no run that day'}`, () => {
        const at = addMin(z.gapAt, 15);
        const [h, m] = at.split(':').map(Number);
        const cron = `${m} ${h} * * *`;
        const list = onDay(cron, z.zone, z.gapDay, gap, 'first');
        if (gap === 'skip') assert.equal(list.length, 0);
        else {
          assert.equal(list.length, 1);
          assert.equal(hm(list[0]), addMin(at, z.gapMin));
          assert.equal(list[0].note, NOTE_SHIFTED);
        }
        // The days around run at their wall time, once each.
        const [start] = dayBounds(z.zone, z.gapDay);
        const week = occurrences({ cron, timezone: z.zone, dstGap: gap }, start - 3 * 86_400_000, { untilMs: start + 4 * 86_400_000 });
        assert.equal(week.length, gap === 'skip' ? 6 : 7);
        assertIncreasing(week);
        assert.ok(week.filter((o) => o.note !== NOTE_SHIFTED).every((o) => hm(o) === at));
      });
    }

    for (const overlap of ['first', 'both'] as const) {
      const n = z.overlapMin / 5;
      it(`fall back, every 5 minutes, dst_overlap ${overlap}: ${overlap === 'first' ? 'each wall time once' : 'each instant of the repeated wall times'}`, () => {
        const list = onDay('*/5 * * * *', z.zone, z.overlapDay, 'shift', overlap);
        assert.equal(list.length, 24 * 12 + (overlap === 'both' ? n : 0));
        assertIncreasing(list);
        assertConsistent(list, z.zone);
        const repeated = list.filter((o) => o.note === NOTE_REPEATED);
        assert.equal(repeated.length, overlap === 'both' ? 2 * n : n);
        assert.equal(repeated[0].local.hour * 60 + repeated[0].local.minute, Number(z.overlapAt.slice(0, 2)) * 60 + Number(z.overlapAt.slice(3)));
        if (overlap === 'first') {
          // The repeated stretch runs once, on the earlier offset, and then there is a pause as long as the overlap.
          const lastRepeated = repeated[repeated.length - 1];
          const next = list[list.indexOf(lastRepeated) + 1];
          assert.equal(next.epochMs - lastRepeated.epochMs, 300_000 + z.overlapMin * 60_000);
        } else {
          for (let i = 1; i < list.length; i++) assert.equal(list[i].epochMs - list[i - 1].epochMs, 300_000, 'every 5 minutes of real time');
        }
      });

      it(`fall back, hourly at :45, dst_overlap ${overlap}`, () => {
        const list = onDay('45 * * * *', z.zone, z.overlapDay, 'shift', overlap);
        assertIncreasing(list);
        assertConsistent(list, z.zone);
        // One hourly wall time (xx:45) falls in the repeated stretch, in every one of these zones.
        assert.equal(list.length, overlap === 'both' ? 25 : 24);
        const repeated = list.filter((o) => o.note === NOTE_REPEATED);
        assert.equal(repeated.length, overlap === 'both' ? 2 : 1);
        if (overlap === 'both') assert.equal(repeated[1].epochMs - repeated[0].epochMs, z.overlapMin * 60_000);
      });

      it(`fall back, daily at a repeated time, dst_overlap ${overlap}`, () => {
        const at = addMin(z.overlapAt, 15);
        const [h, m] = at.split(':').map(Number);
        const list = onDay(`${m} ${h} * * *`, z.zone, z.overlapDay, 'shift', overlap);
        assert.equal(list.length, overlap === 'both' ? 2 : 1);
        assert.ok(list.every((o) => hm(o) === at && o.note === NOTE_REPEATED));
        if (overlap === 'both') assert.equal(list[1].epochMs - list[0].epochMs, z.overlapMin * 60_000);
      });
    }

    it('from inside the repeated stretch: "both" gives the rest of the second pass, "first" the first wall time after it', () => {
      const [start] = dayBounds(z.zone, z.overlapDay);
      const all = onDay('*/5 * * * *', z.zone, z.overlapDay, 'shift', 'both');
      const repeated = all.filter((o) => o.note === NOTE_REPEATED);
      const secondPass = repeated.slice(repeated.length / 2);
      const from = secondPass[0].epochMs; // the first wall time of the stretch, its second instant
      const both = occurrences({ cron: '*/5 * * * *', timezone: z.zone, dstOverlap: 'both' }, from, { count: 2 });
      assert.deepEqual(both.map((o) => o.epochMs), [secondPass[1].epochMs, secondPass[2].epochMs]);
      const first = occurrences({ cron: '*/5 * * * *', timezone: z.zone, dstOverlap: 'first' }, from, { count: 1 });
      assert.equal(first[0].epochMs, secondPass[secondPass.length - 1].epochMs + 300_000);
      assert.ok(start < from);
    });
  });
}

describe('occurrences: bounds', () => {
  it('stops at count, and at untilMs', () => {
    const spec = { cron: '*/5 * * * * *', timezone: 'Europe/Berlin' };
    assert.equal(occurrences(spec, utc('2026-01-01T00:00:00Z'), { count: 100 }).length, 100);
    assert.equal(occurrences(spec, utc('2026-01-01T00:00:00Z'), { count: 1000, untilMs: utc('2026-01-01T00:01:00Z') }).length, 12);
    assert.deepEqual(occurrences(spec, utc('2026-01-01T00:00:00Z'), { count: 0 }), []);
    assert.throws(() => occurrences(spec, 0, {}), /count or an untilMs/);
  });
});
