import type { FastifyRequest } from 'fastify';
import { ForbiddenError } from '../core/errors.ts';
import type { AuthService, Role, TokenInfo, User } from '../services/auth.ts';

declare module 'fastify' {
  interface FastifyRequest {
    user: User;
    /** The token the request came with: a login token or an API token. */
    authToken: TokenInfo;
  }
}

const RANK: Record<Role, number> = { viewer: 0, deployer: 1, owner: 2 };

/** Throws 403 unless the caller's role is at least `role` (owner ⊇ deployer ⊇ viewer). */
export function requireRole(request: FastifyRequest, role: Role): User {
  const user = request.user;
  if (RANK[user.role] < RANK[role]) throw new ForbiddenError(`this needs the ${role} role; you are ${user.role}`);
  return user;
}

export function bearerToken(request: FastifyRequest, allowQuery = false): string | undefined {
  const h = request.headers.authorization;
  if (h?.startsWith('Bearer ')) return h.slice(7).trim();
  // EventSource cannot set headers: the event stream also takes ?access_token=.
  if (allowQuery) return (request.query as { access_token?: string } | undefined)?.access_token;
  return undefined;
}

export async function authenticate(auth: AuthService, request: FastifyRequest, allowQuery = false): Promise<void> {
  const a = await auth.authenticateToken(bearerToken(request, allowQuery));
  request.user = a.user;
  request.authToken = a.token;
}
