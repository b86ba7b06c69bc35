/**
 * AuthService reuses a verified token and a looked-up user for a short while; what must still
 * hold: an expired token is refused even when seen before, and a deleted user or a changed role
 * takes effect within USER_CACHE_MS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useTestDatabase } from './helpers/db.ts';
import { AuthService, hashPassword, USER_CACHE_MS } from '../src/services/auth.ts';
import { UnauthorizedError } from '../src/core/errors.ts';

const db = useTestDatabase();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function member(email: string): Promise<string> {
  const team = (await db.pool.query(`INSERT INTO teams (name) VALUES ($1) RETURNING id`, [email])).rows[0].id as string;
  return (await db.pool.query(
    `INSERT INTO users (email, password_hash, team_id, role) VALUES ($1, $2, $3, 'deployer') RETURNING id`,
    [email, await hashPassword('pw-123456'), team],
  )).rows[0].id as string;
}

test('a deleted user and a changed role take effect within USER_CACHE_MS', async () => {
  const auth = new AuthService(db.pool, 3600);
  const id = await member('cache-a@example.com');
  const { access_token: token } = await auth.login('cache-a@example.com', 'pw-123456');
  assert.equal((await auth.authenticate(token)).role, 'deployer');
  await db.pool.query(`UPDATE users SET role = 'viewer' WHERE id = $1`, [id]);
  await sleep(USER_CACHE_MS + 50);
  assert.equal((await auth.authenticate(token)).role, 'viewer');
  await db.pool.query('DELETE FROM users WHERE id = $1', [id]);
  await sleep(USER_CACHE_MS + 50);
  await assert.rejects(auth.authenticate(token), UnauthorizedError);
});

test('an expired token is refused even when it was verified before', async () => {
  // A 2 s lifetime: a token's times are whole seconds, so a 1 s token issued at x.9 s has
  // already expired at (x+1).0 s, before the first check on a slow machine.
  const auth = new AuthService(db.pool, 2);
  await member('cache-b@example.com');
  const { access_token: token } = await auth.login('cache-b@example.com', 'pw-123456');
  assert.equal((await auth.authenticate(token)).email, 'cache-b@example.com');
  await sleep(3100);
  await assert.rejects(auth.authenticate(token), UnauthorizedError);
});

test('a bad token is refused; concurrent requests share one lookup', async () => {
  const auth = new AuthService(db.pool, 3600);
  await member('cache-c@example.com');
  const { access_token: token } = await auth.login('cache-c@example.com', 'pw-123456');
  await assert.rejects(auth.authenticate(`${token.slice(0, -2)}xx`), UnauthorizedError);
  await assert.rejects(auth.authenticate(undefined), UnauthorizedError);
  const users = await Promise.all(Array.from({ length: 20 }, () => auth.authenticate(token)));
  assert.ok(users.every((u) => u === users[0]));
});
