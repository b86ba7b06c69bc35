/**
 * `shipclock schedules …`: recurring schedules (create, ls, show, pause, resume, rm, preview).
 * Apps by name or id and --lead as in `shipclock schedule`.
 */
import { type Command, Option } from 'commander';
import { ApiError, type ApiClient } from './http.ts';
import { appsById, client, json, opt, out, resolveApp, run } from './commands.ts';
import { looksLikeId, machineZone, parseDuration, parseZone, UsageError } from './parse.ts';
import { table } from './format.ts';

interface ScheduleView {
  id: string;
  app: { id: string; name: string };
  cron: string;
  timezone: string;
  dst_gap: string;
  dst_overlap: string;
  dependency: { id: string; name: string } | null;
  dependency_lead_seconds: number | null;
  expires_after_seconds: number;
  starts_at: string | null;
  ends_at: string | null;
  paused: boolean;
  next_runs: string[];
}

interface PreviewView {
  run_at: string;
  local: { year: number; month: number; day: number; hour: number; minute: number; second: number };
  utc_offset: string;
  note?: string;
}

const two = (n: number) => String(n).padStart(2, '0');

/** An instant as the wall time of a zone: "2027-03-15 09:30:00 (UTC+01:00)". */
function inZone(iso: string, zone: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'longOffset',
  }).formatToParts(new Date(iso));
  const p = (t: string) => parts.find((x) => x.type === t)?.value ?? '';
  const offset = p('timeZoneName').replace(/^GMT$/, 'UTC+00:00').replace(/^GMT/, 'UTC');
  return `${p('year')}-${p('month')}-${p('day')} ${p('hour')}:${p('minute')}:${p('second')} (${offset})`;
}

function summary(s: ScheduleView): string {
  const lines = [
    `${s.id}  ${s.app.name}  "${s.cron}" ${s.timezone}${s.paused ? '  paused' : ''}`,
  ];
  if (s.dependency) lines.push(`  after   ${s.dependency.name}, ${s.dependency_lead_seconds} s before`);
  if (s.next_runs.length) {
    lines.push('  next runs:');
    for (const r of s.next_runs) lines.push(`    ${inZone(r, s.timezone)} = ${r}`);
  }
  return lines.join('\n');
}

