/**
 * Re-encrypts every stored secret with a new key, in one transaction: all values move to the
 * new key or none does. Run with every shipclock process stopped (see docs/operations.md).
 */
import fs from 'node:fs';
import path from 'node:path';
import { inTransaction, type Pool } from '../db/pool.ts';
import { parseKey, SecretBox } from './box.ts';

/** Every column that holds SecretBox ciphertext. A new one must be added here. */
export const SEALED_COLUMNS: ReadonlyArray<{ table: string; column: string }> = [
  { table: 'credentials', column: 'secret' },
  { table: 'apps', column: 'target_secret' },
  { table: 'notification_subscriptions', column: 'secret' },
];

export class RotationError extends Error {}

/** Returns how many values were re-encrypted per table. Throws RotationError (nothing changed) when a value does not open with `oldBox`. */
export async function rotateSecrets(pool: Pool, oldBox: SecretBox, newBox: SecretBox): Promise<Record<string, number>> {
  return inTransaction(pool, async (c) => {
    const counts: Record<string, number> = {};
    for (const { table, column } of SEALED_COLUMNS) {
      // Identifiers come from the constant list above, never from input.
      const { rows } = await c.query<{ id: string; v: Buffer }>(`SELECT id, ${column} AS v FROM ${table} WHERE ${column} IS NOT NULL FOR UPDATE`);
      for (const row of rows) {
        let plain: string;
        try {
          plain = oldBox.open(row.v);
        } catch (err) {
          throw new RotationError(`${table} ${row.id} does not decrypt with the current key (SHIPCLOCK_SECRET_KEY or secret.key): is it the key the data was written with? Nothing was changed.`, { cause: err });
        }
        await c.query(`UPDATE ${table} SET ${column} = $2 WHERE id = $1`, [row.id, newBox.seal(plain)]);
      }
      counts[table] = rows.length;
    }
    return counts;
  });
}

/**
 * The whole `shipclock rotate-key` command: reads the new key, re-encrypts, and (when the key
 * lives in <dataDir>/secret.key rather than SHIPCLOCK_SECRET_KEY) replaces that file.
 */
export async function rotateKeyCommand(opts: {
  pool: Pool;
  secretKey: string | undefined;
  dataDir: string;
  newKeyRaw: string;
  out: (line: string) => void;
}): Promise<void> {
  const newKey = parseKey(opts.newKeyRaw.trim());
  const keyFile = path.join(opts.dataDir, 'secret.key');
  if (!opts.secretKey && !fs.existsSync(keyFile)) throw new RotationError(`no current key: SHIPCLOCK_SECRET_KEY is unset and ${keyFile} does not exist`);
  const oldBox = SecretBox.load(opts.secretKey, opts.dataDir);
  const newBox = SecretBox.fromKey(newKey);
  const probe = oldBox.seal('probe');
  let same = false;
  try {
    same = newBox.open(probe) === 'probe';
  } catch {
    same = false;
  }
  if (same) throw new RotationError('the new key is the current key');

  // With a key file, stage the new key next to it first, so a crash after the commit leaves it on disk.
  const staged = `${keyFile}.new`;
  if (!opts.secretKey) fs.writeFileSync(staged, newKey.toString('base64') + '\n', { mode: 0o600 });
  const counts = await rotateSecrets(opts.pool, oldBox, newBox);
  opts.out(`re-encrypted ${Object.entries(counts).map(([t, n]) => `${n} ${t}`).join(', ')}`);
  if (!opts.secretKey) {
    fs.renameSync(staged, keyFile);
    opts.out(`${keyFile} now holds the new key`);
  } else {
    opts.out('now set SHIPCLOCK_SECRET_KEY to the new key on every machine, then start shipclock');
  }
}
