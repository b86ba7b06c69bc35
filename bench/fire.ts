/**
 * `npm run bench -- fire --count N [--workers K] [--repeat R] [--json] [--database-url URL]`
 *
 * shipclock as real processes (one `serve`, K `worker`s) on a fresh database; a webhook receiver
 * in its own process recording arrival times; N webhook apps with one deployment each, created
 * through the API, all due at one whole second chosen after the measured creation time. Then the
 * floors in the same run: a plain process sending the same N POSTs at an instant to the same
 * receiver, no scheduler — the pooled floor (bench/floor-pooled.mjs, a copy of the outside
 * checks' floor: 128 warm keep-alive connections), which the ratio is judged against, and the
 * per-connection floor (bench/floor.mjs) used before. Reports fired, duplicates, early, lost,
 * p50/p99/max lag (arrival − instant) of each, and the ratios of the p99s. With --repeat R, R rounds; percentiles are over
 * every arrival of every round (N=1, R=20: the p99 of 20 firings). With --setup sql the apps and
 * deployments are written straight into the database (50,000 in seconds); the peak RSS of each
 * shipclock process during the round is reported either way.
 */
import fs from 'node:fs';
import pg from 'pg';
import {
  Api, cleanup, cpuMs, createBenchDatabase, fmt, log, mapLimit, runFloor, shipclockEnv, sleep, spawnReceiver, warmReceiver,
  spawnShipclock, summary, table, utcFields,
} from './lib.ts';

export interface FireOptions {
  count: number;
  workers: number;
  repeat: number;
  json: boolean;
  databaseUrl: string;
  concurrency: number;
  marginMs: number;
  env: NodeJS.ProcessEnv;
  /**
   * How apps and deployments are made: 'api' (default: through the API, as users do) or 'sql'
   * (straight into the bench database, the rows the API would write, for 50,000 where creating
   * them through the API takes longer than the run itself). Firing is the same either way.
   */
  setup: 'api' | 'sql';
}

interface RoundResult {
  instant: number;
  createMs: number;
  headroomMs: number;
  fired: number;
  duplicates: number;
  early: number;
  lost: number;
  lags: number[];
  floorLags: number[];
  floorErrors: number;
  oldFloorLags: number[];
  states: Record<string, number>;
  firers: number;
  cpuMs: number;
}


/** Samples the RSS of the given processes every 100 ms (Linux /proc) until stop(), which returns each one's peak in MB. */
function watchRss(pids: number[]): { stop(): number[] } {
  const peak = pids.map(() => 0);
  const sample = () => pids.forEach((pid, i) => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) peak[i] = Math.max(peak[i], Number(m[1]) / 1024);
    } catch { /* gone, or not Linux */ }
  });
  sample();
  const timer = setInterval(sample, 100);
  return { stop: () => { clearInterval(timer); sample(); return peak; } };
}

/**
 * The per-connection floor is run up to this many: beyond, its own sockets are lost (50,000
 * connections opened at once), and the run waited out its deadline (5 minutes) for them.
 */
const PER_CONNECTION_FLOOR_MAX = 10_000;

async function collect(receiver: Awaited<ReturnType<typeof spawnReceiver>>, expected: number, deadline: number) {
  const hits: Array<[string | null, number, number, string | null]> = [];
  const seen = new Set<string>();
  while (Date.now() < deadline) {
    await sleep(250);
    for (const h of await receiver.results()) {
      hits.push(h);
      if (h[0]) seen.add(h[0]);
    }
    if (seen.size >= expected) break;
  }
  // A little longer, to catch a late duplicate.
  await sleep(1000);
  hits.push(...(await receiver.results()));
  return hits;
}