async function getSchedule(c: ApiClient, id: string): Promise<ScheduleView> {
  try {
    return await c.get<ScheduleView>(`/v1/schedules/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || (err.status === 400 && !looksLikeId(id)))) throw new Error(`unknown schedule '${id}'`);
    throw err;
  }
}

function parseInstant(option: string) {
  return (raw: string) => {
    if (Number.isNaN(Date.parse(raw)) || !/^\d{4}-\d\d-\d\dT/.test(raw)) throw new UsageError(`${option} must be an RFC 3339 date-time such as 2030-01-01T00:00:00Z, got "${raw}"`);
    return raw;
  };
}

const gapOption = () => new Option('--dst-gap <policy>', 'a local time skipped by a DST change: shift (default: moved forward by the gap) or skip').choices(['shift', 'skip']);
const overlapOption = () => new Option('--dst-overlap <policy>', 'a local time that occurs twice: first (default: once, the earlier) or both').choices(['first', 'both']);

export function registerScheduleCommands(program: Command): void {
  const schedules = program.command('schedules').description('recurring schedules: a cron expression in a time zone, each occurrence an ordinary deployment');

  schedules
    .command('create')
    .description('deploy APP at every match of a cron expression in a time zone')
    .argument('<app>', 'app name or id')
    .requiredOption('--cron <expr>', 'cron expression: 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first)')
    .option('--tz <zone>', `IANA time zone the expression is read in (default: this machine's, ${machineZone()})`, opt(parseZone))
    .option('--after <app>', 'deploy this app (name or id) first, --lead before each occurrence')
    .option('--lead <duration>', 'how long before APP the --after app deploys: 15m, 90s, 1h (default 15m)', opt((s) => parseDuration(s, '--lead')))
    .option('--expires <duration>', 'an occurrence not started within this long after its instant is missed (default 1h)', opt((s) => parseDuration(s, '--expires')))
    .option('--starts-at <instant>', 'no run before this RFC 3339 instant', opt(parseInstant('--starts-at')))
    .option('--ends-at <instant>', 'no run after this RFC 3339 instant', opt(parseInstant('--ends-at')))
    .addOption(gapOption())
    .addOption(overlapOption())
    .option('--paused', 'create it paused')
    .option('--json', 'print the schedule as JSON')
    .addHelpText('after', '\nExample:\n  shipclock schedules create api --cron "30 9 * * 1-5" --tz Europe/Berlin --after migrations --lead 15m')
    .action(run(async (appRef: string, o: {
      cron: string; tz?: string; after?: string; lead?: number; expires?: number; startsAt?: string; endsAt?: string;
      dstGap?: string; dstOverlap?: string; paused?: boolean; json?: boolean;
    }) => {
      if (o.lead !== undefined && !o.after) throw new UsageError('--lead needs --after');
      const c = client();
      const list = await appsById(c);
      const app = await resolveApp(list, appRef);
      const dep = o.after ? await resolveApp(list, o.after, 'dependency app') : undefined;
      const body: Record<string, unknown> = { app: app.id, cron: o.cron, timezone: o.tz ?? parseZone(machineZone()) };
      if (dep) body.dependency = dep.id;
      if (o.lead !== undefined) body.dependency_lead_seconds = o.lead;
      if (o.expires !== undefined) body.expires_after_seconds = o.expires;
      if (o.startsAt) body.starts_at = o.startsAt;
      if (o.endsAt) body.ends_at = o.endsAt;
      if (o.dstGap) body.dst_gap = o.dstGap;
      if (o.dstOverlap) body.dst_overlap = o.dstOverlap;
      if (o.paused) body.paused = true;
      const s = await c.post<ScheduleView>('/v1/schedules', body);
      if (o.json) return json(s);
      out(`created ${summary(s)}`);
    }));

  schedules
    .command('ls')
    .description('list your team\'s schedules with their next run')
    .option('--json', 'print JSON')
    .action(run(async (o: { json?: boolean }) => {
      const list = await client().all<ScheduleView>('/v1/schedules');
      if (o.json) return json(list);
      if (!list.length) return out('no schedules');
      out(table(
        ['ID', 'APP', 'CRON', 'ZONE', 'STATE', 'NEXT RUN (LOCAL)', 'NEXT RUN (UTC)'],
        list.map((s) => [s.id, s.app.name, s.cron, s.timezone, s.paused ? 'paused' : s.next_runs.length ? 'active' : 'ended',
          s.next_runs[0] ? inZone(s.next_runs[0], s.timezone) : '', s.next_runs[0] ?? '']),
      ));
    }));

  schedules
    .command('show')
    .description('show a schedule and its next runs')
    .argument('<id>', 'schedule id')
    .option('--json', 'print JSON')
    .action(run(async (id: string, o: { json?: boolean }) => {
      const s = await getSchedule(client(), id);
      if (o.json) return json(s);
      out(summary(s));
    }));

  for (const [name, verb, what] of [['pause', 'pause', 'its occurrences that have not started are canceled'], ['resume', 'resume', 'from now on, without back-filling']] as const) {
    schedules
      .command(name)
      .description(`${verb} a schedule: ${what}`)
      .argument('<id>', 'schedule id')
      .option('--json', 'print JSON')
      .action(run(async (id: string, o: { json?: boolean }) => {
        const c = client();
        await getSchedule(c, id);
        const s = await c.post<ScheduleView>(`/v1/schedules/${encodeURIComponent(id)}/${name}`);
        if (o.json) return json(s);
        out(`${name === 'pause' ? 'paused' : 'resumed'} ${summary(s)}`);
      }));
  }

  schedules
    .command('rm')
    .description('delete a schedule: its occurrences that have not started are canceled; those that ran keep their history')
    .argument('<id>', 'schedule id')
    .action(run(async (id: string) => {
      const c = client();
      await getSchedule(c, id);
      await c.request('DELETE', `/v1/schedules/${encodeURIComponent(id)}`);
      out(`deleted schedule ${id}`);
    }));

  schedules
    .command('preview')
    .description('show when a cron expression would fire in a time zone (nothing is stored)')
    .requiredOption('--cron <expr>', 'cron expression: 5 fields, or 6 with seconds first')
    .option('--tz <zone>', `IANA time zone (default: this machine's, ${machineZone()})`, opt(parseZone))
    .option('--count <n>', 'how many (1-100, default 5)', opt((raw) => {
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 1 || n > 100) throw new UsageError(`--count must be an integer from 1 to 100, got "${raw}"`);
      return n;
    }))
    .option('--from <instant>', 'instants after this RFC 3339 one (default now)', opt(parseInstant('--from')))
    .addOption(gapOption())
    .addOption(overlapOption())
    .option('--json', 'print JSON')
    .action(run(async (o: { cron: string; tz?: string; count?: number; from?: string; dstGap?: string; dstOverlap?: string; json?: boolean }) => {
      const zone = o.tz ?? parseZone(machineZone());
      const r = await client().get<{ result: PreviewView[] }>('/v1/schedules/preview', {
        cron: o.cron, timezone: zone, count: o.count, from: o.from, dst_gap: o.dstGap, dst_overlap: o.dstOverlap,
      });
      if (o.json) return json(r.result);
      out(table(['LOCAL TIME', 'OFFSET', 'RUN AT (UTC)', 'NOTE'], r.result.map((x) => {
        const l = x.local;
        return [`${l.year}-${two(l.month)}-${two(l.day)} ${two(l.hour)}:${two(l.minute)}:${two(l.second)}`, x.utc_offset, x.run_at, x.note ?? ''];
      })));
    }));
}
