/**
 * The API client commands of `shipclock`: login, apps ls, schedule, ls, show, cancel, approve, reject, watch.
 * Exit codes: 0 done, 1 the server or the network said no (the message says why), 2 usage
 * errors (a bad option value included).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { ApiClient, ApiError } from './http.ts';
import { readConfig, writeConfig } from './config.ts';
import { looksLikeId, machineZone, parseAt, parseDuration, parseLimit, parseState, parseZone, UsageError } from './parse.ts';
import { appLabel, approvalLabel, deploymentDetails, deploymentSummary, localString, table, type AppView, type DeploymentView } from './format.ts';
import { registerScheduleCommands } from './schedules.ts';
import { watchDeployment } from './watch.ts';

export function out(s: string): void {
  process.stdout.write(s + '\n');
}
export function json(v: unknown): void {
  out(JSON.stringify(v, null, 2));
}

/** Wraps an option parser so a bad value is a commander usage error (exit 2). */
export function opt<T>(parse: (raw: string) => T): (raw: string) => T {
  return (raw) => {
    try {
      return parse(raw);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

/** Runs an action; reports its failure as "error: ..." with exit 1 (2 for usage errors). */
export function run<A extends unknown[]>(fn: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    let code: number;
    try {
      code = (await fn(...args)) ?? 0;
    } catch (err) {
      process.stderr.write(`error: ${(err as Error).message}\n`);
      code = err instanceof UsageError ? 2 : 1;
    }
    process.exitCode = code;
  };
}

export function client(): ApiClient {
  const cfg = readConfig();
  return new ApiClient(cfg.url, cfg.token);
}

export async function appsById(c: ApiClient): Promise<AppView[]> {
  return c.all<AppView>('/v1/apps');
}

/** An app by id or by (case-insensitive) name; "unknown app 'x'" otherwise. */
export async function resolveApp(apps: AppView[], ref: string, what = 'app'): Promise<AppView> {
  const byId = looksLikeId(ref) ? apps.find((a) => a.id.toLowerCase() === ref.toLowerCase()) : undefined;
  if (byId) return byId;
  const byName = apps.filter((a) => a.name.toLowerCase() === ref.toLowerCase());
  if (byName.length === 1) return byName[0];
  if (byName.length > 1) throw new Error(`${what} name '${ref}' is ambiguous: use its id (${byName.map((a) => a.id).join(', ')})`);
  const names = apps.map((a) => a.name).sort();
  throw new Error(`unknown ${what} '${ref}'${names.length ? ` (known apps: ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', ...' : ''})` : ' (this team has no apps yet)'}`);
}

export function nameMap(apps: AppView[]): Map<string, string> {
  return new Map(apps.map((a) => [a.id, a.name]));
}

async function getDeployment(c: ApiClient, id: string): Promise<DeploymentView> {
  try {
    return (await c.get<{ result: DeploymentView }>(`/v1/scheduled_deployments/${encodeURIComponent(id)}`)).result;
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || ((err.status === 400 || err.status === 422) && !looksLikeId(id)))) {
      throw new Error(`unknown deployment '${id}'`);
    }
    throw err;
  }
}

