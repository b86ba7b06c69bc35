/** The materializer's plan: a pure function of (schedule, now, limits). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ScheduleRow } from '../db/sql/schedules.ts';
import { planMaterialization } from './occurrences.ts';

const T0 = Date.parse('2026-06-01T12:00:00Z');
const limits = { horizonMs: 86_400_000, maxAhead: 100, maxMissed: 100 };

function schedule(over: Partial<ScheduleRow> = {}): ScheduleRow {
  return {
    id: 's1', team_id: 't1', app_id: 'a1', app_name: 'api', dependency_app_id: null, dependency_app_name: null, dependency_lead_seconds: 900,
    expires_after_seconds: 3600, cron: '0 * * * *', timezone: 'UTC', dst_gap: 'shift', dst_overlap: 'first', starts_at: null, ends_at: null,
    paused: false, generation: 1, materialized_until: new Date(T0), materialize_at: new Date(T0), created_by: 'u1',
    created_at: new Date(T0), updated_at: new Date(T0), cursor_at: '', ...over,
  };
}
const iso = (ms: number) => new Date(ms).toISOString();

describe('planMaterialization', () => {
  it('an hourly schedule: the next 24 h become rows, and it comes back when the 25th enters the horizon', () => {
    const p = planMaterialization(schedule(), T0, limits);
    assert.equal(p.rows.length, 24);
    assert.equal(iso(p.rows[0].runAt), '2026-06-01T13:00:00.000Z');
    assert.equal(iso(p.rows[23].runAt), '2026-06-02T12:00:00.000Z');
    assert.ok(p.rows.every((r) => r.state === 'scheduled' && r.role === 'occurrence' && r.leadSeconds === null));
    assert.equal(iso(p.materializedUntil), '2026-06-02T12:00:00.000Z');
    assert.equal(iso(p.materializeAt!), '2026-06-01T13:00:00.000Z', 'when 2026-06-02T13:00 is 24 h away');
    // Next time round nothing is repeated: it starts after materialized_until.
    const again = planMaterialization(schedule({ materialized_until: new Date(p.materializedUntil) }), p.materializeAt!, limits);
    assert.deepEqual(again.rows.map((r) => iso(r.runAt)), ['2026-06-02T13:00:00.000Z']);
  });

  it('every 5 seconds: at most maxAhead rows, refilled when about half ran', () => {
    const s = schedule({ cron: '*/5 * * * * *' });
    const p = planMaterialization(s, T0, limits);
    assert.equal(p.rows.length, 100);
    assert.equal(iso(p.materializedUntil), iso(T0 + 500_000));
    assert.equal(iso(p.materializeAt!), iso(T0 + 50 * 5000));
    const refill = planMaterialization(schedule({ cron: '*/5 * * * * *', materialized_until: new Date(p.materializedUntil) }), p.materializeAt!, limits);
    assert.equal(refill.rows.length, 50, '50 still ahead, 50 more');
    assert.equal(iso(refill.rows[0].runAt), iso(T0 + 505_000));
  });

  it('a dependency row per occurrence, lead before, within the horizon plus the lead', () => {
    const p = planMaterialization(schedule({ dependency_app_id: 'a2', dependency_lead_seconds: 900 }), T0, limits);
    const occ = p.rows.filter((r) => r.role === 'occurrence');
    const deps = p.rows.filter((r) => r.role === 'dependency');
    assert.equal(occ.length, 24);
    assert.equal(deps.length, 24);
    for (let i = 0; i < occ.length; i++) {
      assert.equal(deps[i].runAt, occ[i].runAt - 900_000);
      assert.equal(deps[i].occurrenceAt, occ[i].runAt);
      assert.equal(deps[i].appId, 'a2');
      assert.equal(occ[i].leadSeconds, 900);
    }
  });

  it('respects starts_at and ends_at, and stops when the schedule ended', () => {
    const p = planMaterialization(schedule({ starts_at: new Date('2026-06-01T20:00:00Z'), ends_at: new Date('2026-06-01T23:00:00Z') }), T0, limits);
    assert.deepEqual(p.rows.map((r) => iso(r.runAt)), ['2026-06-01T20:00:00.000Z', '2026-06-01T21:00:00.000Z', '2026-06-01T22:00:00.000Z', '2026-06-01T23:00:00.000Z']);
    assert.equal(p.materializeAt, null, 'ended: never looked at again');
    const far = planMaterialization(schedule({ starts_at: new Date('2026-07-01T00:00:00Z') }), T0, limits);
    assert.equal(far.rows.length, 0);
    assert.equal(iso(far.materializeAt!), '2026-06-30T00:00:00.000Z', '24 h before the first run');
  });

  it('after downtime: instants past their expiry are recorded missed; only the latest still within its expiry runs', () => {
    // Down from 12:00 to 15:30, hourly, expiry 1 h: 13:00 and 14:00 expired, 15:00 is 30 min late but within.
    const now = Date.parse('2026-06-01T15:30:00Z');
    const p = planMaterialization(schedule(), now, limits);
    const past = p.rows.filter((r) => r.runAt <= now);
    assert.deepEqual(past.map((r) => [iso(r.runAt), r.state]), [
      ['2026-06-01T13:00:00.000Z', 'missed'], ['2026-06-01T14:00:00.000Z', 'missed'], ['2026-06-01T15:00:00.000Z', 'scheduled'],
    ]);
    assert.match(past[0].error!, /expires_after_seconds/);
    // With a long expiry, the earlier late ones are superseded by the latest: never a burst of late runs.
    const long = planMaterialization(schedule({ expires_after_seconds: 86_400 }), now, limits);
    assert.deepEqual(long.rows.filter((r) => r.runAt <= now).map((r) => r.state), ['missed', 'missed', 'scheduled']);
    assert.match(long.rows[0].error!, /superseded by the occurrence at 2026-06-01T15:00:00.000Z/);
    assert.ok(p.rows.filter((r) => r.runAt > now).every((r) => r.state === 'scheduled'));
  });

  it('after a long downtime: at most maxMissed recorded, one says how far the gap went, then on with the next', () => {
    const now = T0 + 86_400_000; // a day of every 5 seconds: 17,280 occurrences
    const p = planMaterialization(schedule({ cron: '*/5 * * * * *' }), now, limits);
    const missed = p.rows.filter((r) => r.state === 'missed');
    assert.equal(missed.length, 100);
    assert.ok(p.overflowed);
    assert.match(missed[99].message, /Every later occurrence up to .* not recorded one by one \(at most 100 per catch-up: SHIPCLOCK_SCHEDULE_MAX_MISSED\)/);
    const ahead = p.rows.filter((r) => r.state === 'scheduled');
    assert.equal(ahead.length, 100);
    assert.ok(ahead.every((r) => r.runAt > now), 'nothing late runs');
  });

  it('the DST notes reach the event text', () => {
    const now = Date.parse('2027-03-13T12:00:00Z');
    const p = planMaterialization(schedule({ cron: '30 2 * * *', timezone: 'America/New_York', materialized_until: new Date(now) }), now, limits);
    assert.equal(p.rows.length, 1);
    assert.match(p.rows[0].message, /shifted \(DST gap\)/);
    assert.deepEqual([p.rows[0].local.hour, p.rows[0].local.minute, p.rows[0].utcOffset], [3, 30, '-04:00']);
  });
});
