/**
 * Teams and their members. Membership changes (role, removal) take the team's row lock first, so
 * that concurrent changes are serialized and a team never loses its last owner. A removed member
 * is soft-deleted (src/db/sql/users.ts softDeleteUser): its row stays, so the deployments it
 * scheduled stay scheduled and still run, and `created_by` and the audit log keep pointing at it.
 */
import { recordAudit } from '../audit/record.ts';
import { ConflictError, ForbiddenError, NotFoundError } from '../core/errors.ts';
import { inTransaction, type Pool, type Queryable } from '../db/pool.ts';
import { revokeUserApiTokens } from '../db/sql/api-tokens.ts';
import { deleteUserSsoHandoffs } from '../db/sql/sso.ts';
import {
  countAdmins, countOwners, emailTaken, listTeamMembers, lockTeam, type MemberRow, selectMember, selectRoleInTeam, softDeleteUser, updateRole,
} from '../db/sql/users.ts';
import { type AuthService, hashPassword, type Role, type User } from './auth.ts';
import { decodeCursor, page } from './cursor.ts';

export async function createTeam(pool: Pool, actor: User, name: string): Promise<{ id: string; name: string }> {
  if (!actor.admin) throw new ForbiddenError('only an instance admin can create teams');
  return inTransaction(pool, async (c) => {
    const r = await c.query<{ id: string; name: string }>('INSERT INTO teams (name) VALUES ($1) RETURNING id, name', [name]);
    await recordAudit(c, { teamId: r.rows[0].id, actorId: actor.id, action: 'team.create', targetId: r.rows[0].id, details: { name } });
    return r.rows[0];
  });
}

export async function addMember(pool: Pool, actor: User, teamId: string, m: { email: string; password: string; role: Role }): Promise<{ id: string; email: string; role: Role }> {
  const sameTeam = actor.team_id === teamId;
  // Another team's id answers 404, like every other object of another team.
  if (!actor.admin && !sameTeam) throw new NotFoundError('team');
  if (!actor.admin && actor.role !== 'owner') throw new ForbiddenError('only the team\'s owner can add members');
  return inTransaction(pool, async (c) => {
    const team = await c.query('SELECT 1 FROM teams WHERE id = $1', [teamId]);
    if (!team.rowCount) throw new NotFoundError('team');
    if (await emailTaken(c, m.email)) throw new ConflictError('email_taken', `a user with email ${m.email} already exists`, 'email');
    const r = await c.query<{ id: string; email: string; role: Role }>(
      'INSERT INTO users (email, password_hash, team_id, role) VALUES ($1, $2, $3, $4) RETURNING id, email, role',
      [m.email, await hashPassword(m.password), teamId, m.role],
    );
    await recordAudit(c, { teamId, actorId: actor.id, action: 'member.create', targetId: r.rows[0].id, details: { email: m.email, role: m.role } });
    return r.rows[0];
  });
}

function memberToApi(m: MemberRow) {
  return { id: m.id, email: m.email, role: m.role, admin: m.admin, sso: m.sso, created_at: m.created_at.toISOString() };
}

/** Who may manage a team's members: an instance admin, or an owner of that team (others: 404 / 403). */
function assertCanManage(actor: User, teamId: string, what: string): void {
  // Another team's id answers 404, like every other object of another team.
  if (!actor.admin && actor.team_id !== teamId) throw new NotFoundError('team');
  if (!actor.admin && actor.role !== 'owner') throw new ForbiddenError(`only the team's owners can ${what}`);
}

export async function listMembers(pool: Pool, actor: User, teamId: string, limit = 50, cursor?: string) {
  assertCanManage(actor, teamId, 'list its members');
  const after = decodeCursor<[string, string]>(cursor, (v) => Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'string'));
  if (actor.admin) {
    const team = await pool.query('SELECT 1 FROM teams WHERE id = $1', [teamId]);
    if (!team.rowCount) throw new NotFoundError('team');
  }
  const rows = await listTeamMembers(pool, teamId, after, limit + 1);
  const p = page(rows, limit, (m) => [m.email, m.id]);
  return { result: p.result.map(memberToApi), next_cursor: p.next_cursor };
}

/**
 * Locks the team, re-reads the caller's own role (it may have changed within the user cache's
 * second) and the member. Everything after runs with the team's membership frozen.
 */
async function lockForChange(c: Queryable, actor: User, teamId: string, userId: string, what: string): Promise<MemberRow> {
  if (!(await lockTeam(c, teamId))) throw new NotFoundError('team');
  if (!actor.admin && (await selectRoleInTeam(c, teamId, actor.id)) !== 'owner') throw new ForbiddenError(`only the team's owners can ${what}`);
  const member = await selectMember(c, teamId, userId);
  if (!member) throw new NotFoundError('member');
  return member;
}

/** Changes a member's role; 409 last_owner when it would leave the team without an owner. */
export async function updateMember(pool: Pool, auth: AuthService, actor: User, teamId: string, userId: string, role: Role) {
  assertCanManage(actor, teamId, 'change roles');
  const out = await inTransaction(pool, async (c) => {
    const member = await lockForChange(c, actor, teamId, userId, 'change roles');
    if (member.role === role) return memberToApi(member);
    if (member.role === 'owner' && (await countOwners(c, teamId)) <= 1) {
      throw new ConflictError('last_owner', `${member.email} is the team's last owner; make someone else an owner first`, 'role');
    }
    await updateRole(c, userId, role);
    await recordAudit(c, { teamId, actorId: actor.id, action: 'member.update', targetId: userId, details: { email: member.email, role, previous_role: member.role } });
    return memberToApi({ ...member, role });
  });
  auth.forgetUser(userId);
  return out;
}

/**
 * Removes a member from the team (and so from shipclock): its login and API tokens stop working
 * (here at once, in other processes within USER_CACHE_MS). 409 last_owner for the team's last
 * owner; an instance admin can be removed only by an instance admin, and never the last one.
 */
export async function removeMember(pool: Pool, auth: AuthService, actor: User, teamId: string, userId: string): Promise<void> {
  assertCanManage(actor, teamId, 'remove members');
  await inTransaction(pool, async (c) => {
    const member = await lockForChange(c, actor, teamId, userId, 'remove members');
    if (member.role === 'owner' && (await countOwners(c, teamId)) <= 1) {
      throw new ConflictError('last_owner', `${member.email} is the team's last owner; make someone else an owner first`);
    }
    if (member.admin) {
      if (!actor.admin) throw new ForbiddenError('only an instance admin can remove an instance admin');
      // Admin rows are few; counting them under the team lock is enough against two admins removing each other.
      await c.query('SELECT 1 FROM users WHERE admin AND deleted_at IS NULL FOR UPDATE');
      if ((await countAdmins(c)) <= 1) throw new ConflictError('last_admin', `${member.email} is the last instance admin`);
    }
    await softDeleteUser(c, userId);
    const tokens = await revokeUserApiTokens(c, userId);
    await deleteUserSsoHandoffs(c, userId);
    await recordAudit(c, { teamId, actorId: actor.id, action: 'member.delete', targetId: userId, details: { email: member.email, role: member.role, revoked: tokens } });
  });
  auth.forgetUser(userId);
}
