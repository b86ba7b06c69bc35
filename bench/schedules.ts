/**
 * `npm run bench -- schedules [--schedules 10000] [--batch 500] [--json]`
 *
 * Do many active recurring schedules slow down one-off firing, or grow memory?
 * 1. One `serve` process on a fresh database; a batch of `batch` one-off webhook deployments due
 *    at one instant (through the API): lag p50/p99 from the instant to arrival at a receiver in
 *    its own process. The baseline.
 * 2. `schedules` active schedules inserted in bulk (SQL: the setup need not go through the API),
 *    daily and weekday trains at times spread over the day, in five zones (Lord Howe's 30-minute
 *    DST included), on 100 webhook apps; every one due for materialization at once, as after a
 *    restart. The same batch is due while the materializer works through them ("catching up").
 * 3. When all are materialized (how long, how many rows): the same batch again ("steady").
 * 4. RSS of the serve process before the schedules, after, and its maximum throughout.
 */
import pg from 'pg';
import {
  Api, cleanup, createBenchDatabase, fmt, log, mapLimit, rssMb, shipclockEnv, sleep, spawnReceiver, spawnShipclock, summary, table, utcFields, warmReceiver,
} from './lib.ts';

export interface SchedulesBenchOptions {
  schedules: number;
  batch: number;
  json: boolean;
  databaseUrl: string;
}

const ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Tokyo', 'Australia/Lord_Howe'];

