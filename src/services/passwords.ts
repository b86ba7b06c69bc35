/**
 * Changing one's own password. The new one must pass the policy (src/services/password-policy.ts);
 * the current one is checked like a sign-in (a wrong one counts as a failed sign-in of that
 * email, so it cannot be guessed faster than a login). The change ends every other session:
 * all login tokens of the user but the one the change was made with, all its API tokens and its
 * calendar feed token.
 */
import { recordAudit } from '../audit/record.ts';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../core/errors.ts';
import { inTransaction, type Pool } from '../db/pool.ts';
import { revokeUserApiTokens } from '../db/sql/api-tokens.ts';
import { revokeCalendarToken } from '../db/sql/calendar.ts';
import { lockUserForPasswordChange, updatePassword } from '../db/sql/users.ts';
import { type AuthService, hashPassword, type TokenInfo, type User, verifyPassword } from './auth.ts';
import { checkNewPassword } from './password-policy.ts';

export async function changePassword(
  pool: Pool,
  auth: AuthService,
  actor: User,
  token: TokenInfo,
  body: { current_password: string; new_password: string },
  address: string,
): Promise<void> {
  if (token.kind === 'api') throw new ForbiddenError('an API token cannot change the password; sign in as yourself');
  checkNewPassword(body.new_password, actor.email);
  if (body.new_password === body.current_password) {
    throw new ValidationError('password_unchanged', 'new_password must differ from the current password', 'new_password');
  }
  const attempt = await auth.limiter.begin(actor.email, address);
  const hash = await hashPassword(body.new_password);
  await inTransaction(pool, async (c) => {
    const row = await lockUserForPasswordChange(c, actor.id);
    if (!row) throw new NotFoundError('user');
    if (row.password_hash === null) {
      throw new ConflictError('password_managed_by_sso', 'this account signs in through single sign-on and has no password here', 'current_password');
    }
    if (!(await verifyPassword(body.current_password, row.password_hash))) {
      throw new ValidationError('wrong_password', 'current_password is not your current password', 'current_password');
    }
    // The login token the change is made with stays valid; a token from before migration 008 has no id and ends too.
    await updatePassword(c, actor.id, hash, token.id ?? null);
    const n = await revokeUserApiTokens(c, actor.id);
    await revokeCalendarToken(c, actor.id);
    await recordAudit(c, { teamId: row.team_id, actorId: actor.id, action: 'user.password_change', targetId: actor.id, details: { revoked: n } });
  });
  await auth.limiter.succeeded(attempt);
  auth.forgetUser(actor.id);
}