export async function fire(o: FireOptions): Promise<void> {
  const t0 = Date.now();
  const db = await createBenchDatabase(o.databaseUrl);
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  try {
    const env = shipclockEnv(db.url, o.env);
    const serve = await spawnShipclock('serve', env);
    const workers = await Promise.all(Array.from({ length: o.workers }, () => spawnShipclock('worker', env)));
    const receiver = await spawnReceiver();
    await warmReceiver(receiver.url, o.count);
    const api = new Api(serve.url);
    await api.login();
    log(`shipclock serve + ${o.workers} worker(s) up in ${Date.now() - t0} ms; creating ${o.count} apps`);

    let t = Date.now();
    const owner = (await pool.query<{ team_id: string; id: string }>(`SELECT team_id, id FROM users ORDER BY created_at LIMIT 1`)).rows[0];
    const apps = o.setup === 'sql'
      ? (await pool.query<{ id: string }>(
        `INSERT INTO apps (team_id, name, target, retry_max_attempts, retry_backoff_seconds)
         SELECT $1, 'bench-' || i, jsonb_build_object('type', 'webhook', 'url', $2::text), 3, 1 FROM generate_series(0, $3 - 1) i
         RETURNING id`, [owner.team_id, receiver.url, o.count])).rows.map((r) => r.id)
      : await mapLimit(Array.from({ length: o.count }, (_, i) => i), o.concurrency, async (i) =>
        (await api.ok('POST', '/v1/apps', { name: `bench-${i}`, target: { type: 'webhook', url: receiver.url }, retry: { max_attempts: 3, backoff_seconds: 1 } })).id as string);
    const appMs = Date.now() - t;
    log(`${o.count} apps in ${appMs} ms (${Math.round((o.count * 1000) / appMs)}/s)`);

    const rounds: RoundResult[] = [];
    let perItemMs = appMs / o.count;
    let peakRssMb = 0;
    for (let round = 0; round < o.repeat; round++) {
      // The instant: the next whole second after the estimated creation time plus a margin
      // larger than the claim horizon, so that creation never overlaps the claims.
      // (Scheduling a deployment costs two to four times creating an app; later rounds know.)
      const estimate = o.setup === 'sql' ? o.count * 0.2 : perItemMs * o.count * (round === 0 ? 4 : 1.3);
      const instant = Math.ceil((Date.now() + estimate + o.marginMs) / 1000) * 1000;
      t = Date.now();
      const ids = o.setup === 'sql'
        ? (await pool.query<{ id: string }>(
          `INSERT INTO deployments (team_id, app_id, run_at, timezone, local_year, local_month, local_day, local_hour,
              local_minute, local_second, utc_offset, disambiguation, expires_after_seconds, expires_at, due_at, created_by)
           SELECT $1, a, $3::timestamptz, 'UTC', extract(year FROM $3::timestamptz AT TIME ZONE 'UTC')::int,
                  extract(month FROM $3::timestamptz AT TIME ZONE 'UTC')::int, extract(day FROM $3::timestamptz AT TIME ZONE 'UTC')::int,
                  extract(hour FROM $3::timestamptz AT TIME ZONE 'UTC')::int, extract(minute FROM $3::timestamptz AT TIME ZONE 'UTC')::int,
                  extract(second FROM $3::timestamptz AT TIME ZONE 'UTC')::int, '+00:00', 'earlier', 3600,
                  $3::timestamptz + interval '1 hour', $3::timestamptz, $4
             FROM unnest($2::uuid[]) a
           RETURNING id`, [owner.team_id, apps, new Date(instant).toISOString(), owner.id])).rows.map((r) => r.id)
        : await mapLimit(apps, o.concurrency, async (app) => {
          if (Date.now() > instant - 500) throw new Error(`creating ${o.count} deployments took longer than estimated (${Math.round(estimate)} ms): rerun with a larger --margin (ms)`);
          return (await api.ok('POST', '/v1/scheduled_deployments', { app, ...utcFields(instant) })).result.id as string;
        });
      const createMs = Date.now() - t;
      perItemMs = Math.max(perItemMs, createMs / o.count);
      const headroomMs = instant - Date.now();
      if (headroomMs < 1500) log(`warning: creation ended only ${headroomMs} ms before the instant (claims start 1,500 ms before)`);
      if (!o.json || o.repeat <= 3) log(`round ${round + 1}: ${o.count} deployments created in ${createMs} ms; instant ${new Date(instant).toISOString()} (${headroomMs} ms ahead)`);

      const pids = [serve.pid, ...workers.map((w) => w.pid)];
      const cpuBefore = pids.reduce((a, pid) => a + cpuMs(pid), 0);
      const rss = watchRss(pids);
      const hits = await collect(receiver, o.count, instant + 60_000 + o.count * 5);
      peakRssMb = Math.max(peakRssMb, ...rss.stop());
      // CPU the shipclock processes spent on the round (claims, calls, final writes): a figure that,
      // unlike the lag, hardly depends on what else the machine is doing.
      const cpu = pids.reduce((a, pid) => a + cpuMs(pid), 0) - cpuBefore;
      const want = new Set(ids);
      const per = new Map<string, number>();
      const lags: number[] = [];
      let early = 0;
      for (const [id, , at] of hits) {
        if (!id || !want.has(id)) continue;
        per.set(id, (per.get(id) ?? 0) + 1);
        if (per.get(id) === 1) lags.push(at - instant);
        if (at < instant) early++;
      }
      // Wait for the final states (bounded), so the floor runs on an idle machine and the states are reported.
      const until = Date.now() + 60_000;
      let states: Record<string, number> = {};
      for (;;) {
        const r = await pool.query<{ state: string; n: number }>('SELECT state, count(*)::int AS n FROM deployments WHERE id = ANY($1::uuid[]) GROUP BY state', [ids]);
        states = Object.fromEntries(r.rows.map((x) => [x.state, x.n]));
        if (!states.scheduled && !states.running) break;
        if (Date.now() > until) break;
        await sleep(250);
      }
      const owners = new Map((await pool.query<{ id: string; who: string }>(
        `SELECT deployment_id AS id, split_part(message, ' on ', 2) AS who FROM deployment_events WHERE deployment_id = ANY($1::uuid[]) AND state = 'running'`, [ids])).rows.map((r) => [r.id, r.who]));
      const firers = new Set(owners.values()).size;
      const byProcess = new Map<string, number[]>();
      for (const [id, , at] of hits) {
        const who = id ? owners.get(id) : undefined;
        if (!who) continue;
        if (!byProcess.has(who)) byProcess.set(who, []);
        byProcess.get(who)!.push(at - instant);
      }
      if (byProcess.size > 1) {
        for (const [who, l] of byProcess) {
          const x = summary(l);
          log(`  ${who}: ${x.n} fired, lag min ${fmt(x.min)} p50 ${fmt(x.p50)} p99 ${fmt(x.p99)} ms`);
        }
      }

      const floorInstant = Math.ceil((Date.now() + 2500) / 1000) * 1000;
      const fr = await runFloor(receiver.url, o.count, floorInstant, `floor${round}`, 'pooled');
      const floorHits = await collect(receiver, o.count, floorInstant + 60_000 + o.count * 5);
      const floorLags = floorHits.filter((h) => h[0]?.startsWith(`floor${round}-`)).map((h) => h[2] - floorInstant);
      let oldFloorLags: number[] = [];
      if (o.count <= PER_CONNECTION_FLOOR_MAX) {
        const oldInstant = Math.ceil((Date.now() + 2500) / 1000) * 1000;
        await runFloor(receiver.url, o.count, oldInstant, `oldfloor${round}`, 'per-connection');
        const oldHits = await collect(receiver, o.count, oldInstant + 60_000 + o.count * 5);
        oldFloorLags = oldHits.filter((h) => h[0]?.startsWith(`oldfloor${round}-`)).map((h) => h[2] - oldInstant);
      }
      rounds.push({
        instant, createMs, headroomMs, fired: per.size, duplicates: [...per.values()].filter((c) => c > 1).length, early,
        lost: ids.length - per.size, lags, floorLags, floorErrors: fr.errors, oldFloorLags, states, firers, cpuMs: cpu,
      });
    }

    const lags = rounds.flatMap((r) => r.lags);
    const floorLags = rounds.flatMap((r) => r.floorLags);
    const s = summary(lags);
    const f = summary(floorLags);
    const of = summary(rounds.flatMap((r) => r.oldFloorLags));
    const result = {
      count: o.count, workers: o.workers, repeat: o.repeat,
      fired: rounds.reduce((a, r) => a + r.fired, 0), expected: o.count * o.repeat,
      duplicates: rounds.reduce((a, r) => a + r.duplicates, 0), early: rounds.reduce((a, r) => a + r.early, 0), lost: rounds.reduce((a, r) => a + r.lost, 0),
      shipclock: { p50: s.p50, p99: s.p99, max: s.max, min: s.min },
      floor: { p50: f.p50, p99: f.p99, max: f.max, min: f.min, errors: rounds.reduce((a, r) => a + r.floorErrors, 0) },
      floor_per_connection: { p50: of.p50, p99: of.p99, max: of.max, min: of.min },
      ratio_p99: s.p99 / f.p99,
      ratio_p99_per_connection: s.p99 / of.p99,
      processes_that_fired: Math.max(...rounds.map((r) => r.firers)),
      peak_rss_mb: Math.round(peakRssMb),
      cpu_ms_per_1000: rounds.map((r) => Math.round((r.cpuMs * 1000) / o.count)),
      final_states: rounds.map((r) => r.states),
      create_ms: rounds.map((r) => r.createMs),
      headroom_ms: rounds.map((r) => r.headroomMs),
      rounds: o.repeat > 1 ? rounds.map((r) => ({ p99: summary(r.lags).p99, floor_p99: summary(r.floorLags).p99, ratio: summary(r.lags).p99 / summary(r.floorLags).p99 })) : undefined,
    };
    if (o.json) {
      console.log(JSON.stringify(result, null, 2));
    } else {
      console.log(`\nfire: ${o.count} webhook deployments due at one instant, ${o.workers} worker(s) + serve, ${o.repeat} round(s)`);
      console.log(`fired ${result.fired}/${result.expected}, duplicates ${result.duplicates}, early ${result.early}, lost ${result.lost}; fired by ${result.processes_that_fired} process(es)`);
      // Per 1,000 fired means nothing for a handful: the round's idle polling is most of it then.
      const cpu = o.count >= 100
        ? `CPU per 1,000 fired (all shipclock processes, per round) ${result.cpu_ms_per_1000.join(' / ')} ms`
        : `CPU per round (all shipclock processes) ${rounds.map((r) => Math.round(r.cpuMs)).join(' / ')} ms`;
      console.log(`final states: ${rounds.map((r) => JSON.stringify(r.states)).join(' ')}; peak RSS of a shipclock process ${result.peak_rss_mb} MB; ${cpu}`);
      console.log(table([
        { who: 'shipclock', p50_ms: fmt(s.p50), p99_ms: fmt(s.p99), max_ms: fmt(s.max), min_ms: fmt(s.min) },
        { who: 'pooled floor', p50_ms: fmt(f.p50), p99_ms: fmt(f.p99), max_ms: fmt(f.max), min_ms: fmt(f.min) },
        { who: 'per-connection floor', p50_ms: fmt(of.p50), p99_ms: fmt(of.p99), max_ms: fmt(of.max), min_ms: fmt(of.min) },
      ]));
      const perConnection = Number.isFinite(result.ratio_p99_per_connection)
        ? result.ratio_p99_per_connection.toFixed(2) : `not run above ${PER_CONNECTION_FLOOR_MAX}`;
      console.log(`p99 / pooled floor p99 = ${result.ratio_p99.toFixed(2)}   (per-connection floor: ${perConnection})`);
      if (result.rounds) console.log(`per round (p99 / floor p99, ms): ${result.rounds.map((r) => `${fmt(r.p99)}/${fmt(r.floor_p99)}`).join('  ')}`);
    }
    await serve.stop();
    await Promise.all(workers.map((w) => w.stop()));
    if (process.env.BENCH_SHOW_LOGS) {
      for (const p of [serve, ...workers]) {
        for (const l of p.output().split('\n').filter((x) => /"msg":"(claimed|fired)"/.test(x))) {
          const j = JSON.parse(l);
          const { level: _l, hostname: _h, component: _c, msg, time, ...rest } = j;
          log(`${p.pid} ${new Date(time).toISOString().slice(17, 23)} ${msg} ${JSON.stringify(rest)}`);
        }
      }
    }
  } finally {
    await pool.end().catch(() => {});
    await cleanup();
  }
}
