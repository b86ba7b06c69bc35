/**
 * The browser's client for the shipclock API v1 (see SPEC.md, "API contract v1"). One `request`
 * function adds the bearer token and turns `{error:{code,message,field?}}` answers into ApiError,
 * so forms can put the message on the field it names.
 */

export type Role = 'owner' | 'deployer' | 'viewer';
export type DeploymentState = 'scheduled' | 'held' | 'running' | 'succeeded' | 'failed' | 'canceled' | 'skipped' | 'missed';
export const DEPLOYMENT_STATES: DeploymentState[] = ['scheduled', 'held', 'running', 'succeeded', 'failed', 'canceled', 'skipped', 'missed'];

export interface Me {
  id: string;
  email: string;
  team: { id: string; name: string };
  role: Role;
  admin: boolean;
  /** Signed in with the printed one-time password: the UI shows only the change form. */
  password_change_required?: boolean;
  /** Signs in through single sign-on. */
  sso?: boolean;
}

export type Target =
  | { type: 'webhook'; url: string; secret?: string; headers?: Record<string, string>; timeout_seconds?: number }
  | { type: 'command'; command: string; args?: string[]; cwd?: string; timeout_seconds?: number }
  | {
      type: 'ecs'; region: string; cluster: string; service: string; image?: string; container?: string;
      credentials: string; poll_interval_seconds?: number; timeout_seconds?: number;
    }
  | { type: 'digitalocean'; app_id: string; credentials: string; force_build?: boolean; poll_interval_seconds?: number; timeout_seconds?: number }
  | {
      type: 'github_actions'; credentials: string; repository: string; workflow: string; ref: string; inputs?: Record<string, string>;
      poll_interval_seconds?: number; timeout_seconds?: number;
    }
  | {
      type: 'kubernetes'; credentials: string; namespace: string; kind?: 'Deployment' | 'StatefulSet' | 'DaemonSet'; name: string;
      container?: string; image?: string; poll_interval_seconds?: number; timeout_seconds?: number;
    };
export type TargetType = Target['type'];

/** An app's approval policy: approvals a deployment needs before it fires, and whose count. */
export interface ApprovalPolicy {
  required: number;
  from_roles?: Array<'owner' | 'deployer'>;
}

export interface App {
  id: string;
  name: string;
  target: Target;
  retry?: { max_attempts: number; backoff_seconds: number };
  /** What happens when a deployment fails after it changed something (default none). */
  on_failure?: 'none' | 'rollback';
  /** null: no approval needed. */
  approval?: ApprovalPolicy | null;
  created_at?: string;
  updated_at?: string;
}

export interface Credential {
  id: string;
  name: string;
  provider: 'aws' | 'digitalocean' | 'github' | 'kubernetes';
  /** github: the GitHub Enterprise Server API root, when set. */
  api_url?: string;
  /** kubernetes: the API server URL and the kubeconfig context (never a secret). */
  server?: string;
  context?: string;
  created_at?: string;
}

