/**
 * What a reminder link does. GET (`inspectLink`) only reads: it tells what the link would do, or
 * why it will not; chat previews and mail scanners that fetch it change nothing. POST (`useLink`)
 * acts, in one transaction that also spends the link's nonce, so a link acts at most once and a
 * refused action leaves it usable. The action is done as the subscription's owner (who set the
 * reminder up), audited as done through a reminder link, and written to the timeline.
 */
import { ShipclockError } from '../core/errors.ts';
import { inTransaction, type Pool, type Queryable } from '../db/pool.ts';
import { nonceUse, spendNonce } from '../db/sql/reminders.ts';
import { selectAuthUser } from '../db/sql/users.ts';
import { ACTION_LABELS, type LinkAction, type LinkClaims, type LinkSigner } from '../notifications/links.ts';
import { POSTPONE_SECONDS } from '../notifications/reminders.ts';
import { roleAtLeast, type User } from './auth.ts';
import { rescheduleIn, timeInputAt } from './deployments.ts';
import { reminderSeams } from './reminder-seams.ts';

export type LinkOutcome =
  | { kind: 'confirm'; action: LinkAction; label: string; appName: string; runAt: Date; timezone: string; newRunAt: Date | null; actor: string; dependencyApp: string | null }
  | { kind: 'done'; action: LinkAction; label: string; appName: string; runAt: Date; timezone: string; newRunAt: Date | null; actor: string; dependencyApp: string | null }
  | { kind: 'refused'; status: number; title: string; message: string };

class Refused extends Error {
  constructor(readonly status: number, readonly title: string, message: string) {
    super(message);
  }
}

interface Checked {
  claims: LinkClaims;
  actor: User;
  deployment: { id: string; team_id: string; app_id: string; app_name: string; run_at: Date; timezone: string; expires_after_seconds: number; dependency_app_id: string | null; dependency_app_name: string | null };
  newRunAt: Date | null;
}

const fmt = (d: Date) => d.toISOString().replace('.000Z', 'Z');

/** Every check but the nonce's spending: shared by GET and POST. Throws Refused. */
async function check(db: Queryable, signer: LinkSigner, token: string): Promise<Checked> {
  const claims = signer.verify(token);
  if (!claims) throw new Refused(400, 'This link is not valid', 'The link is damaged or was not issued by this shipclock. Nothing was changed.');
  const { rows: [{ now }] } = await db.query<{ now: Date }>('SELECT now()');
  if (now.getTime() >= claims.expiresAtMs) {
    throw new Refused(410, 'This link has expired', `It was valid until ${fmt(new Date(claims.expiresAtMs))}. Nothing was changed.`);
  }
  const used = await nonceUse(db, claims.nonce);
  if (used) {
    throw new Refused(410, 'This link was already used', `A link of this reminder was used at ${fmt(used.used_at)} (${ACTION_LABELS[used.action as LinkAction] ?? used.action}). Each reminder acts once. Nothing was changed.`);
  }
  const { rows: [d] } = await db.query<Checked['deployment'] & { state: string }>(
    `SELECT d.id, d.team_id, d.app_id, a.name AS app_name, d.state, d.run_at, d.timezone, d.expires_after_seconds,
            dep.app_id AS dependency_app_id, da.name AS dependency_app_name
       FROM deployments d JOIN apps a ON a.id = d.app_id
       LEFT JOIN deployments dep ON dep.id = d.dependency_id AND dep.state = 'scheduled'
       LEFT JOIN apps da ON da.id = dep.app_id
      WHERE d.id = $1`,
    [claims.deploymentId],
  );
  if (!d) throw new Refused(404, 'No such deployment', 'The deployment of this reminder no longer exists. Nothing was changed.');
  if (d.state !== 'scheduled') throw new Refused(409, 'Nothing to do', `The deployment of ${d.app_name} is ${d.state} now. Nothing was changed.`);
  if (d.run_at.getTime() !== claims.runAtMs) {
    throw new Refused(409, 'The deployment moved', `The deployment of ${d.app_name} was rescheduled to ${fmt(d.run_at)} since this reminder; use the reminder for the new time. Nothing was changed.`);
  }
  const { rows: [sub] } = await db.query<{ created_by: string | null; team_id: string }>('SELECT created_by, team_id FROM notification_subscriptions WHERE id = $1', [claims.subscriptionId]);
  if (!sub || sub.team_id !== d.team_id) throw new Refused(410, 'This reminder was withdrawn', 'The notification subscription it came from was deleted. Nothing was changed.');
  const owner = sub.created_by ? await selectAuthUser(db, sub.created_by) : null;
  if (!owner || owner.team_id !== d.team_id || !roleAtLeast(owner.role, 'deployer')) {
    throw new Refused(403, 'Not allowed', 'A link acts as the person who set up the reminder, and they can no longer change this team\'s deployments. Nothing was changed.');
  }
  const actor: User = { id: owner.id, email: owner.email, team_id: owner.team_id, team_name: owner.team_name, role: owner.role, admin: owner.admin };
  const seams = reminderSeams();
  let newRunAt: Date | null = null;
  if (claims.action === 'postpone_next_allowed') {
    const appIds = d.dependency_app_id ? [d.app_id, d.dependency_app_id] : [d.app_id];
    const next = await seams.nextAllowedAt(db, d.team_id, appIds, d.run_at);
    if (!next || next.getTime() <= d.run_at.getTime()) throw new Refused(409, 'Nothing to do', `No freeze stands in the way of ${d.app_name} at ${fmt(d.run_at)} any more. Nothing was changed.`);
    newRunAt = new Date(Math.ceil(next.getTime() / 1000) * 1000);
  } else if (claims.action === 'approve') {
    if (!(await seams.approvalPending(db, d.id))) throw new Refused(409, 'Nothing to approve', `The deployment of ${d.app_name} is not waiting for approval. Nothing was changed.`);
  } else {
    newRunAt = new Date(d.run_at.getTime() + POSTPONE_SECONDS[claims.action]! * 1000);
  }
  return { claims, actor, deployment: d, newRunAt };
}

