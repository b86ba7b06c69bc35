/**
 * The materializer on real PostgreSQL, with a chosen "now": the 23- and 25-hour days of New
 * York, Berlin and Lord Howe Island become the right deployment rows for both policies; two
 * materializers working from the same stale view write each row once; downtime is recorded
 * missed once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Temporal } from '@js-temporal/polyfill';
import { inTransaction } from '../src/db/pool.ts';
import { getSchedule, insertSchedule, type ScheduleRow } from '../src/db/sql/schedules.ts';
import { materializeSchedules } from '../src/scheduler/occurrences.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';

// 26 h: the 25-hour day fits.
const limits = { horizonMs: 26 * 3_600_000, maxAhead: 1000, maxMissed: 100 };

describe('materializing occurrences on PostgreSQL', () => {
  let db: TestDatabase;
  let team: string;
  let user: string;
  let app: string;
  let dep: string;

  before(async () => {
    db = await createTestDatabase();
    team = (await db.pool.query(`INSERT INTO teams (name) VALUES ('t') RETURNING id`)).rows[0].id;
    user = (await db.pool.query(`INSERT INTO users (email, password_hash, team_id, role) VALUES ('u@example.com', 'x', $1, 'owner') RETURNING id`, [team])).rows[0].id;
    const mk = async (name: string) => (await db.pool.query(`INSERT INTO apps (team_id, name, target) VALUES ($1, $2, '{"type":"webhook","url":"http://127.0.0.1:9/"}') RETURNING id`, [team, name])).rows[0].id;
    app = await mk('api');
    dep = await mk('db');
  });
  after(() => db.drop());

  async function newSchedule(cron: string, timezone: string, startMs: number, extra: Partial<{ dst_gap: 'shift' | 'skip'; dst_overlap: 'first' | 'both'; dependency_app_id: string; dependency_lead_seconds: number; expires_after_seconds: number }> = {}): Promise<ScheduleRow> {
    const id = await insertSchedule(db.pool, {
      team_id: team, app_id: app, dependency_app_id: extra.dependency_app_id ?? null, dependency_lead_seconds: extra.dependency_lead_seconds ?? 900,
      expires_after_seconds: extra.expires_after_seconds ?? 3600, cron, timezone, dst_gap: extra.dst_gap ?? 'shift', dst_overlap: extra.dst_overlap ?? 'first',
      starts_at: null, ends_at: null, paused: false, created_by: user, materialized_until: new Date(startMs),
    });
    return (await getSchedule(db.pool, team, id))!;
  }
  const rowsOf = async (id: string) => (await db.pool.query(
    `SELECT run_at, state, local_hour AS h, local_minute AS m, utc_offset, schedule_role, error FROM deployments WHERE schedule_id = $1 ORDER BY run_at, schedule_role`, [id])).rows;
  const materialize = (s: ScheduleRow, nowMs: number) => inTransaction(db.pool, (c) => materializeSchedules(c, [s], nowMs, limits));
  const hm = (r: { h: number; m: number }) => `${String(r.h).padStart(2, '0')}:${String(r.m).padStart(2, '0')}`;

  const zones = [
    { zone: 'America/New_York', gapDay: '2027-03-14', gapAt: [2, 15], gapMin: 60, overlapDay: '2027-11-07', overlapAt: [1, 15], overlapMin: 60 },
    { zone: 'Europe/Berlin', gapDay: '2027-03-28', gapAt: [2, 15], gapMin: 60, overlapDay: '2027-10-31', overlapAt: [2, 15], overlapMin: 60 },
    { zone: 'Australia/Lord_Howe', gapDay: '2027-10-03', gapAt: [2, 15], gapMin: 30, overlapDay: '2027-04-04', overlapAt: [1, 45], overlapMin: 30 },
  ];
  const midnight = (zone: string, day: string) => Temporal.PlainDate.from(day).toZonedDateTime(zone).epochMilliseconds;

  for (const z of zones) {
    for (const gap of ['shift', 'skip'] as const) {
      it(`${z.zone}, spring forward, dst_gap ${gap}: the daily run at a skipped time ${gap === 'shift' ? 'moves forward by the gap' : 'is left out'}; every 5 minutes is every 5 minutes`, async () => {
        const start = midnight(z.zone, z.gapDay);
        const daily = await newSchedule(`${z.gapAt[1]} ${z.gapAt[0]} * * *`, z.zone, start - 1, { dst_gap: gap });
        await materialize(daily, start - 1);
        const end = midnight(z.zone, Temporal.PlainDate.from(z.gapDay).add({ days: 1 }).toString());
        const rows = (await rowsOf(daily.id)).filter((r) => r.run_at.getTime() < end);
        const first = rows[0];
        if (gap === 'shift') {
          assert.equal(hm(first), `${String(z.gapAt[0] + Math.floor((z.gapAt[1] + z.gapMin) / 60)).padStart(2, '0')}:${String((z.gapAt[1] + z.gapMin) % 60).padStart(2, '0')}`);
          assert.equal(rows.length, 1);
        } else assert.equal(rows.length, 0, 'no run that day');
        const every5 = await newSchedule('*/5 * * * *', z.zone, start - 1, { dst_gap: gap });
        await materialize(every5, start - 1);
        const r5 = (await rowsOf(every5.id)).filter((r) => r.run_at.getTime() < end);
        assert.equal(r5.length, (24 * 60 - z.gapMin) / 5);
        for (let i = 1; i < r5.length; i++) assert.equal(r5[i].run_at.getTime() - r5[i - 1].run_at.getTime(), 300_000);
      });
    }
    for (const overlap of ['first', 'both'] as const) {
      it(`${z.zone}, fall back, dst_overlap ${overlap}: the daily run at a repeated time runs ${overlap === 'first' ? 'once, at the earlier instant' : 'at both instants'}`, async () => {
        const start = midnight(z.zone, z.overlapDay);
        const daily = await newSchedule(`${z.overlapAt[1]} ${z.overlapAt[0]} * * *`, z.zone, start - 1, { dst_overlap: overlap });
        await materialize(daily, start - 1);
        const end = midnight(z.zone, Temporal.PlainDate.from(z.overlapDay).add({ days: 1 }).toString());
        const rows = (await rowsOf(daily.id)).filter((r) => r.run_at.getTime() < end);
        assert.equal(rows.length, overlap === 'both' ? 2 : 1);
        assert.ok(rows.every((r) => hm(r) === `${String(z.overlapAt[0]).padStart(2, '0')}:${String(z.overlapAt[1]).padStart(2, '0')}`));
        if (overlap === 'both') {
          assert.equal(rows[1].run_at.getTime() - rows[0].run_at.getTime(), z.overlapMin * 60_000);
          assert.notEqual(rows[0].utc_offset, rows[1].utc_offset);
        }
        const every5 = await newSchedule('*/5 * * * *', z.zone, start - 1, { dst_overlap: overlap });
        await materialize(every5, start - 1);
        const r5 = (await rowsOf(every5.id)).filter((r) => r.run_at.getTime() < end);
        assert.equal(r5.length, 24 * 12 + (overlap === 'both' ? z.overlapMin / 5 : 0));
      });
    }
  }

  it('two materializers planning from the same stale view write each row once (the unique index, ON CONFLICT DO NOTHING), the dependency pair with lead 0 too', async () => {
    const now = Date.parse('2031-01-01T00:00:00Z');
    const s = await newSchedule('*/5 * * * * *', 'UTC', now, { dependency_app_id: dep, dependency_lead_seconds: 0 });
    const n = await Promise.all([materialize(s, now), materialize(s, now), materialize(s, now + 2000)]);
    const rows = await rowsOf(s.id);
    assert.equal(rows.length, 2 * 1000, `1,000 occurrences × 2 roles, written ${n.join(' + ')}`);
    assert.equal(n.reduce((a, b) => a + b, 0), 2000, 'the losers wrote nothing');
    const events = await db.pool.query(`SELECT count(*)::int AS n FROM deployment_events e JOIN deployments d ON d.id = e.deployment_id WHERE d.schedule_id = $1`, [s.id]);
    assert.equal(events.rows[0].n, 2000, 'one event per row written');
    await assert.rejects(db.pool.query(
      `INSERT INTO deployments (team_id, app_id, run_at, timezone, local_year, local_month, local_day, local_hour, local_minute, local_second, utc_offset,
          expires_after_seconds, expires_at, schedule_id, schedule_generation, schedule_role, occurrence_at)
       SELECT team_id, app_id, run_at, timezone, local_year, local_month, local_day, local_hour, local_minute, local_second, utc_offset,
          expires_after_seconds, expires_at, schedule_id, schedule_generation, schedule_role, occurrence_at
         FROM deployments WHERE schedule_id = $1 LIMIT 1`, [s.id]), /deployments_schedule_occurrence_key/);
  });

  it('downtime over three occurrences: recorded missed once each, even when two processes catch up at once', async () => {
    const t0 = Date.parse('2031-02-01T00:00:00Z');
    const s = await newSchedule('*/10 * * * * *', 'UTC', t0, { expires_after_seconds: 3 });
    const now = t0 + 35_000; // 00:00:10, :20, :30 passed (and expired) while nothing ran
    await Promise.all([materialize(s, now), materialize(s, now)]);
    const rows = await rowsOf(s.id);
    const missed = rows.filter((r) => r.state === 'missed');
    assert.deepEqual(missed.map((r) => r.run_at.toISOString()), ['2031-02-01T00:00:10.000Z', '2031-02-01T00:00:20.000Z', '2031-02-01T00:00:30.000Z']);
    assert.ok(missed.every((r) => /expires_after_seconds/.test(r.error)));
    assert.ok(rows.filter((r) => r.state === 'scheduled').every((r) => r.run_at.getTime() > now), 'carries on with the next');
    const events = await db.pool.query(`SELECT e.state FROM deployment_events e JOIN deployments d ON d.id = e.deployment_id WHERE d.schedule_id = $1 AND d.state = 'missed'`, [s.id]);
    assert.deepEqual(events.rows.map((r) => r.state), ['missed', 'missed', 'missed'], 'one event each');
  });
});