export interface LocalFields {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

export interface ScheduledDeployment {
  id: string;
  app: { id: string; name: string };
  state: DeploymentState;
  run_at: string;
  timezone: string;
  local: LocalFields;
  utc_offset: string;
  dependency: ScheduledDeployment | null;
  dependency_lead_seconds?: number;
  expires_at?: string | null;
  attempts: number;
  error?: string | null;
  provider_ref?: unknown;
  created_at: string;
  started_at?: string | null;
  finished_at?: string | null;
  /** The recurring schedule this is an occurrence of; null for a one-off deployment. */
  schedule_id?: string | null;
  /** state held: the deploy freeze holding it. */
  held_by?: string | null;
  /** An owner scheduled or released it into a freeze on purpose. */
  freeze_override?: { reason: string; by: string; at: string } | null;
  /** Its rollback (the app's on_failure "rollback", or by hand); null when none was made. */
  rollback?: Rollback | null;
  /** null when its app needed no approval when it was scheduled. */
  approval?: Approval | null;
}

export interface Rollback {
  state: 'pending' | 'running' | 'succeeded' | 'failed' | 'not_possible';
  ref: Record<string, unknown> | null;
  error?: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface ApprovalDecision {
  user: { id: string; email: string };
  at: string;
  comment: string | null;
  via?: string | null;
}

export type ApprovalStatus = 'pending' | 'approved' | 'rejected';

export interface Approval {
  required: number;
  approvals: ApprovalDecision[];
  rejection: ApprovalDecision | null;
  status: ApprovalStatus;
}

export interface DeploymentEvent {
  id: string;
  at: string;
  state: DeploymentState | string;
  message?: string | null;
}

export interface DeploymentDetail extends ScheduledDeployment {
  events?: DeploymentEvent[];
  log?: string | null;
}

export interface ListPage<T> {
  result: T[];
  next_cursor: string | null;
}

/** The body of POST /v1/scheduled_deployments; PATCH takes the same time fields. */
export interface ScheduleRequest extends Partial<LocalFields> {
  app?: string;
  timezone: string;
  dependency?: string;
  dependency_lead_seconds?: number;
  disambiguation?: 'earlier' | 'later' | 'reject';
  expires_after_seconds?: number;
  /** Owners: schedule into a deploy freeze on purpose. */
  override_freeze?: { reason: string };
}

/** An error answer from the API, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

const TOKEN_KEY = 'shipclock.token';

export function getToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string | null): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** Called when the server answers 401 to an authenticated call: the session is over. */
let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const token = getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, 'network_error', `cannot reach the server: ${(err as Error).message}`);
  }
  const text = await res.text();
  let data: unknown = undefined;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
  }
  if (!res.ok) {
    const e = (data as { error?: { code?: string; message?: string; field?: string } } | undefined)?.error;
    if (res.status === 401 && token && path !== '/v1/auth/login') onUnauthorized();
    throw new ApiError(res.status, e?.code ?? `http_${res.status}`, e?.message ?? `${res.status} ${res.statusText}`, e?.field);
  }
  return data as T;
}

function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export interface DeploymentFilter {
  state?: string;
  app?: string;
  approval?: ApprovalStatus;
  from?: string;
  to?: string;
  cursor?: string | null;
  limit?: number;
}

export const api = {
  login: (email: string, password: string) =>
    request<{ access_token: string; token_type: string; expires_in: number }>('POST', '/v1/auth/login', { email, password }),
  me: () => request<Me>('GET', '/v1/me'),

  listApps: (cursor?: string | null) => request<ListPage<App>>('GET', `/v1/apps${query({ cursor, limit: 500 })}`),
  createApp: (body: Omit<App, 'id'>) => request<App>('POST', '/v1/apps', body),
  updateApp: (id: string, body: Partial<Omit<App, 'id'>>) => request<App>('PATCH', `/v1/apps/${encodeURIComponent(id)}`, body),
  deleteApp: (id: string) => request<unknown>('DELETE', `/v1/apps/${encodeURIComponent(id)}`),

  listCredentials: (cursor?: string | null) => request<ListPage<Credential>>('GET', `/v1/credentials${query({ cursor, limit: 500 })}`),
  createCredential: (body: Record<string, string>) => request<Credential>('POST', '/v1/credentials', body),
  deleteCredential: (id: string) => request<unknown>('DELETE', `/v1/credentials/${encodeURIComponent(id)}`),

  listDeployments: (f: DeploymentFilter) => request<ListPage<ScheduledDeployment>>('GET', `/v1/scheduled_deployments${query({ ...f })}`),
  getDeployment: (id: string) => request<{ result: DeploymentDetail }>('GET', `/v1/scheduled_deployments/${encodeURIComponent(id)}`),
  schedule: (body: ScheduleRequest) => request<{ result: ScheduledDeployment }>('POST', '/v1/scheduled_deployments', body),
  reschedule: (id: string, body: ScheduleRequest) =>
    request<{ result: ScheduledDeployment & { approval_reset?: boolean } }>('PATCH', `/v1/scheduled_deployments/${encodeURIComponent(id)}`, body),
  cancel: (id: string) => request<{ result: ScheduledDeployment }>('POST', `/v1/scheduled_deployments/${encodeURIComponent(id)}/cancel`),
  rollback: (id: string) => request<{ result: ScheduledDeployment }>('POST', `/v1/scheduled_deployments/${encodeURIComponent(id)}/rollback`),
  approve: (id: string, comment?: string) =>
    request<{ result: ScheduledDeployment }>('POST', `/v1/scheduled_deployments/${encodeURIComponent(id)}/approve`, comment ? { comment } : {}),
  reject: (id: string, comment: string) =>
    request<{ result: ScheduledDeployment }>('POST', `/v1/scheduled_deployments/${encodeURIComponent(id)}/reject`, { comment }),

  listSchedules: (cursor?: string | null) => request<ListPage<Schedule>>('GET', `/v1/schedules${query({ cursor, limit: 500 })}`),
  createSchedule: (body: ScheduleBody) => request<Schedule>('POST', '/v1/schedules', body),
  updateSchedule: (id: string, body: Partial<ScheduleBody>) => request<Schedule>('PATCH', `/v1/schedules/${encodeURIComponent(id)}`, body),
  deleteSchedule: (id: string) => request<unknown>('DELETE', `/v1/schedules/${encodeURIComponent(id)}`),
  pauseSchedule: (id: string) => request<Schedule>('POST', `/v1/schedules/${encodeURIComponent(id)}/pause`),
  resumeSchedule: (id: string) => request<Schedule>('POST', `/v1/schedules/${encodeURIComponent(id)}/resume`),
  previewSchedule: (q: { cron: string; timezone: string; count?: number; from?: string; dst_gap?: DstGap; dst_overlap?: DstOverlap }) =>
    request<{ result: PreviewRun[] }>('GET', `/v1/schedules/preview${query({ ...q })}`),
};

