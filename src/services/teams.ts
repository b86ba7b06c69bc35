import { recordAudit } from '../audit/record.ts';
import { ConflictError, ForbiddenError, NotFoundError } from '../core/errors.ts';
import { inTransaction, type Pool } from '../db/pool.ts';
import { hashPassword, type Role, type User } from './auth.ts';

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
    const exists = await c.query('SELECT 1 FROM users WHERE lower(email) = lower($1)', [m.email]);
    if (exists.rowCount) throw new ConflictError('email_taken', `a user with email ${m.email} already exists`, 'email');
    const r = await c.query<{ id: string; email: string; role: Role }>(
      'INSERT INTO users (email, password_hash, team_id, role) VALUES ($1, $2, $3, $4) RETURNING id, email, role',
      [m.email, await hashPassword(m.password), teamId, m.role],
    );
    await recordAudit(c, { teamId, actorId: actor.id, action: 'member.create', targetId: r.rows[0].id, details: { email: m.email, role: m.role } });
    return r.rows[0];
  });
}

export async function listMembers(pool: Pool, actor: User, teamId: string): Promise<Array<{ id: string; email: string; role: Role }>> {
  if (!actor.admin && actor.team_id !== teamId) throw new NotFoundError('team');
  const r = await pool.query<{ id: string; email: string; role: Role }>('SELECT id, email, role FROM users WHERE team_id = $1 ORDER BY email', [teamId]);
  return r.rows;
}
