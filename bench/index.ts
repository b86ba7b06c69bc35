/**
 * `npm run bench -- <fire|scale|api|schedules> [options]`: shipclock's benchmarks. They never gate CI;
 * the decision record (docs/decisions/0002-precise-firing.md) keeps their figures with the
 * commands that produced them.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_DATABASE_URL } from './lib.ts';

const usage = `usage: npm run bench -- <command> [options]
  fire  --count N [--workers K] [--repeat R] [--setup api|sql] [--json]
                                                       N webhook deployments due at one instant vs the pooled floor
  scale [--rows 1000000] [--batch 1000] [--json]         1M future deployments: a due batch vs an empty database, RSS, EXPLAIN
  api   [--clients 50] [--seconds 10] [--dependency] [--json]   POST /v1/scheduled_deployments under concurrent clients
  schedules [--schedules 10000] [--batch 500] [--json]   one-off firing lag and RSS without and with N active schedules
common: --database-url URL (default ${DEFAULT_DATABASE_URL}; a fresh database is created on it and dropped)
environment: BENCH_LOG_LEVEL (shipclock's LOG_LEVEL, default warn), BENCH_LOG_DIR (keep each shipclock
  process's log there), BENCH_NODE_ARGS (node flags for the shipclock processes, e.g. --cpu-prof);
  any SHIPCLOCK_* variable is passed on to the shipclock processes`;

const [cmd, ...rest] = process.argv.slice(2);
const { values } = parseArgs({
  args: rest,
  options: {
    count: { type: 'string' }, workers: { type: 'string' }, repeat: { type: 'string' }, json: { type: 'boolean' },
    'database-url': { type: 'string' }, dependency: { type: 'boolean' }, concurrency: { type: 'string' }, margin: { type: 'string' },
    rows: { type: 'string' }, batch: { type: 'string' }, clients: { type: 'string' }, seconds: { type: 'string' },
    schedules: { type: 'string' }, setup: { type: 'string' },
  },
});
const num = (v: string | undefined, def: number) => {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`not a number: ${v}\n${usage}`);
    process.exit(2);
  }
  return n;
};
const databaseUrl = values['database-url'] ?? process.env.BENCH_DATABASE_URL ?? DEFAULT_DATABASE_URL;
const json = values.json ?? false;

switch (cmd) {
  case 'fire': {
    const { fire } = await import('./fire.ts');
    await fire({
      count: num(values.count, 1000), workers: num(values.workers, 0), repeat: num(values.repeat, 1), json, databaseUrl,
      concurrency: num(values.concurrency, 16), marginMs: num(values.margin, 3000), env: {},
      setup: values.setup === 'sql' ? 'sql' : 'api',
    });
    break;
  }
  case 'scale': {
    const { scale } = await import('./scale.ts');
    await scale({ rows: num(values.rows, 1_000_000), batch: num(values.batch, 1000), json, databaseUrl });
    break;
  }
  case 'api': {
    const { apiBench } = await import('./api.ts');
    await apiBench({ clients: num(values.clients, 50), seconds: num(values.seconds, 10), json, databaseUrl, dependency: values.dependency ?? false });
    break;
  }
  case 'schedules': {
    const { schedulesBench } = await import('./schedules.ts');
    await schedulesBench({ schedules: num(values.schedules, 10_000), batch: num(values.batch, 500), json, databaseUrl });
    break;
  }
  default:
    console.error(usage);
    process.exit(cmd ? 2 : 0);
}
process.exit(0);
