/**
 * Users, passwords and tokens. Passwords are hashed with scrypt (N=16384, r=8, p=1, 16-byte salt);
 * tokens are HS256 JWTs signed with a key generated once per database (table `settings`), so
 * every process on that database accepts every other's tokens.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { jwtVerify, SignJWT } from 'jose';
import { recordAudit } from '../audit/record.ts';
import { ShipclockError, UnauthorizedError } from '../core/errors.ts';
import type { Pool, Queryable } from '../db/pool.ts';
import { inTransaction } from '../db/pool.ts';

const scrypt = promisify(scryptCb) as (pw: string, salt: Buffer, len: number) => Promise<Buffer>;

export type Role = 'owner' | 'deployer' | 'viewer';

export interface User {
  id: string;
  email: string;
  team_id: string;
  team_name: string;
  role: Role;
  admin: boolean;
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

/** A hash to compare against when the email is unknown, so timing does not reveal which emails exist. */
let dummyHash: Promise<string> | null = null;

/**
 * How long a user looked up for a request (existence, team, role, admin flag) is reused for the
 * next requests of that user in this process: a deleted user, or a changed role or team, takes
 * effect within this long. Kept short on purpose; it saves a query per request under load.
 */
export const USER_CACHE_MS = 1000;
/** Bounds the two caches below (cleared when full: a cache miss is only a query or an HMAC more). */
const CACHE_MAX_ENTRIES = 10_000;

export class AuthService {
  private key: Uint8Array | null = null;
  /**
   * Tokens whose signature and claims were verified, with their subject and expiry. A token's
   * validity depends only on itself and the signing key (fixed for the life of the process), so
   * re-checking its expiry is the whole verification of a token seen before.
   */
  private readonly verified = new Map<string, { sub: string; expMs: number }>();
  /** Users by id, looked up at most USER_CACHE_MS ago (concurrent requests share one lookup). */
  private readonly users = new Map<string, { at: number; user: Promise<User | null> }>();

  constructor(private readonly pool: Pool, private readonly ttlSeconds: number) {}

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

  async login(email: string, password: string): Promise<{ access_token: string; token_type: 'Bearer'; expires_in: number }> {
    const r = await this.pool.query<{ id: string; password_hash: string }>('SELECT id, password_hash FROM users WHERE lower(email) = lower($1)', [email]);
    const row = r.rows[0];
    dummyHash ??= hashPassword(randomBytes(8).toString('hex'));
    const ok = await verifyPassword(password, row?.password_hash ?? (await dummyHash));
    if (!row || !ok) throw new ShipclockError(401, 'invalid_credentials', 'email or password is wrong');
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(row.id).setIssuedAt()
      .setExpirationTime(`${this.ttlSeconds}s`).setIssuer('shipclock').sign(await this.signingKey());
    return { access_token: token, token_type: 'Bearer', expires_in: this.ttlSeconds };
  }

  /** The user a bearer token belongs to; 401 when the token is missing, bad, expired or its user is gone. */
  async authenticate(token: string | undefined): Promise<User> {
    if (!token) throw new UnauthorizedError();
    const sub = await this.subject(token);
    const user = sub ? await this.user(sub) : null;
    if (!user) throw new UnauthorizedError('invalid or expired token');
    return user;
  }

  /** The subject of a valid token; 401 when it is bad or expired. */
  private async subject(token: string): Promise<string | undefined> {
    const now = Date.now();
    const known = this.verified.get(token);
    // jose rejects a token once its `exp` second has begun; so does this.
    if (known && Math.floor(now / 1000) * 1000 < known.expMs) return known.sub;
    try {
      const { payload } = await jwtVerify(token, await this.signingKey(), { issuer: 'shipclock', algorithms: ['HS256'] });
      if (payload.sub && payload.exp !== undefined) {
        if (this.verified.size >= CACHE_MAX_ENTRIES) this.verified.clear();
        this.verified.set(token, { sub: payload.sub, expMs: payload.exp * 1000 });
      }
      return payload.sub;
    } catch {
      if (known) this.verified.delete(token);
      throw new UnauthorizedError('invalid or expired token');
    }
  }

  private user(id: string): Promise<User | null> {
    const now = Date.now();
    const hit = this.users.get(id);
    if (hit && now - hit.at < USER_CACHE_MS) return hit.user;
    if (this.users.size >= CACHE_MAX_ENTRIES) this.users.clear();
    const user = getUser(this.pool, id);
    const entry = { at: now, user };
    this.users.set(id, entry);
    // A failed lookup (the database is away) is not remembered.
    user.catch(() => { if (this.users.get(id) === entry) this.users.delete(id); });
    return user;
  }
}

export async function getUser(db: Queryable, id: string): Promise<User | null> {
  const r = await db.query<User>(
    `SELECT u.id, u.email, u.team_id, t.name AS team_name, u.role, u.admin
       FROM users u JOIN teams t ON t.id = u.team_id WHERE u.id = $1`,
    [id],
  );
  return r.rows[0] ?? null;
}

/**
 * On an empty database, creates the first team and its admin (owner): from SHIPCLOCK_ADMIN_EMAIL
 * and SHIPCLOCK_ADMIN_PASSWORD, or admin@localhost with a printed one-time password. Safe when
 * several processes start at once (an advisory transaction lock).
 */
export async function bootstrapAdmin(pool: Pool, email: string | undefined, password: string | undefined): Promise<{ email: string; generatedPassword?: string } | null> {
  return inTransaction(pool, async (c) => {
    await c.query('SELECT pg_advisory_xact_lock(5910)');
    const any = await c.query('SELECT 1 FROM users LIMIT 1');
    if (any.rowCount) return null;
    const finalEmail = email ?? 'admin@localhost';
    const generated = password ? undefined : randomBytes(12).toString('base64url');
    const team = await c.query<{ id: string }>(`INSERT INTO teams (name) VALUES ('default') RETURNING id`);
    const user = await c.query<{ id: string }>(
      `INSERT INTO users (email, password_hash, team_id, role, admin) VALUES ($1, $2, $3, 'owner', true) RETURNING id`,
      [finalEmail, await hashPassword(password ?? generated!), team.rows[0].id],
    );
    await recordAudit(c, { teamId: team.rows[0].id, actorId: null, action: 'member.create', targetId: user.rows[0].id, details: { email: finalEmail, role: 'owner', admin: true, bootstrap: true } });
    return { email: finalEmail, generatedPassword: generated };
  });
}