export type DstGap = 'shift' | 'skip';
export type DstOverlap = 'first' | 'both';

/** A recurring schedule (GET /v1/schedules). */
export interface Schedule {
  id: string;
  app: { id: string; name: string };
  cron: string;
  timezone: string;
  dst_gap: DstGap;
  dst_overlap: DstOverlap;
  dependency: { id: string; name: string } | null;
  dependency_lead_seconds: number | null;
  expires_after_seconds: number;
  starts_at: string | null;
  ends_at: string | null;
  paused: boolean;
  /** The next 5 instants (UTC); empty while paused or once ended. */
  next_runs: string[];
  created_at: string;
  updated_at: string;
}

/** The body of POST /v1/schedules. */
export interface ScheduleBody {
  app: string;
  cron: string;
  timezone: string;
  dependency?: string | null;
  dependency_lead_seconds?: number;
  expires_after_seconds?: number;
  starts_at?: string | null;
  ends_at?: string | null;
  dst_gap?: DstGap;
  dst_overlap?: DstOverlap;
  paused?: boolean;
}

/** One instant of GET /v1/schedules/preview. */
export interface PreviewRun {
  run_at: string;
  local: LocalFields;
  utc_offset: string;
  note?: 'shifted (DST gap)' | 'repeated hour';
}

/** Every page of a cursor-paginated list (apps and credentials are short lists). */
export async function listAll<T>(fetchPage: (cursor: string | null) => Promise<ListPage<T>>, max = 5000): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null = null;
  do {
    const page: ListPage<T> = await fetchPage(cursor);
    out.push(...page.result);
    cursor = page.next_cursor;
  } while (cursor && out.length < max);
  return out;
}

/** What the role may do; the server enforces the same rules (writes answer 403). */
export function can(me: Me | null, action: 'schedule' | 'manage'): boolean {
  if (!me) return false;
  if (action === 'manage') return me.role === 'owner';
  return me.role === 'owner' || me.role === 'deployer';
}

/** A member of a team, as GET /v1/teams/{id}/members lists it. */
export interface Member {
  id: string;
  email: string;
  role: Role;
  admin: boolean;
  sso: boolean;
  created_at: string;
}

/** An API token for CI (never its secret, but once: `token` in the creation answer). */
export interface ApiToken {
  id: string;
  name: string;
  role: Role;
  created_at: string;
  expires_at: string;
  last_used_at: string | null;
}