function view(kind: 'confirm' | 'done', c: Checked): LinkOutcome {
  return {
    kind, action: c.claims.action, label: ACTION_LABELS[c.claims.action], appName: c.deployment.app_name, runAt: c.deployment.run_at,
    timezone: c.deployment.timezone, newRunAt: c.newRunAt, actor: c.actor.email, dependencyApp: c.deployment.dependency_app_name,
  };
}

function refused(err: unknown): LinkOutcome {
  if (err instanceof Refused) return { kind: 'refused', status: err.status, title: err.title, message: err.message };
  if (err instanceof ShipclockError) return { kind: 'refused', status: err.status, title: 'Not done', message: `${err.message}. Nothing was changed.` };
  throw err;
}

/** GET: what the link would do. Reads only. */
export async function inspectLink(pool: Pool, signer: LinkSigner, token: string): Promise<LinkOutcome> {
  try {
    return view('confirm', await check(pool, signer, token));
  } catch (err) {
    return refused(err);
  }
}

/** POST: does it, once. */
export async function useLink(pool: Pool, signer: LinkSigner, token: string): Promise<LinkOutcome> {
  try {
    return await inTransaction(pool, async (c) => {
      const checked = await check(c, signer, token);
      const { claims, actor, deployment: d } = checked;
      if (!(await spendNonce(c, { nonce: claims.nonce, deploymentId: d.id, action: claims.action }))) {
        throw new Refused(410, 'This link was already used', 'A link of this reminder was used a moment ago. Nothing more was changed.');
      }
      const via = { audit: { via: 'reminder_link', action: claims.action, subscription_id: claims.subscriptionId }, note: `${ACTION_LABELS[claims.action].toLowerCase()} through a reminder link, as ${actor.email}` };
      if (checked.newRunAt) {
        await rescheduleIn(c, actor, d.id, timeInputAt(checked.newRunAt.getTime(), d.timezone), via);
      } else {
        await reminderSeams().approve(c, actor, d.id, 'approved through a reminder link');
      }
      return view('done', checked);
    });
  } catch (err) {
    return refused(err);
  }
}
