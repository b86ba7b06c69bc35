/**
 * Claims, leases and their renewal.
 * - The heartbeat's lease renewal never waits for a row another transaction has locked (the
 *   finisher's or the running writes of a large burst, a cancel): it renews the others, answers
 *   the ones it skipped, and renews them once free. Waiting, it deadlocked with the finisher at
 *   50,000 held rows ("deadlock detected"); that test would hang (and time out) on a renewal that waits.
 * - A row claimed ahead of its instant is leased until the instant plus the lease, the scheduled →
 *   running write renews it, and the heartbeat renews only leases with less than two heartbeats
 *   left: renewing a burst's 50,000 leases while it fired took the database 3.5 s of a core.
 * - The rows of one claim share one object per equal instant, text and target: a burst holds
 *   50,000 of them from claim to call, and a Date per field per row took 19 MB of them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { useTestDatabase } from './helpers/db.ts';
import { claimDue, markRunning, renewLeases } from '../src/db/sql/deployments.ts';
import { createLogger } from '../src/observability/logger.ts';
import { DbClock } from '../src/scheduler/clock.ts';
import { Leases } from '../src/scheduler/leases.ts';
import { Timers } from '../src/scheduler/timers.ts';
import type { ClaimedRow } from '../src/db/sql/deployments.ts';

const db = useTestDatabase();

describe('renewLeases', () => {
  it('skips the rows another transaction holds, renews the rest, and renews the skipped once they are free', { timeout: 20_000 }, async () => {
    const team = (await db.pool.query(`INSERT INTO teams (name) VALUES ('leases') RETURNING id`)).rows[0].id as string;
    const app = (await db.pool.query(`INSERT INTO apps (team_id, name, target) VALUES ($1, 'a', '{"type":"webhook","url":"http://127.0.0.1:9/"}') RETURNING id`, [team])).rows[0].id as string;
    const ids = (await db.pool.query(
      `INSERT INTO deployments (team_id, app_id, run_at, timezone, local_year, local_month, local_day, local_hour, local_minute, local_second,
          utc_offset, disambiguation, expires_after_seconds, expires_at, due_at, lease_owner, lease_until)
       SELECT $1, $2, now() + interval '1 hour', 'UTC', 2030, 1, 1, 0, 0, 0, '+00:00', 'earlier', 3600, now() + interval '2 hours',
              now() + interval '1 hour', 'me', now() + interval '5 seconds'
         FROM generate_series(1, 3) RETURNING id`,
      [team, app],
    )).rows.map((r) => r.id as string);
    const until = async () => new Map((await db.pool.query(`SELECT id, lease_until FROM deployments WHERE id = ANY($1::uuid[])`, [ids])).rows
      .map((r) => [r.id as string, (r.lease_until as Date).getTime()]));
    const before = await until();

    // Another transaction (the finisher, say) holds the second row.
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query(`UPDATE deployments SET updated_at = now() WHERE id = $1`, [ids[1]]);
      const skipped = await renewLeases(db.pool, 'me', ids, 60);
      assert.deepEqual(skipped, [ids[1]]);
      const mid = await until();
      assert.ok(mid.get(ids[0])! > before.get(ids[0])! + 30_000, 'the first lease was renewed');
      assert.equal(mid.get(ids[1]), before.get(ids[1]), 'the locked row was left as it was');
      assert.ok(mid.get(ids[2])! > before.get(ids[2])! + 30_000, 'the third lease was renewed');
      await other.query('COMMIT');
    } finally {
      await other.end();
    }
    assert.deepEqual(await renewLeases(db.pool, 'me', ids, 60), []);
    assert.ok((await until()).get(ids[1])! > before.get(ids[1])! + 30_000, 'renewed once free');
    // Another owner's rows are not renewed, and are reported as not renewed.
    assert.deepEqual((await renewLeases(db.pool, 'someone-else', [ids[0]], 60)), [ids[0]]);
  });
});

describe('leases of rows claimed ahead of their instant', () => {
  /** Three deployments of three apps, due `dueInS` seconds from now, unleased. */
  async function dueRows(name: string, dueInS: number): Promise<string[]> {
    const team = (await db.pool.query(`INSERT INTO teams (name) VALUES ($1) RETURNING id`, [name])).rows[0].id as string;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const app = (await db.pool.query(`INSERT INTO apps (team_id, name, target) VALUES ($1, $2, '{"type":"webhook","url":"http://127.0.0.1:9/"}') RETURNING id`, [team, `a${i}`])).rows[0].id as string;
      ids.push((await db.pool.query(
        `INSERT INTO deployments (team_id, app_id, run_at, timezone, local_year, local_month, local_day, local_hour, local_minute, local_second,
            utc_offset, disambiguation, expires_after_seconds, expires_at, due_at)
         VALUES ($1, $2, now() + make_interval(secs => $3), 'UTC', 2030, 1, 1, 0, 0, 0, '+00:00', 'earlier', 3600, now() + interval '2 hours',
                 now() + make_interval(secs => $3)) RETURNING id`,
        [team, app, dueInS],
      )).rows[0].id as string);
    }
    return ids;
  }
  const leaseLeft = async (ids: string[]) => (await db.pool.query(
    `SELECT extract(epoch FROM lease_until - now())::float8 AS s FROM deployments WHERE id = ANY($1::uuid[]) ORDER BY id`, [ids],
  )).rows.map((r) => r.s as number);

  it('claimDue leases a row due ahead until its due time plus the lease; markRunning renews it', async () => {
    const ids = await dueRows('ahead', 20);
    const claimed = await claimDue(db.pool, 'me', 30_000, 30, 10);
    assert.deepEqual(claimed.map((r) => r.id).sort(), [...ids].sort());
    for (const s of await leaseLeft(ids)) assert.ok(s > 48 && s <= 50, `leased until the instant + 30 s (${s} s left)`);
    // The running write renews a lease (never shortens it): lease 60 s from now, past instant + 30.
    assert.deepEqual((await markRunning(db.pool, 'me', [ids[0]], 60)).length, 1);
    const [after0] = await leaseLeft([ids[0]]);
    assert.ok(after0 > 58 && after0 <= 60, `renewed by the running write (${after0} s left)`);
    await db.pool.query(`DELETE FROM deployments WHERE id = ANY($1::uuid[])`, [ids]);
  });

  it('the heartbeat renews only the leases with less than two heartbeats left', async () => {
    const ids = await dueRows('renew', 0);
    const logger = createLogger('silent');
    const clock = new DbClock(logger);
    const leases = new Leases(db.pool, 'me', 30, clock, new Timers(clock, () => {}), logger);
    const rows = await claimDue(db.pool, 'me', 1000, 30, 10);
    assert.equal(rows.length, 3);
    const now = clock.localNow();
    // Heartbeat every 10 s: a lease with 25 s left is not renewed; with 19 s or 5 s left it is.
    const left = new Map([[ids[0], 25_000], [ids[1], 19_000], [ids[2], 5_000]]);
    for (const row of rows as ClaimedRow[]) leases.set({ row, leaseValidUntil: now + left.get(row.id)!, inFlight: false });
    const asked = await leases.renew();
    assert.deepEqual(asked.sort(), [ids[1], ids[2]].sort());
    for (const id of [ids[1], ids[2]]) assert.ok(leases.get(id)!.leaseValidUntil >= now + 29_000, 'renewed locally too');
    assert.equal(leases.get(ids[0])!.leaseValidUntil, now + 25_000, 'left as it was');
    assert.deepEqual(await leases.renew(), [], 'nothing left to renew');
  });
});