/** Accounts: passwords, single sign-on, members and API tokens (issue 16). */
export const accountsApi = {
  authMethods: () => request<{ password: boolean; sso: boolean }>('GET', '/v1/auth/methods'),
  ssoExchange: (code: string) =>
    request<{ access_token: string; token_type: string; expires_in: number }>('POST', '/v1/auth/oidc/exchange', { code }),
  changePassword: (current_password: string, new_password: string) =>
    request<null>('POST', '/v1/me/password', { current_password, new_password }),

  listMembers: (teamId: string, cursor?: string | null) =>
    request<ListPage<Member>>('GET', `/v1/teams/${encodeURIComponent(teamId)}/members${query({ cursor, limit: 500 })}`),
  addMember: (teamId: string, body: { email: string; password: string; role: Role }) =>
    request<{ id: string; email: string; role: Role }>('POST', `/v1/teams/${encodeURIComponent(teamId)}/members`, body),
  updateMember: (teamId: string, userId: string, role: Role) =>
    request<{ id: string; email: string; role: Role }>('PATCH', `/v1/teams/${encodeURIComponent(teamId)}/members/${encodeURIComponent(userId)}`, { role }),
  removeMember: (teamId: string, userId: string) =>
    request<null>('DELETE', `/v1/teams/${encodeURIComponent(teamId)}/members/${encodeURIComponent(userId)}`),

  listTokens: (cursor?: string | null) => request<ListPage<ApiToken>>('GET', `/v1/tokens${query({ cursor, limit: 500 })}`),
  createToken: (body: { name: string; role?: Role; expires_in_days?: number }) => request<ApiToken & { token: string }>('POST', '/v1/tokens', body),
  revokeToken: (id: string) => request<null>('DELETE', `/v1/tokens/${encodeURIComponent(id)}`),
};

/** Wall-clock fields of a one-off freeze's start or end. */
export interface WallFields {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
}

/** A deploy freeze (GET /v1/freezes). */
export interface Freeze {
  id: string;
  name: string;
  reason: string | null;
  kind: 'once' | 'recurring';
  timezone: string;
  start: WallFields | null;
  end: WallFields | null;
  start_at: string | null;
  end_at: string | null;
  cron: string | null;
  duration_seconds: number | null;
  apps: string[] | null;
  next_windows: Array<{ start: string; end: string }>;
  created_by: string | null;
  created_at: string;
}

export interface FreezeBody {
  name: string;
  timezone: string;
  start?: WallFields;
  end?: WallFields;
  cron?: string;
  duration_seconds?: number;
  apps?: string[] | null;
  reason?: string | null;
}

/** GET /v1/freezes/check. */
export interface FreezeCheck {
  frozen: boolean;
  freeze?: { id: string; name: string; reason: string | null; end: string };
  app?: 'app' | 'dependency';
  message?: string;
  next_allowed_at: string | null;
}

/** Deploy freezes (issue 11). */
export const freezesApi = {
  list: (cursor?: string | null) => request<ListPage<Freeze>>('GET', `/v1/freezes${query({ cursor, limit: 500 })}`),
  create: (body: FreezeBody) => request<Freeze & { conflicts: ScheduledDeployment[] }>('POST', '/v1/freezes', body),
  remove: (id: string) => request<null>('DELETE', `/v1/freezes/${encodeURIComponent(id)}`),
  check: (q: { app: string; run_at: string; dependency?: string | null; dependency_lead_seconds?: number; timezone?: string }) =>
    request<FreezeCheck>('GET', `/v1/freezes/check${query({ ...q })}`),
  release: (id: string, reason: string) =>
    request<{ result: ScheduledDeployment }>('POST', `/v1/scheduled_deployments/${encodeURIComponent(id)}/release`, { reason }),
};

export type NotifyEvent = 'failed' | 'missed' | 'skipped' | 'succeeded' | 'approval_requested' | 'approved' | 'rejected';

/** A notification subscription (owners): final states, and reminders when `remind_before_seconds` is set. */
export interface Subscription {
  id: string;
  url: string;
  events: NotifyEvent[];
  format: 'json' | 'slack';
  has_secret: boolean;
  remind_before_seconds: number | null;
  created_at: string;
}

export interface SubscriptionBody {
  url: string;
  events: NotifyEvent[];
  format: 'json' | 'slack';
  secret?: string;
  remind_before_seconds?: number | null;
}

/** Notifications and reminders (issue 12). */
export const notificationsApi = {
  list: (cursor?: string | null) => request<ListPage<Subscription>>('GET', `/v1/notifications${query({ cursor, limit: 500 })}`),
  create: (body: SubscriptionBody) => request<Subscription>('POST', '/v1/notifications', body),
  update: (id: string, body: Partial<SubscriptionBody> & { secret?: string | null }) =>
    request<Subscription>('PATCH', `/v1/notifications/${encodeURIComponent(id)}`, body),
  remove: (id: string) => request<null>('DELETE', `/v1/notifications/${encodeURIComponent(id)}`),
};
