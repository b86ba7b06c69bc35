/**
 * `shipclock rotate-key`: opens the database the server would use (DATABASE_URL, or the embedded
 * one under SHIPCLOCK_DATA_DIR), applies pending migrations, and re-encrypts every secret.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from '../config.ts';
import { startEmbedded, type EmbeddedDatabase } from '../db/embedded.ts';
import { migrate } from '../db/migrate.ts';
import { createPool } from '../db/pool.ts';
import { rotateKeyCommand } from '../secrets/rotate.ts';

/** Returns the exit code: 0 rotated, 1 failed (nothing changed), 2 usage. */
export async function rotateKeyFromEnvironment(newKeyFile: string | undefined): Promise<number> {
  let newKeyRaw = process.env.SHIPCLOCK_NEW_SECRET_KEY;
  if (newKeyFile) {
    try {
      newKeyRaw = fs.readFileSync(newKeyFile, 'utf8');
    } catch (err) {
      process.stderr.write(`error: cannot read --new-key-file: ${(err as Error).message}\n`);
      return 2;
    }
  }
  if (!newKeyRaw?.trim()) {
    process.stderr.write('error: give the new key with --new-key-file FILE or SHIPCLOCK_NEW_SECRET_KEY (generate one: openssl rand -base64 32)\n');
    return 2;
  }
  let embedded: EmbeddedDatabase | undefined;
  let pool: ReturnType<typeof createPool> | undefined;
  try {
    const config = loadConfig();
    const url = config.databaseUrl ?? (embedded = await startEmbedded(path.join(config.dataDir, 'pg'))).url;
    pool = createPool(url, 2);
    await migrate(pool);
    await rotateKeyCommand({
      pool, secretKey: config.secretKey, dataDir: config.dataDir, newKeyRaw,
      out: (line) => process.stdout.write(line + '\n'),
    });
    return 0;
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return err instanceof ConfigError ? 2 : 1;
  } finally {
    await pool?.end().catch(() => {});
    await embedded?.stop().catch(() => {});
  }
}