export async function schedulesBench(o: SchedulesBenchOptions): Promise<void> {
  const db = await createBenchDatabase(o.databaseUrl);
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  let rssMax = 0;
  let sampler: NodeJS.Timeout | undefined;
  try {
    const serve = await spawnShipclock('serve', shipclockEnv(db.url));
    sampler = setInterval(() => { try { rssMax = Math.max(rssMax, rssMb(serve.pid)); } catch { /* exited */ } }, 100);
    const rssAt: Record<string, number> = {};
    const mark = (label: string) => { rssAt[label] = Math.round(rssMb(serve.pid)); };
    const receiver = await spawnReceiver();
    await warmReceiver(receiver.url, o.batch);
    const api = new Api(serve.url);
    await api.login();
    const me = await api.ok('GET', '/v1/me');
    let t = Date.now();
    const apps = await mapLimit(Array.from({ length: o.batch }, (_, i) => i), 16, async (i) =>
      (await api.ok('POST', '/v1/apps', { name: `oneoff-${i}`, target: { type: 'webhook', url: receiver.url } })).id as string);
    const perItem = (Date.now() - t) / o.batch;
    await sleep(1000);
    mark('before the schedules');

    const batch = async (label: string, leadMs = 3000) => {
      const instant = Math.ceil((Date.now() + perItem * o.batch * 4 + leadMs) / 1000) * 1000;
      t = Date.now();
      const ids = await mapLimit(apps, 16, async (app) => (await api.ok('POST', '/v1/scheduled_deployments', { app, ...utcFields(instant) })).result.id as string);
      log(`${label}: ${o.batch} deployments created in ${Date.now() - t} ms; instant ${instant - Date.now()} ms ahead`);
      const want = new Set(ids);
      const seen = new Map<string, number>();
      const lags: number[] = [];
      let early = 0;
      const deadline = instant + 60_000;
      while (Date.now() < deadline && seen.size < want.size) {
        await sleep(250);
        for (const [id, , at] of await receiver.results()) {
          if (!id || !want.has(id)) continue;
          seen.set(id, (seen.get(id) ?? 0) + 1);
          if (seen.get(id) === 1) lags.push(at - instant);
          if (at < instant) early++;
        }
      }
      for (let i = 0; i < 240; i++) {
        const r = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM deployments WHERE id = ANY($1::uuid[]) AND state IN ('scheduled', 'running')`, [ids]);
        if (r.rows[0].n === 0) break;
        await sleep(250);
      }
      return { ...summary(lags), fired: seen.size, duplicates: [...seen.values()].filter((c) => c > 1).length, early, lost: ids.length - seen.size };
    };

    const baseline = await batch('no schedules');
    mark('after the baseline batch');

    // The schedules' own apps (webhooks to the receiver on another path: their occurrences are
    // not counted in the batches).
    const schedApps = (await pool.query<{ id: string }>(
      `INSERT INTO apps (team_id, name, target) SELECT $1, 'train-' || g, jsonb_build_object('type', 'webhook', 'url', $2::text)
         FROM generate_series(1, 100) g RETURNING id`,
      [me.team.id, receiver.url.replace('/hook', '/trains')],
    )).rows.map((r) => r.id);
    const userId = me.id;
    t = Date.now();
    await pool.query(
      `INSERT INTO schedules (team_id, app_id, cron, timezone, materialized_until, materialize_at, created_by)
       SELECT $1, ($2::uuid[])[1 + g % 100],
              (g % 60) || ' ' || (g / 60 % 24) || CASE WHEN g % 2 = 0 THEN ' * * *' ELSE ' * * 1-5' END,
              ($3::text[])[1 + g % ${ZONES.length}], now(), now(), $4
         FROM generate_series(0, $5::int - 1) g`,
      [me.team.id, schedApps, ZONES, userId, o.schedules],
    );
    log(`${o.schedules} schedules inserted in ${Date.now() - t} ms; the materializer takes them now`);
    const materializeStart = Date.now();
    // A batch due while the materializer catches up with all of them.
    const catching = await batch(`${o.schedules} schedules, catching up`, 1500);
    for (;;) {
      const r = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM schedules WHERE materialize_at <= now()`);
      if (r.rows[0].n === 0) break;
      if (Date.now() - materializeStart > 600_000) throw new Error('the schedules were not materialized within 10 minutes');
      await sleep(200);
    }
    const materializeMs = Date.now() - materializeStart;
    const occurrenceRows = (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM deployments WHERE schedule_id IS NOT NULL`)).rows[0].n;
    log(`all ${o.schedules} materialized within ${materializeMs} ms: ${occurrenceRows} occurrence rows`);
    await sleep(2000);
    mark('after materializing');
    const steady = await batch(`${o.schedules} schedules, steady`);
    mark('after the steady batch');
    clearInterval(sampler);
    rssMax = Math.max(rssMax, rssMb(serve.pid));

    const result = {
      schedules: o.schedules, batch: o.batch, materialize_ms: materializeMs, occurrence_rows: occurrenceRows,
      baseline: { p50: baseline.p50, p99: baseline.p99, max: baseline.max, fired: baseline.fired, duplicates: baseline.duplicates, early: baseline.early, lost: baseline.lost },
      catching_up: { p50: catching.p50, p99: catching.p99, max: catching.max, fired: catching.fired, duplicates: catching.duplicates, early: catching.early, lost: catching.lost },
      steady: { p50: steady.p50, p99: steady.p99, max: steady.max, fired: steady.fired, duplicates: steady.duplicates, early: steady.early, lost: steady.lost },
      ratio_p99_steady: steady.p99 / baseline.p99, ratio_p99_catching_up: catching.p99 / baseline.p99,
      serve_rss_mb: rssAt, serve_rss_max_mb: Math.round(rssMax),
    };
    if (o.json) console.log(JSON.stringify(result, null, 2));
    else {
      console.log(`\nschedules: a batch of ${o.batch} one-off deployments due at one instant, without and with ${o.schedules} active schedules`);
      console.log(table([
        { when: 'no schedules', p50_ms: fmt(baseline.p50), p99_ms: fmt(baseline.p99), max_ms: fmt(baseline.max), fired: baseline.fired, dup: baseline.duplicates, early: baseline.early, lost: baseline.lost },
        { when: 'catching up', p50_ms: fmt(catching.p50), p99_ms: fmt(catching.p99), max_ms: fmt(catching.max), fired: catching.fired, dup: catching.duplicates, early: catching.early, lost: catching.lost },
        { when: 'steady', p50_ms: fmt(steady.p50), p99_ms: fmt(steady.p99), max_ms: fmt(steady.max), fired: steady.fired, dup: steady.duplicates, early: steady.early, lost: steady.lost },
      ]));
      console.log(`p99 ratio steady / none = ${result.ratio_p99_steady.toFixed(2)}, catching up / none = ${result.ratio_p99_catching_up.toFixed(2)}`);
      console.log(`materialized ${o.schedules} schedules (${occurrenceRows} occurrence rows) in ${materializeMs} ms`);
      console.log(`serve RSS max ${result.serve_rss_max_mb} MB (${Object.entries(rssAt).map(([k, v]) => `${k}: ${v}`).join(', ')})`);
    }
    await serve.stop();
  } finally {
    clearInterval(sampler);
    await pool.end().catch(() => {});
    await cleanup();
  }
}
