/**
 * `shipclock freezes …` (create, ls, rm) and `shipclock release ID --reason …`: deploy freezes,
 * and the owner's release of a deployment a freeze holds. Apps by name or id.
 */
import type { Command } from 'commander';
import { appsById, client, json, nameMap, opt, out, resolveApp, run } from './commands.ts';
import { table } from './format.ts';
import type { ApiError } from './http.ts';
import { machineZone, parseAt, parseDuration, parseZone, UsageError } from './parse.ts';

interface FreezeView {
  id: string;
  name: string;
  reason: string | null;
  kind: 'once' | 'recurring';
  timezone: string;
  start_at: string | null;
  end_at: string | null;
  cron: string | null;
  duration_seconds: number | null;
  apps: string[] | null;
  next_windows: Array<{ start: string; end: string }>;
  conflicts?: Array<{ id: string; app: { name: string }; run_at: string }>;
}

/** An instant as the wall time of a zone: "2027-12-24 18:00 Europe/Berlin". */
function inZone(iso: string, zone: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
  }).formatToParts(new Date(iso));
  const p = (t: string) => parts.find((x) => x.type === t)?.value ?? '';
  return `${p('year')}-${p('month')}-${p('day')} ${p('hour')}:${p('minute')} ${zone}`;
}

/** The lines `schedule` prints for a 409 frozen: the server's message, the freeze, and the next allowed time as --at. */
export function frozenHint(err: ApiError, zone: string): string {
  const b = err.body ?? {};
  const f = b.freeze as { id: string; name: string } | undefined;
  const next = b.next_allowed_at as string | null | undefined;
  const lines = [err.message];
  if (f) lines.push(`  freeze:       ${f.name} (${f.id})`);
  if (next) {
    const local = inZone(next, zone);
    lines.push(`  next allowed: ${local} = ${next}`);
    lines.push(`  try:          --at "${local.slice(0, 16)}" --tz ${zone}`);
  } else if (next === null) lines.push('  next allowed: none within 366 days');
  return lines.join('\n');
}

function when(f: FreezeView): string {
  if (f.kind === 'once') return `${inZone(f.start_at!, f.timezone)} → ${inZone(f.end_at!, f.timezone).slice(0, 16)}`;
  const h = f.duration_seconds! / 3600;
  return `"${f.cron}" for ${Number.isInteger(h) ? `${h}h` : `${f.duration_seconds}s`} (${f.timezone})`;
}

export function registerFreezeCommands(program: Command): void {
  const freezes = program.command('freezes').description('deploy freezes: windows in which (some of) your team\'s apps must not deploy');

  freezes
    .command('create')
    .description('create a deploy freeze (owners): one-off with --from/--to, or recurring with --cron/--duration')
    .argument('<name>', 'what the freeze is, e.g. "Christmas"')
    .option('--from <when>', 'one-off: start, local "YYYY-MM-DD HH:MM"', opt(parseAt))
    .option('--to <when>', 'one-off: end, local "YYYY-MM-DD HH:MM" (deploying at the end itself is allowed)', opt(parseAt))
    .option('--cron <expr>', 'recurring: when each window starts, e.g. "0 16 * * 5" (Fridays 16:00)')
    .option('--duration <duration>', 'recurring: how long each window lasts in wall-clock time, e.g. 64h', opt((s) => parseDuration(s, '--duration')))
    .option('--tz <zone>', `IANA time zone of the times (default: this machine's, ${machineZone()})`, opt(parseZone))
    .option('--apps <apps>', 'comma-separated app names or ids (default: every app of the team)')
    .option('--reason <text>', 'why, shown with every refusal')
    .option('--json', 'print the freeze as JSON')
    .addHelpText('after', '\nExamples:\n  shipclock freezes create Christmas --from "2030-12-24 00:00" --to "2030-12-27 08:00" --tz Europe/Berlin\n  shipclock freezes create weekend --cron "0 16 * * 5" --duration 64h --tz Europe/Berlin --apps api,web')
    .action(run(async (name: string, o: {
      from?: ReturnType<typeof parseAt>; to?: ReturnType<typeof parseAt>; cron?: string; duration?: number; tz?: string; apps?: string; reason?: string; json?: boolean;
    }) => {
      const once = o.from !== undefined || o.to !== undefined;
      const recurring = o.cron !== undefined || o.duration !== undefined;
      if (once === recurring) throw new UsageError('give --from and --to (one-off) or --cron and --duration (recurring)');
      if (once && (!o.from || !o.to)) throw new UsageError('--from and --to go together');
      if (recurring && (!o.cron || o.duration === undefined)) throw new UsageError('--cron and --duration go together');
      const c = client();
      const list = await appsById(c);
      const body: Record<string, unknown> = { name, timezone: o.tz ?? parseZone(machineZone()) };
      if (once) {
        const w = (l: ReturnType<typeof parseAt>) => ({ year: l.year, month: l.month, day: l.day, hour: l.hour, minute: l.minute });
        body.start = w(o.from!);
        body.end = w(o.to!);
      } else {
        body.cron = o.cron;
        body.duration_seconds = o.duration;
      }
      if (o.apps) body.apps = await Promise.all(o.apps.split(',').map((a) => a.trim()).filter(Boolean).map(async (a) => (await resolveApp(list, a)).id));
      if (o.reason) body.reason = o.reason;
      const f = await c.post<FreezeView>('/v1/freezes', body);
      if (o.json) return json(f);
      out(`created freeze ${f.id}  ${f.name}  ${when(f)}`);
      const held = f.conflicts ?? [];
      if (held.length) {
        out(`  held ${held.length} scheduled deployment(s) inside it (release them with "shipclock release ID --reason …"):`);
        for (const d of held) out(`    ${d.id}  ${d.app.name}  ${inZone(d.run_at, String(body.timezone))}`);
      }
    }));

  freezes
    .command('ls')
    .description('list your team\'s freezes')
    .option('--json', 'print JSON')
    .action(run(async (o: { json?: boolean }) => {
      const c = client();
      const list = await c.all<FreezeView>('/v1/freezes');
      if (o.json) return json(list);
      if (!list.length) return out('no freezes');
      const names = nameMap(await appsById(c).catch(() => []));
      out(table(['ID', 'NAME', 'WHEN', 'APPS', 'NEXT WINDOW (UTC)', 'REASON'], list.map((f) => [
        f.id, f.name, when(f), f.apps ? f.apps.map((a) => names.get(a) ?? a).join(',') : 'all',
        f.next_windows[0] ? `${f.next_windows[0].start} → ${f.next_windows[0].end}` : 'over', f.reason ?? '',
      ])));
    }));

  freezes
    .command('rm')
    .description('delete a freeze (owners): the deployments it held whose instant is ahead are scheduled again')
    .argument('<id>', 'freeze id')
    .action(run(async (id: string) => {
      await client().request('DELETE', `/v1/freezes/${encodeURIComponent(id)}`);
      out(`deleted freeze ${id}`);
    }));

  program
    .command('release')
    .description('release a deployment a freeze holds (owners): it deploys at its instant despite the freeze; audited')
    .argument('<id>', 'deployment id')
    .requiredOption('--reason <text>', 'why it goes out during the freeze')
    .option('--json', 'print JSON')
    .action(run(async (id: string, o: { reason: string; json?: boolean }) => {
      const { result } = await client().post<{ result: { id: string; state: string; run_at: string } }>(`/v1/scheduled_deployments/${encodeURIComponent(id)}/release`, { reason: o.reason });
      if (o.json) return json(result);
      out(`${result.id}  ${result.state}  ${result.run_at}`);
    }));
}
