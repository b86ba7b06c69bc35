/**
 * `npm run bench -- scale [--rows 1000000] [--batch 1000] [--json]`
 *
 * Growth: does a large table of future deployments slow down what is due now?
 * 1. On an empty database, a batch of `batch` webhook deployments (created through the API) due
 *    at one instant: lag p50/p99 from the instant to arrival at a receiver in its own process.
 * 2. Bulk-insert `rows` future deployments (INSERT … SELECT generate_series: the setup need not
 *    go through the API) spread over the next year on the same apps, ANALYZE.
 * 3. The same batch again: p99 against step 1 (target ≤ 1.2×). The serve process's RSS is
 *    sampled throughout (target ≤ 250 MB).
 * 4. EXPLAIN of the hot queries, with the exact SQL the code sends (captured from the functions
 *    in src/db/sql/deployments.ts): claimDue (with its per-app "blocked" check), nextDue,
 *    finishMany (its wake-up), the list with and without filters. Reports any sequential scan.
 */
import pg from 'pg';
import {
  claimDue, finishMany, listDeployments, nextDue,
} from '../src/db/sql/deployments.ts';
import type { Queryable } from '../src/db/pool.ts';
import {
  Api, cleanup, createBenchDatabase, fmt, log, mapLimit, rssMb, shipclockEnv, sleep, spawnReceiver, warmReceiver, spawnShipclock, summary, table, utcFields,
} from './lib.ts';

export interface ScaleOptions {
  rows: number;
  batch: number;
  json: boolean;
  databaseUrl: string;
}

/** A Queryable that records the statement instead of running it. */
function recorder(): { q: Queryable; last: () => { text: string; values: unknown[] } } {
  let last = { text: '', values: [] as unknown[] };
  const q = {
    query: async (text: string, values: unknown[] = []) => {
      last = { text, values };
      return { rows: [{ next: null, db_now: new Date() }], rowCount: 0 };
    },
  } as unknown as Queryable;
  return { q, last: () => last };
}

