/**
 * The heartbeat's lease renewal never waits for a row another transaction has locked (the
 * finisher's or the running writes of a large burst, a cancel): it renews the others, answers the
 * ones it skipped, and renews them once free. Waiting, it deadlocked with the finisher at 50,000
 * held rows ("deadlock detected"); this test would hang (and time out) on a renewal that waits.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { renewLeases } from '../src/db/sql/deployments.ts';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db.drop();
});

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