export function registerClientCommands(program: Command): void {
  program
    .command('login')
    .description('log in to a shipclock server and keep the token in $SHIPCLOCK_CONFIG (mode 0600)')
    .requiredOption('--url <url>', 'server URL, e.g. https://shipclock.example.com', opt((u) => {
      if (!/^https?:\/\/[^/]/.test(u)) throw new Error(`--url must be an http(s) URL, got "${u}"`);
      return u.replace(/\/+$/, '');
    }))
    .requiredOption('--email <email>', 'your email address')
    .addOption(new Option('--password <password>', 'your password (or set SHIPCLOCK_PASSWORD)').env('SHIPCLOCK_PASSWORD'))
    .action(run(async (o: { url: string; email: string; password?: string }) => {
      if (!o.password) throw new UsageError('--password is required (or set SHIPCLOCK_PASSWORD)');
      const anon = new ApiClient(o.url, null);
      const tok = await anon.post<{ access_token: string; expires_in?: number }>('/v1/auth/login', { email: o.email, password: o.password });
      const file = writeConfig({ url: o.url, token: tok.access_token });
      const me = await new ApiClient(o.url, tok.access_token).get<{ email: string; role: string; team?: { name: string } }>('/v1/me').catch(() => null);
      out(`logged in to ${o.url}${me ? ` as ${me.email} (${me.role}${me.team ? ` in team ${me.team.name}` : ''})` : ''}; token saved in ${file}`);
    }));

  const apps = program.command('apps').description('applications and their deploy targets');
  apps
    .command('ls')
    .description('list your team\'s apps')
    .option('--json', 'print JSON')
    .action(run(async (o: { json?: boolean }) => {
      const list = await appsById(client());
      if (o.json) return json(list);
      if (!list.length) return out('no apps');
      out(table(['ID', 'NAME', 'TARGET'], list.map((a) => [a.id, a.name, a.target?.type ?? ''])));
    }));

  program
    .command('schedule')
    .description('schedule a deployment of APP at a local time in a time zone')
    .argument('<app>', 'app name or id')
    .requiredOption('--at <when>', 'local date and time "YYYY-MM-DD HH:MM[:SS]"', opt(parseAt))
    .option('--tz <zone>', `IANA time zone of --at (default: this machine's, ${machineZone()})`, opt(parseZone))
    .option('--after <app>', 'deploy this app (name or id) first, --lead before')
    .option('--lead <duration>', 'how long before APP the --after app deploys: 15m, 90s, 1h (default 15m)', opt((s) => parseDuration(s, '--lead')))
    .option('--json', 'print the scheduled deployment as JSON')
    .addHelpText('after', '\nExample:\n  shipclock schedule api --at "2030-03-01 02:00" --tz Europe/Berlin --after db-migrate --lead 10m')
    .action(run(async (appRef: string, o: { at: ReturnType<typeof parseAt>; tz?: string; after?: string; lead?: number; json?: boolean }) => {
      if (o.lead !== undefined && !o.after) throw new UsageError('--lead needs --after');
      const c = client();
      const list = await appsById(c);
      const app = await resolveApp(list, appRef);
      const dep = o.after ? await resolveApp(list, o.after, 'dependency app') : undefined;
      const body: Record<string, unknown> = { app: app.id, ...o.at, timezone: o.tz ?? parseZone(machineZone()) };
      if (dep) body.dependency = dep.id;
      if (o.lead !== undefined) body.dependency_lead_seconds = o.lead;
      const { result } = await c.post<{ result: DeploymentView }>('/v1/scheduled_deployments', body);
      if (o.json) return json(result);
      const names = nameMap(list);
      out(`scheduled ${deploymentSummary(result, names)}`);
      if (result.dependency) out(`  after   ${deploymentSummary(result.dependency, names)}`);
    }));

  program
    .command('ls')
    .description('list scheduled deployments (newest instants last)')
    .option('--state <state>', 'only this state: scheduled, running, succeeded, failed, canceled, skipped, missed', opt(parseState))
    .option('--app <app>', 'only this app (name or id)')
    .option('--approval <status>', 'only this approval status: pending, approved, rejected', opt((v) => {
      if (!['pending', 'approved', 'rejected'].includes(v)) throw new Error(`--approval must be pending, approved or rejected, got "${v}"`);
      return v;
    }))
    .option('--limit <n>', 'at most this many (default 50)', opt(parseLimit), 50)
    .option('--json', 'print JSON')
    .action(run(async (o: { state?: string; app?: string; approval?: string; limit: number; json?: boolean }) => {
      const c = client();
      const list = await appsById(c);
      const app = o.app ? await resolveApp(list, o.app) : undefined;
      const rows = await c.all<DeploymentView>('/v1/scheduled_deployments', { state: o.state, app: app?.id, approval: o.approval }, o.limit);
      if (o.json) return json(rows);
      if (!rows.length) return out('no deployments');
      const names = nameMap(list);
      out(table(
        ['ID', 'APP', 'STATE', 'APPROVAL', 'LOCAL TIME', 'ZONE', 'RUN AT (UTC)', 'AFTER'],
        rows.map((d) => [d.id, appLabel(d, names), d.state, approvalLabel(d), localString(d), d.timezone, d.run_at, d.dependency ? appLabel(d.dependency, names) : '']),
      ));
    }));

  program
    .command('show')
    .description('show a deployment with its dependency, event timeline and log')
    .argument('<id>', 'deployment id')
    .option('--json', 'print JSON')
    .action(run(async (id: string, o: { json?: boolean }) => {
      const c = client();
      const d = await getDeployment(c, id);
      if (o.json) return json(d);
      const names = nameMap(await appsById(c).catch(() => []));
      out(deploymentDetails(d, names));
    }));

  program
    .command('cancel')
    .description('cancel a deployment (its pending dependency is canceled too)')
    .argument('<id>', 'deployment id')
    .option('--json', 'print JSON')
    .action(run(async (id: string, o: { json?: boolean }) => {
      const c = client();
      await getDeployment(c, id);
      const { result } = await c.post<{ result: DeploymentView }>(`/v1/scheduled_deployments/${encodeURIComponent(id)}/cancel`);
      if (o.json) return json(result);
      out(`${result.id}  ${result.state}`);
    }));

  program
    .command('approve')
    .description('approve a deployment that needs approval (not one you scheduled)')
    .argument('<id>', 'deployment id')
    .option('--comment <text>', 'a note kept with the approval')
    .option('--json', 'print JSON')
    .action(run(async (id: string, o: { comment?: string; json?: boolean }) => {
      const c = client();
      await getDeployment(c, id);
      const { result } = await c.post<{ result: DeploymentView }>(`/v1/scheduled_deployments/${encodeURIComponent(id)}/approve`, o.comment ? { comment: o.comment } : {});
      if (o.json) return json(result);
      out(`${result.id}  ${result.state}  approval ${approvalLabel(result)}`);
    }));

  program
    .command('reject')
    .description('reject a deployment that needs approval, saying why: at its instant it is skipped')
    .argument('<id>', 'deployment id')
    .option('--comment <text>', 'why (required)')
    .option('--json', 'print JSON')
    .action(run(async (id: string, o: { comment?: string; json?: boolean }) => {
      if (!o.comment?.trim()) throw new UsageError('--comment is required: say why');
      const c = client();
      await getDeployment(c, id);
      const { result } = await c.post<{ result: DeploymentView }>(`/v1/scheduled_deployments/${encodeURIComponent(id)}/reject`, { comment: o.comment });
      if (o.json) return json(result);
      out(`${result.id}  ${result.state}  approval ${approvalLabel(result)}`);
    }));

  program
    .command('watch')
    .description('follow a deployment live until it ends: exit 0 if it succeeded, 1 otherwise (a CI step)')
    .argument('<id>', 'deployment id')
    .action(run(async (id: string) => {
      const c = client();
      const names = nameMap(await appsById(c).catch(() => []));
      return watchDeployment(c, id, names, { out });
    }));

  registerScheduleCommands(program);
}