describe('claimDue', () => {
  it('the rows of one claim share one Date per instant, one string per team and state, one target per distinct target', async () => {
    const team = (await db.pool.query(`INSERT INTO teams (name) VALUES ('shared') RETURNING id`)).rows[0].id as string;
    const apps: string[] = [];
    for (const [name, url] of [['s0', 'http://127.0.0.1:9/a'], ['s1', 'http://127.0.0.1:9/a'], ['s2', 'http://127.0.0.1:9/b']]) {
      apps.push((await db.pool.query(`INSERT INTO apps (team_id, name, target) VALUES ($1, $2, jsonb_build_object('type', 'webhook', 'url', $3::text)) RETURNING id`,
        [team, name, url])).rows[0].id as string);
    }
    await db.pool.query(
      `INSERT INTO deployments (team_id, app_id, run_at, timezone, local_year, local_month, local_day, local_hour, local_minute, local_second,
          utc_offset, disambiguation, expires_after_seconds, expires_at, due_at)
       SELECT $1, a, date_trunc('second', now()) + interval '5 seconds', 'UTC', 2030, 1, 1, 0, 0, 0, '+00:00', 'earlier', 3600,
              date_trunc('second', now()) + interval '1 hour 5 seconds', date_trunc('second', now()) + interval '5 seconds'
         FROM unnest($2::uuid[]) a`,
      [team, apps],
    );
    const rows = (await claimDue(db.pool, 'me', 30_000, 30, 10)).filter((r) => r.team_id === team);
    assert.equal(rows.length, 3);
    const [a, b, c] = apps.map((id) => rows.find((r) => r.app_id === id)!);
    // Equal values, one object (the values themselves are what pg answered).
    assert.equal(a.run_at, b.run_at);
    assert.equal(a.run_at, c.due_at, 'due_at and run_at of the same instant: one Date');
    assert.equal(a.expires_at, c.expires_at);
    assert.equal(a.db_now, c.db_now);
    assert.equal(a.run_at.getTime() + 3600_000, a.expires_at.getTime());
    assert.deepEqual(a.target, { type: 'webhook', url: 'http://127.0.0.1:9/a' });
    assert.equal(a.target, b.target, 'equal targets: one object');
    assert.notEqual(a.target, c.target);
    assert.deepEqual(c.target, { type: 'webhook', url: 'http://127.0.0.1:9/b' });
    await db.pool.query(`DELETE FROM deployments WHERE team_id = $1`, [team]);
  });
});
