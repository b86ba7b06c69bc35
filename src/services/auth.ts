/**
 * Users, passwords and tokens. Passwords are hashed with scrypt (N=16384, r=8, p=1, 16-byte salt);
 * login tokens are HS256 JWTs signed with a key generated once per database (table `settings`),
 * so every process on that database accepts every other's tokens. A login token carries its
 * user's `token_version`: bumping it (password change, removal) revokes every such token but the
 * one kept (`kept_token_id`, the token the password was changed with). API tokens ("shc_…") are
 * random secrets looked up by their SHA-256 (src/services/api-tokens.ts).
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { jwtVerify, SignJWT } from 'jose';
import { recordAudit } from '../audit/record.ts';
import type { LoginLimits } from '../config.ts';
import { ShipclockError, UnauthorizedError } from '../core/errors.ts';
import type { Pool, Queryable } from '../db/pool.ts';
import { inTransaction } from '../db/pool.ts';
import { selectApiTokenForAuth, touchApiToken } from '../db/sql/api-tokens.ts';
import { type AuthUserRow, selectAuthUser, selectLoginByEmail, selectTokenVersion } from '../db/sql/users.ts';
import { LoginLimiter } from './login-limiter.ts';

const scrypt = promisify(scryptCb) as (pw: string, salt: Buffer, len: number) => Promise<Buffer>;

export type Role = 'owner' | 'deployer' | 'viewer';

export interface User {
  id: string;
  email: string;
  team_id: string;
  team_name: string;
  role: Role;
  admin: boolean;
  /** Signed in with the printed one-time password: only GET /v1/me and POST /v1/me/password answer until it is changed. */
  password_change_required?: boolean;
  /** Signs in through single sign-on (has no password here unless it had one before). */
  sso?: boolean;
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(password, salt, 32);
  return `scrypt$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = await scrypt(password, Buffer.from(salt, 'base64'), expected.length);
  return timingSafeEqual(actual, expected);
}

/**
 * How long a user looked up for a request (existence, team, role, admin flag, token version) is
 * reused for the next requests of that user in this process: a removed user, a changed role or
 * team, and a password change (which revokes the other login tokens) take effect within this
 * long in every process. API tokens are looked up with the same bound, so a revoked one is
 * refused within it too. Kept short on purpose; it saves a query per request under load.
 */
export const USER_CACHE_MS = 1000;
/** Bounds the caches below (cleared when full: a cache miss is only a query or an HMAC more). */
const CACHE_MAX_ENTRIES = 10_000;
/** API tokens start with this, so that secret scanners can recognise them. */
export const API_TOKEN_PREFIX = 'shc_';
/** An API token's last_used_at is written at most this often (by any process). */
export const LAST_USED_RESOLUTION_SECONDS = 60;

const RANK: Record<Role, number> = { viewer: 0, deployer: 1, owner: 2 };

/** The lower of two roles. */
export function lowerRole(a: Role, b: Role): Role {
  return RANK[a] <= RANK[b] ? a : b;
}

/** Whether `a` is at least `b` (owner ⊇ deployer ⊇ viewer). */
export function roleAtLeast(a: Role, b: Role): boolean {
  return RANK[a] >= RANK[b];
}

/** The SHA-256 under which an API token is stored and looked up. */
export function hashApiToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** How a request authenticated: a login token (JWT, `id` its jti) or an API token (`id` its row). */
export type TokenInfo = { kind: 'login'; id: string | undefined } | { kind: 'api'; id: string };

export interface Authenticated {
  user: User;
  token: TokenInfo;
}

export interface LoginResult {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
}

interface Claims {
  sub: string;
  expMs: number;
  /** The user's token_version when the token was issued (tokens from before migration 008: 0). */
  ver: number;
  jti: string | undefined;
}

interface ApiTokenEntry {
  user: User;
  tokenId: string;
  expMs: number;
  lastUsedMs: number;
}

const DEFAULT_LIMITS: LoginLimits = { perEmail: 10, perAddress: 100, windowSeconds: 900 };

export class AuthService {
  private key: Uint8Array | null = null;
  /** Compared against when the email is unknown (or has no password), so that it takes as long. */
  private readonly dummyHash: Promise<string>;
  readonly limiter: LoginLimiter;
  /**
   * Tokens whose signature and claims were verified. A token's signature depends only on itself
   * and the signing key (fixed for the life of the process), so re-checking its expiry is all the
   * verification a token seen before needs; whether it was revoked is its user's business.
   */
  private readonly verified = new Map<string, Claims>();
  /** Users by id, looked up at most USER_CACHE_MS ago (concurrent requests share one lookup). */
  private readonly users = new Map<string, { at: number; user: Promise<{ row: AuthUserRow; user: User } | null> }>();
  /** API tokens by hash (hex), looked up at most USER_CACHE_MS ago. */
  private readonly apiTokens = new Map<string, { at: number; entry: Promise<ApiTokenEntry | null> }>();

  constructor(private readonly pool: Pool, private readonly ttlSeconds: number, opts: { limits?: LoginLimits } = {}) {
    this.limiter = new LoginLimiter(pool, opts.limits ?? DEFAULT_LIMITS);
    this.dummyHash = hashPassword(randomBytes(16).toString('hex'));
  }

  private async signingKey(): Promise<Uint8Array> {
    if (this.key) return this.key;
    await this.pool.query(
      `INSERT INTO settings (key, value) VALUES ('jwt_key', $1) ON CONFLICT (key) DO NOTHING`,
      [randomBytes(32).toString('base64')],
    );
    const r = await this.pool.query<{ value: string }>(`SELECT value FROM settings WHERE key = 'jwt_key'`);
    this.key = new Uint8Array(Buffer.from(r.rows[0].value, 'base64'));
    return this.key;
  }

  /**
   * Email and password for a login token. A wrong password, an unknown email and an account
   * without a password (single sign-on) take the same work (one scrypt) and get the same answer;
   * failures are limited per email and per `address` (429 past the limit).
   */
  async login(email: string, password: string, address = 'unknown'): Promise<LoginResult> {
    const attempt = await this.limiter.begin(email, address);
    const row = await selectLoginByEmail(this.pool, email);
    const ok = await verifyPassword(password, row?.password_hash ?? (await this.dummyHash));
    if (!row || !row.password_hash || !ok) throw new ShipclockError(401, 'invalid_credentials', 'email or password is wrong');
    await this.limiter.succeeded(attempt);
    return this.issue(row.id, row.token_version);
  }

  /** A login token for a user who proved who they are another way (single sign-on). */
  async issueFor(userId: string): Promise<LoginResult> {
    const version = await selectTokenVersion(this.pool, userId);
    if (version === null) throw new UnauthorizedError('the account is gone');
    return this.issue(userId, version);
  }

  private async issue(userId: string, version: number): Promise<LoginResult> {
    const token = await new SignJWT({ ver: version }).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setIssuedAt()
      .setJti(randomBytes(12).toString('base64url'))
      .setExpirationTime(`${this.ttlSeconds}s`).setIssuer('shipclock').sign(await this.signingKey());
    return { access_token: token, token_type: 'Bearer', expires_in: this.ttlSeconds };
  }

  /** The user a bearer token belongs to; 401 when the token is missing, bad, expired, revoked or its user is gone. */
  async authenticate(token: string | undefined): Promise<User> {
    return (await this.authenticateToken(token)).user;
  }

  /** The user and which token it came with (a login token or an API token). */
  async authenticateToken(token: string | undefined): Promise<Authenticated> {
    if (!token) throw new UnauthorizedError();
    if (token.startsWith(API_TOKEN_PREFIX)) return this.apiToken(token);
    const claims = await this.claims(token);
    const found = await this.user(claims.sub);
    if (!found) throw new UnauthorizedError('invalid or expired token');
    const { row, user } = found;
    if (claims.ver !== row.token_version && !(claims.jti !== undefined && claims.jti === row.kept_token_id)) {
      throw new UnauthorizedError('this token was revoked (the password was changed); sign in again');
    }
    return { user, token: { kind: 'login', id: claims.jti } };
  }

  /** Forgets what this process knows of a user, so that a change made here applies at once here. */
  forgetUser(id: string): void {
    this.users.delete(id);
    this.apiTokens.clear();
  }

  /** Forgets every API token looked up (one was revoked here). */
  forgetApiTokens(): void {
    this.apiTokens.clear();
  }

  /** The claims of a valid login token; 401 when it is bad or expired. */
  private async claims(token: string): Promise<Claims> {
    const now = Date.now();
    const known = this.verified.get(token);
    // jose rejects a token once its `exp` second has begun; so does this.
    if (known && Math.floor(now / 1000) * 1000 < known.expMs) return known;
    try {
      const { payload } = await jwtVerify(token, await this.signingKey(), { issuer: 'shipclock', algorithms: ['HS256'] });
      if (!payload.sub || payload.exp === undefined) throw new Error('no subject or expiry');
      const claims: Claims = {
        sub: payload.sub,
        expMs: payload.exp * 1000,
        ver: typeof payload.ver === 'number' ? payload.ver : 0,
        jti: typeof payload.jti === 'string' ? payload.jti : undefined,
      };
      if (this.verified.size >= CACHE_MAX_ENTRIES) this.verified.clear();
      this.verified.set(token, claims);
      return claims;
    } catch {
      if (known) this.verified.delete(token);
      throw new UnauthorizedError('invalid or expired token');
    }
  }

  private user(id: string): Promise<{ row: AuthUserRow; user: User } | null> {
    const now = Date.now();
    const hit = this.users.get(id);
    if (hit && now - hit.at < USER_CACHE_MS) return hit.user;
    if (this.users.size >= CACHE_MAX_ENTRIES) this.users.clear();
    const user = selectAuthUser(this.pool, id).then((row) => (row ? { row, user: toUser(row) } : null));
    const entry = { at: now, user };
    this.users.set(id, entry);
    // A failed lookup (the database is away) is not remembered.
    user.catch(() => { if (this.users.get(id) === entry) this.users.delete(id); });
    return user;
  }

  private async apiToken(token: string): Promise<Authenticated> {
    const hash = hashApiToken(token);
    const key = hash.toString('hex');
    const now = Date.now();
    let hit = this.apiTokens.get(key);
    if (!hit || now - hit.at >= USER_CACHE_MS) {
      if (this.apiTokens.size >= CACHE_MAX_ENTRIES) this.apiTokens.clear();
      const entry = selectApiTokenForAuth(this.pool, hash).then((row): ApiTokenEntry | null => row && {
        // A token acts as its user with at most its own role, and never as an instance admin.
        user: { ...toUser(row), role: lowerRole(row.role, row.token_role), admin: false },
        tokenId: row.token_id,
        expMs: row.expires_at.getTime(),
        lastUsedMs: row.last_used_at?.getTime() ?? 0,
      });
      hit = { at: now, entry };
      this.apiTokens.set(key, hit);
      const mine = hit;
      entry.catch(() => { if (this.apiTokens.get(key) === mine) this.apiTokens.delete(key); });
    }
    const found = await hit.entry;
    if (!found || now >= found.expMs) throw new UnauthorizedError('invalid, expired or revoked API token');
    if (now - found.lastUsedMs >= LAST_USED_RESOLUTION_SECONDS * 1000) {
      found.lastUsedMs = now;
      // Not awaited: recording the use must not slow the request; a lost write only makes last_used_at older.
      touchApiToken(this.pool, found.tokenId, LAST_USED_RESOLUTION_SECONDS).catch(() => {});
    }
    return { user: found.user, token: { kind: 'api', id: found.tokenId } };
  }
}

function toUser(row: AuthUserRow): User {
  return {
    id: row.id, email: row.email, team_id: row.team_id, team_name: row.team_name, role: row.role, admin: row.admin,
    password_change_required: row.password_change_required, sso: row.sso,
  };
}

export async function getUser(db: Queryable, id: string): Promise<User | null> {
  const row = await selectAuthUser(db, id);
  return row ? toUser(row) : null;
}

/**
 * On an empty database, creates the first team and its admin (owner): from SHIPCLOCK_ADMIN_EMAIL
 * and SHIPCLOCK_ADMIN_PASSWORD, or admin@localhost with a printed one-time password. Safe when
 * several processes start at once (an advisory transaction lock).
 */
export async function bootstrapAdmin(pool: Pool, email: string | undefined, password: string | undefined): Promise<{ email: string; generatedPassword?: string } | null> {
  return inTransaction(pool, async (c) => {
    await c.query('SELECT pg_advisory_xact_lock(5910)');
    const any = await c.query('SELECT 1 FROM users LIMIT 1'); // removed members count: the database is not empty
    if (any.rowCount) return null;
    const finalEmail = email ?? 'admin@localhost';
    const generated = password ? undefined : randomBytes(12).toString('base64url');
    const team = await c.query<{ id: string }>(`INSERT INTO teams (name) VALUES ('default') RETURNING id`);
    const user = await c.query<{ id: string }>(
      // A printed password is one-time: it must be changed before anything else is allowed.
      `INSERT INTO users (email, password_hash, team_id, role, admin, password_change_required) VALUES ($1, $2, $3, 'owner', true, $4) RETURNING id`,
      [finalEmail, await hashPassword(password ?? generated!), team.rows[0].id, generated !== undefined],
    );
    await recordAudit(c, { teamId: team.rows[0].id, actorId: null, action: 'member.create', targetId: user.rows[0].id, details: { email: finalEmail, role: 'owner', admin: true, bootstrap: true } });
    return { email: finalEmail, generatedPassword: generated };
  });
}
