/**
 * Human output of the client: aligned tables and one-line summaries.
 */
export interface AppView {
  id: string;
  name: string;
  target?: { type?: string };
}

export interface DeploymentView {
  id: string;
  app: string | { id: string; name?: string };
  state: string;
  run_at: string;
  timezone: string;
  local: { year: number; month: number; day: number; hour: number; minute: number; second: number };
  utc_offset?: string;
  dependency: DeploymentView | null;
  attempts?: number;
  error?: string | null;
  created_at?: string;
  started_at?: string | null;
  finished_at?: string | null;
  events?: Array<{ at?: string; state?: string; message?: string | null }>;
  log?: string | null;
  rollback?: { state: string; ref?: Record<string, unknown> | null; error?: string; started_at?: string | null; finished_at?: string | null } | null;
  approval?: ApprovalView | null;
}

export interface ApprovalView {
  required: number;
  approvals: Array<{ user: { email: string }; at: string; comment?: string | null }>;
  rejection?: { user: { email: string }; at: string; comment?: string | null } | null;
  status: 'pending' | 'approved' | 'rejected';
}

/** "pending 1/2", "approved 2/2", "rejected"; empty when no approval is needed. */
export function approvalLabel(d: DeploymentView): string {
  const a = d.approval;
  if (!a) return '';
  if (a.status === 'rejected') return 'rejected';
  return `${a.status} ${a.approvals.length}/${a.required}`;
}

export function appIdOf(d: DeploymentView): string {
  return typeof d.app === 'string' ? d.app : d.app.id;
}

export function appLabel(d: DeploymentView, names: Map<string, string>): string {
  if (typeof d.app !== 'string' && d.app.name) return d.app.name;
  return names.get(appIdOf(d)) ?? appIdOf(d);
}

const two = (n: number) => String(n).padStart(2, '0');

export function localString(d: DeploymentView): string {
  const l = d.local;
  return `${l.year}-${two(l.month)}-${two(l.day)} ${two(l.hour)}:${two(l.minute)}:${two(l.second)}`;
}

export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i]))).join('  ').trimEnd()).join('\n');
}

export function deploymentSummary(d: DeploymentView, names: Map<string, string>): string {
  return `${d.id}  ${appLabel(d, names)}  ${d.state}  ${localString(d)} ${d.timezone}${d.utc_offset ? ` (UTC${d.utc_offset})` : ''} = ${d.run_at}`;
}

export function deploymentDetails(d: DeploymentView, names: Map<string, string>): string {
  const lines = [
    `id:          ${d.id}`,
    `app:         ${appLabel(d, names)} (${appIdOf(d)})`,
    `state:       ${d.state}`,
    `local time:  ${localString(d)} ${d.timezone}${d.utc_offset ? ` (UTC${d.utc_offset})` : ''}`,
    `run at:      ${d.run_at}`,
  ];
  if (d.attempts !== undefined) lines.push(`attempts:    ${d.attempts}`);
  if (d.created_at) lines.push(`created:     ${d.created_at}`);
  if (d.started_at) lines.push(`started:     ${d.started_at}`);
  if (d.finished_at) lines.push(`finished:    ${d.finished_at}`);
  if (d.error) lines.push(`error:       ${d.error}`);
  if (d.rollback) {
    const rb = d.rollback;
    // A rollback that did not restore what ran before is said in capitals: it needs a person.
    const loud = rb.state === 'failed' ? 'FAILED: what ran before was NOT restored' : rb.state === 'not_possible' ? 'NOT POSSIBLE: what ran before was NOT restored' : rb.state;
    lines.push(`rollback:    ${loud}`);
    if (rb.error) lines.push(`  error:     ${rb.error}`);
    if (rb.started_at) lines.push(`  started:   ${rb.started_at}`);
    if (rb.finished_at) lines.push(`  finished:  ${rb.finished_at}`);
    if (rb.ref && Object.keys(rb.ref).length) lines.push(`  ref:       ${Object.entries(rb.ref).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  }
  if (d.approval) {
    lines.push(`approval:    ${approvalLabel(d)}`);
    for (const a of d.approval.approvals) lines.push(`  approved by ${a.user.email} at ${a.at}${a.comment ? `: ${a.comment}` : ''}`);
    const r = d.approval.rejection;
    if (r) lines.push(`  rejected by ${r.user.email} at ${r.at}${r.comment ? `: ${r.comment}` : ''}`);
  }
  if (d.dependency) {
    const dep = d.dependency;
    lines.push(`dependency:  ${dep.id}  ${appLabel(dep, names)}  ${dep.state}  ${dep.run_at}`);
  }
  if (d.events?.length) {
    lines.push('events:');
    for (const e of d.events) lines.push(`  ${e.at ?? ''}  ${e.state ?? ''}${e.message ? `  ${e.message}` : ''}`);
  }
  if (d.log) {
    lines.push('log:');
    for (const l of d.log.replace(/\n$/, '').split('\n')) lines.push(`  ${l}`);
  }
  return lines.join('\n');
}
