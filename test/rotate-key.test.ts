import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { useTestDatabase } from './helpers/db.ts';
import { SecretBox } from '../src/secrets/box.ts';
import { rotateKeyCommand, rotateSecrets, RotationError } from '../src/secrets/rotate.ts';

const db = useTestDatabase();

async function seed(box: SecretBox) {
  const team = (await db.pool.query(`INSERT INTO teams (name) VALUES ('k') RETURNING id`)).rows[0].id;
  await db.pool.query(`INSERT INTO credentials (team_id, name, provider, secret) VALUES ($1, $2, 'aws', $3)`, [team, `c-${randomBytes(3).toString('hex')}`, box.seal('{"secret_access_key":"S1"}')]);
  await db.pool.query(`INSERT INTO apps (team_id, name, target, target_secret) VALUES ($1, $2, '{}', $3)`, [team, `a-${randomBytes(3).toString('hex')}`, box.seal('whsec')]);
  await db.pool.query(`INSERT INTO notification_subscriptions (team_id, url, events, format, secret) VALUES ($1, 'http://x', '{failed}', 'json', $2)`, [team, box.seal('nsec')]);
}

async function openAll(box: SecretBox): Promise<string[]> {
  const q = async (sql: string) => (await db.pool.query<{ v: Buffer }>(sql)).rows.map((r) => box.open(r.v));
  return [
    ...(await q('SELECT secret AS v FROM credentials')),
    ...(await q('SELECT target_secret AS v FROM apps WHERE target_secret IS NOT NULL')),
    ...(await q('SELECT secret AS v FROM notification_subscriptions WHERE secret IS NOT NULL')),
  ].sort();
}

test('rotate-key re-encrypts every secret with the new key, all or nothing', async () => {
  const oldBox = SecretBox.fromKey(randomBytes(32));
  const newBox = SecretBox.fromKey(randomBytes(32));
  await seed(oldBox);
  const before = await openAll(oldBox);

  // A wrong "old" key changes nothing.
  await assert.rejects(rotateSecrets(db.pool, SecretBox.fromKey(randomBytes(32)), newBox), RotationError);
  assert.deepEqual(await openAll(oldBox), before);

  const counts = await rotateSecrets(db.pool, oldBox, newBox);
  assert.deepEqual(counts, { credentials: 1, apps: 1, notification_subscriptions: 1 });
  assert.deepEqual(await openAll(newBox), before);
  await assert.rejects(openAll(oldBox));
});

test('rotate-key with a key file replaces the file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shipclock-key-'));
  try {
    await db.pool.query('DELETE FROM notification_subscriptions; DELETE FROM apps; DELETE FROM credentials');
    const oldBox = SecretBox.load(undefined, dir); // generates secret.key
    await seed(oldBox);
    const before = await openAll(oldBox);
    const newKey = randomBytes(32).toString('base64');
    const lines: string[] = [];
    await rotateKeyCommand({ pool: db.pool, secretKey: undefined, dataDir: dir, newKeyRaw: newKey, out: (l) => lines.push(l) });
    assert.equal(fs.readFileSync(path.join(dir, 'secret.key'), 'utf8').trim(), newKey);
    assert.equal(fs.statSync(path.join(dir, 'secret.key')).mode & 0o777, 0o600);
    assert.deepEqual(await openAll(SecretBox.load(undefined, dir)), before);
    await assert.rejects(
      rotateKeyCommand({ pool: db.pool, secretKey: undefined, dataDir: dir, newKeyRaw: newKey, out: () => {} }),
      /the new key is the current key/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
