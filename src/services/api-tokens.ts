/**
 * API tokens for CI: `shc_` + 40 random base62 characters (~238 bits), shown once at creation.
 * Only the token's SHA-256 is stored. A fast hash is enough because the secret is random and
 * long: nobody can enumerate 2^238 candidates against a leaked hash, whatever the hash costs. A
 * slow salted hash (scrypt, as for passwords) would only protect low-entropy secrets, would cost
 * ~50 ms of CPU on every API call, and could not be looked up by value (a salt per row).
 *
 * A token acts as its creator with at most its own role (the lower of the two at each request,
 * so demoting the creator demotes the token), never as an instance admin. It cannot create
 * tokens nor change the password (those need a person signed in).
 */
import { randomInt } from 'node:crypto';
import { recordAudit } from '../audit/record.ts';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../core/errors.ts';
import { inTransaction, type Pool } from '../db/pool.ts';
import { type ApiTokenRow, countActiveApiTokens, insertApiToken, listApiTokens, revokeApiToken } from '../db/sql/api-tokens.ts';
import { API_TOKEN_PREFIX, type AuthService, hashApiToken, type Role, roleAtLeast, type TokenInfo, type User } from './auth.ts';
import { decodeCursor, page } from './cursor.ts';

export const API_TOKEN_DEFAULT_DAYS = 90;
export const API_TOKEN_MAX_DAYS = 365;
/** Live (neither revoked nor expired) tokens one user may hold. */
export const API_TOKENS_PER_USER = 50;
const SECRET_LENGTH = 40;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** A new token: the prefix and SECRET_LENGTH characters drawn uniformly from [0-9A-Za-z]. */
export function generateApiToken(): string {
  let s = API_TOKEN_PREFIX;
  for (let i = 0; i < SECRET_LENGTH; i++) s += BASE62[randomInt(62)];
  return s;
}

function toApi(r: ApiTokenRow) {
  return {
    id: r.id, name: r.name, role: r.role,
    created_at: r.created_at.toISOString(), expires_at: r.expires_at.toISOString(),
    last_used_at: r.last_used_at ? r.last_used_at.toISOString() : null,
  };
}

export async function createApiToken(
  pool: Pool,
  actor: User,
  via: TokenInfo,
  body: { name: string; role?: Role; expires_in_days?: number },
) {
  if (via.kind === 'api') throw new ForbiddenError('an API token cannot create API tokens; sign in as yourself');
  const role = body.role ?? actor.role;
  if (!roleAtLeast(actor.role, role)) {
    throw new ValidationError('role_too_high', `role ${role} is more than yours (${actor.role}); a token can have at most your role`, 'role');
  }
  const token = generateApiToken();
  const row = await inTransaction(pool, async (c) => {
    // Serializes this user's concurrent creations, so that the limit holds.
    await c.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [actor.id]);
    if ((await countActiveApiTokens(c, actor.id)) >= API_TOKENS_PER_USER) {
      throw new ConflictError('too_many_tokens', `you have ${API_TOKENS_PER_USER} live API tokens, the most allowed; revoke one first`);
    }
    const r = await insertApiToken(c, { userId: actor.id, name: body.name, role, hash: hashApiToken(token), expiresInDays: body.expires_in_days ?? API_TOKEN_DEFAULT_DAYS });
    await recordAudit(c, { teamId: actor.team_id, actorId: actor.id, action: 'token.create', targetId: r.id, details: { name: r.name, role: r.role, expires_at: r.expires_at.toISOString() } });
    return r;
  });
  return { ...toApi(row), token };
}

export async function listMyApiTokens(pool: Pool, actor: User, limit: number, cursor?: string) {
  const after = decodeCursor<[string, string]>(cursor, (v) => Array.isArray(v) && v.length === 2
    && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/.test(v[0]) && /^[0-9a-f-]{36}$/i.test(v[1]));
  const rows = await listApiTokens(pool, actor.id, after, limit + 1);
  const p = page(rows, limit, (r) => [r.cursor_at, r.id]);
  return { result: p.result.map(toApi), next_cursor: p.next_cursor };
}

/** Revokes one of the caller's tokens; refused in this process at once, in every other within USER_CACHE_MS. */
export async function revokeMyApiToken(pool: Pool, auth: AuthService, actor: User, id: string): Promise<void> {
  await inTransaction(pool, async (c) => {
    const name = await revokeApiToken(c, actor.id, id);
    if (name === null) throw new NotFoundError('API token');
    await recordAudit(c, { teamId: actor.team_id, actorId: actor.id, action: 'token.delete', targetId: id, details: { name } });
  });
  auth.forgetApiTokens();
}