export async function scale(o: ScaleOptions): Promise<void> {
  const db = await createBenchDatabase(o.databaseUrl);
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  let rssMax = 0;
  let sampler: NodeJS.Timeout | undefined;
  try {
    const serve = await spawnShipclock('serve', shipclockEnv(db.url));
    sampler = setInterval(() => { try { rssMax = Math.max(rssMax, rssMb(serve.pid)); } catch { /* exited */ } }, 100);
    const rssAt: Record<string, number> = {};
    const mark = (label: string) => { rssAt[label] = Math.round(rssMb(serve.pid)); };
    await sleep(1000);
    mark('idle after start');
    const receiver = await spawnReceiver();
    await warmReceiver(receiver.url, o.batch);
    const api = new Api(serve.url);
    await api.login();
    const me = await api.ok('GET', '/v1/me');
    let t = Date.now();
    const apps = await mapLimit(Array.from({ length: o.batch }, (_, i) => i), 16, async (i) =>
      (await api.ok('POST', '/v1/apps', { name: `scale-${i}`, target: { type: 'webhook', url: receiver.url } })).id as string);
    const perItem = (Date.now() - t) / o.batch;
    log(`${o.batch} apps in ${Date.now() - t} ms`);

    const batch = async (label: string) => {
      const instant = Math.ceil((Date.now() + perItem * o.batch * 4 + 3000) / 1000) * 1000;
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
      // Let the final states land before the next step.
      for (let i = 0; i < 240; i++) {
        const r = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM deployments WHERE id = ANY($1::uuid[]) AND state IN ('scheduled', 'running')`, [ids]);
        if (r.rows[0].n === 0) break;
        await sleep(250);
      }
      return { ...summary(lags), fired: seen.size, duplicates: [...seen.values()].filter((c) => c > 1).length, early, lost: ids.length - seen.size };
    };

    const empty = await batch('empty database');
    mark('after the batch on the empty database');
    t = Date.now();
    // 1M future deployments on the same apps, over the next year: the kind of table a long-lived
    // installation has (most of them scheduled, a few ended), with their timeline's first event.
    await pool.query(`SET synchronous_commit = off`);
    const chunk = 250_000;
    for (let off = 0; off < o.rows; off += chunk) {
      const n = Math.min(chunk, o.rows - off);
      await pool.query(
        `INSERT INTO deployments (team_id, app_id, state, run_at, timezone, local_year, local_month, local_day, local_hour, local_minute,
            local_second, utc_offset, expires_after_seconds, expires_at, due_at)
         SELECT $1, apps[1 + (g % cardinality(apps))], s, r, 'UTC', 2030, 1, 1, 0, 0, 0, '+00:00', 3600, r + interval '1 hour',
                CASE WHEN s = 'scheduled' THEN r END
           FROM (SELECT g, now() + interval '1 hour' + (g % 525600) * interval '1 minute' + (g % 60) * interval '1 second' AS r,
                        CASE WHEN g % 20 = 0 THEN 'succeeded' ELSE 'scheduled' END AS s
                   FROM generate_series($3::int, $3::int + $4::int - 1) g) x,
                (SELECT $2::uuid[] AS apps) a`,
        [me.team.id, apps, off, n],
      );
      log(`inserted ${off + n} future deployments`);
    }
    await pool.query('ANALYZE deployments');
    const insertMs = Date.now() - t;
    const total = (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM deployments')).rows[0].n;
    log(`${o.rows} rows inserted in ${insertMs} ms (table: ${total} rows)`);
    mark('after the bulk insert');
    const full = await batch(`${total} rows`);
    mark('after the batch on the full database');

    // EXPLAIN the hot queries, with the SQL the code sends.
    const rec = recorder();
    const plans: Array<{ query: string; seqScan: boolean; plan: string }> = [];
    const explain = async (name: string, run: () => Promise<unknown>) => {
      await run();
      const { text, values } = rec.last();
      const r = await pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`, values);
      const plan = r.rows.map((x) => x['QUERY PLAN']).join('\n');
      plans.push({ query: name, seqScan: /Seq Scan/.test(plan), plan });
    };
    const someApp = apps[0];
    const someIds = (await pool.query<{ id: string }>(`SELECT id FROM deployments WHERE state = 'scheduled' ORDER BY run_at LIMIT 100`)).rows.map((r) => r.id);
    await explain('claimDue (incl. the per-app "blocked" check)', () => claimDue(rec.q, 'bench', 1500, 30, 500));
    await explain('nextDue', () => nextDue(rec.q));
    await explain('finishMany (incl. waking dependents and the next of each app)', () =>
      finishMany(rec.q, someIds.map((id) => ({ id, state: 'succeeded' as const, error: null, log: '', ref: null }))));
    await explain('list: team, first page', () => listDeployments(rec.q, { teamId: me.team.id, limit: 50 }));
    await explain('list: team + state', () => listDeployments(rec.q, { teamId: me.team.id, states: ['failed'], limit: 50 }));
    await explain('list: team + app', () => listDeployments(rec.q, { teamId: me.team.id, appId: someApp, limit: 50 }));
    await explain('list: team + state + app + from/to + cursor', () => listDeployments(rec.q, {
      teamId: me.team.id, states: ['scheduled'], appId: someApp, from: new Date(Date.now() + 86_400_000), to: new Date(Date.now() + 30 * 86_400_000),
      after: { runAt: new Date(Date.now() + 86_400_000), id: '00000000-0000-0000-0000-000000000000' }, limit: 50,
    }));
    clearInterval(sampler);
    rssMax = Math.max(rssMax, rssMb(serve.pid));
    // Where the memory is (prom-client's default metrics of the serve process).
    const metrics = await (await fetch(`${serve.url}/metrics`)).text();
    const metric = (name: string) => Math.round(Number(new RegExp(`^${name} ([\\d.e+]+)$`, 'm').exec(metrics)?.[1] ?? NaN) / 1048576);
    const memory = {
      rss_mb: metric('process_resident_memory_bytes'), heap_total_mb: metric('nodejs_heap_size_total_bytes'),
      heap_used_mb: metric('nodejs_heap_size_used_bytes'), external_mb: metric('nodejs_external_memory_bytes'),
    };
    const ratio = full.p99 / empty.p99;
    const result = {
      rows: total, batch: o.batch, insert_ms: insertMs,
      empty: { p50: empty.p50, p99: empty.p99, max: empty.max, fired: empty.fired, duplicates: empty.duplicates, early: empty.early, lost: empty.lost },
      full: { p50: full.p50, p99: full.p99, max: full.max, fired: full.fired, duplicates: full.duplicates, early: full.early, lost: full.lost },
      ratio_p99: ratio, serve_rss_max_mb: rssMax, serve_rss_mb: rssAt, serve_memory_at_end: memory,
      explain: plans.map((p) => ({ query: p.query, seq_scan: p.seqScan })),
    };
    if (o.json) console.log(JSON.stringify({ ...result, plans }, null, 2));
    else {
      console.log(`\nscale: a batch of ${o.batch} due at one instant, on an empty database and with ${total} deployments stored`);
      console.log(table([
        { database: 'empty', p50_ms: fmt(empty.p50), p99_ms: fmt(empty.p99), max_ms: fmt(empty.max), fired: empty.fired, dup: empty.duplicates, early: empty.early, lost: empty.lost },
        { database: `${total} rows`, p50_ms: fmt(full.p50), p99_ms: fmt(full.p99), max_ms: fmt(full.max), fired: full.fired, dup: full.duplicates, early: full.early, lost: full.lost },
      ]));
      console.log(`p99 ratio (full / empty) = ${ratio.toFixed(2)}; serve RSS max ${rssMax.toFixed(0)} MB (${Object.entries(rssAt).map(([k, v]) => `${k}: ${v}`).join(', ')})`);
      console.log(`serve memory at the end: ${JSON.stringify(memory)}`);
      console.log(table(plans.map((p) => ({ query: p.query, seq_scan: p.seqScan ? 'YES' : 'no' }))));
      for (const p of plans) console.log(`\n-- ${p.query}\n${p.plan}`);
    }
    await serve.stop();
  } finally {
    clearInterval(sampler);
    await pool.end().catch(() => {});
    await cleanup();
  }
}
