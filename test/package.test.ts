/**
 * The npm package as a user gets it (`npx shipclock`): `npm pack` → its file list (the built
 * server and UI, the migrations it reads at run time, no sources or dev tooling) → installed into
 * an empty folder with `npm install --omit=dev` (from the npm registry, through the npm cache) →
 * `npx shipclock serve` on its embedded PostgreSQL → sign in with the printed one-time password →
 * the client commands log in, list apps, schedule a webhook deployment and watch it succeed →
 * SIGTERM, exit 0.
 *
 * It packs with --ignore-scripts: `prepare` would rebuild dist/web under the browser tests running
 * in parallel. `npm ci` has built dist (prepare); a server bundle older than the sources is rebuilt.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/fake-webhook.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

let tmp: string;
let appDir: string;
let tarball: string;
let files: string[];
let serve: ChildProcess | undefined;
let serveClosed = false;
let receiver: WebhookReceiver;

/** The environment of a user's shell: no npm_* variables from the `npm test` running this file
 * (npm_config_local_prefix would point npm at this repository), no database or shipclock settings. */
function userEnv(more: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|INIT_CWD$|NODE_OPTIONS$|DATABASE_URL$|TEST_|SHIPCLOCK_|PORT$|HOST$|LOG_)/i.test(k)) continue;
    env[k] = v;
  }
  return { ...env, TZ: 'UTC', ...more };
}

interface Run { code: number | null; stdout: string; stderr: string }

function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? userEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function newestTs(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) { if (p !== path.join(ROOT, 'src/web')) newest = Math.max(newest, newestTs(p)); }
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

before(async () => {
  const t0 = Date.now();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shipclock-package-'));
  appDir = path.join(tmp, 'app');
  fs.mkdirSync(appDir);
  receiver = await startWebhookReceiver();
  assert.ok(fs.existsSync(path.join(ROOT, 'dist/web/index.html')), 'dist/web is missing: run `npm run build:web` (npm ci does)');
  const bundle = path.join(ROOT, 'dist/server/main.js');
  if (!fs.existsSync(bundle) || fs.statSync(bundle).mtimeMs < newestTs(path.join(ROOT, 'src'))) {
    const b = await run(process.execPath, [path.join(ROOT, 'scripts/build-server.js')], { cwd: ROOT });
    assert.equal(b.code, 0, b.stderr);
  }
  const pack = await run(NPM, ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: ROOT });
  assert.equal(pack.code, 0, pack.stderr);
  const [info] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as [{ filename: string; files: { path: string }[] }];
  tarball = path.join(tmp, info.filename);
  files = info.files.map((f) => f.path).sort();
  console.log(`# npm pack: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});

/** Signals npx and the shipclock it started: `npm exec` does not pass SIGTERM on to its child,
 * so the test does what a terminal's Ctrl-C or a service manager does, signal the process group. */
function signalGroup(p: ChildProcess, signal: NodeJS.Signals): void {
  try { process.kill(-p.pid!, signal); } catch { /* already gone */ }
}

after(async () => {
  if (serve && !serveClosed) {
    signalGroup(serve, 'SIGTERM'); // lets the embedded PostgreSQL stop
    await new Promise((r) => setTimeout(r, 5000));
    signalGroup(serve, 'SIGKILL');
  }
  await receiver?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('the tarball holds the built server and UI and the migrations, and no sources, tests or dev tooling', () => {
  const allowed = [
    /^package\.json$/, /^README\.md$/, /^LICENSE(\.md)?$/,
    /^bin\/shipclock\.js$/, /^dist\/server\/main\.js$/, /^dist\/web\/[\w./-]+$/,
    /^src\/db\/migrations\/\d+_\w+\.sql$/,
  ];
  const unexpected = files.filter((f) => !allowed.some((re) => re.test(f)));
  assert.deepEqual(unexpected, [], 'files that should not be shipped');
  assert.ok(!files.some((f) => f.endsWith('.ts') || f.startsWith('test/') || f.startsWith('src/web/')));
  for (const f of ['bin/shipclock.js', 'dist/server/main.js', 'dist/web/index.html', 'package.json', 'README.md']) {
    assert.ok(files.includes(f), `${f} is shipped`);
  }
  const migrations = fs.readdirSync(path.join(ROOT, 'src/db/migrations')).filter((f) => f.endsWith('.sql'));
  assert.deepEqual(files.filter((f) => f.startsWith('src/db/migrations/')), migrations.map((f) => `src/db/migrations/${f}`).sort());
});

test('installed into an empty folder, `npx shipclock serve` runs on the embedded PostgreSQL and the client commands schedule a deployment that fires', async (t) => {
  const t0 = Date.now();
  const install = await run(NPM, ['install', '--omit=dev', '--no-audit', '--no-fund', tarball], { cwd: appDir, timeoutMs: 300_000 });
  assert.equal(install.code, 0, install.stderr);
  assert.ok(!fs.existsSync(path.join(appDir, 'node_modules/vite')), 'no dev dependencies installed');
  t.diagnostic(`npm install of the tarball: ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = userEnv({ HOME: tmp, PORT: String(port), LOG_FORMAT: 'json', SHIPCLOCK_CONFIG: path.join(tmp, 'client.json') });
  serve = spawn('npx', ['--no-install', 'shipclock', 'serve'], { cwd: appDir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  // 'close': npx and shipclock (which holds the same stdout) have both ended.
  const closed = new Promise<void>((resolve) => serve!.once('close', () => { serveClosed = true; resolve(); }));
  let log = '';
  serve.stderr!.on('data', (c) => (log += c));
  const password = await new Promise<string>((resolve, reject) => {
    let found: string | undefined;
    const timer = setTimeout(() => reject(new Error(`shipclock did not start within 120 s:\n${log}`)), 120_000);
    const onData = (c: Buffer) => {
      log += c;
      found ??= /one-time password (\S+) and change it/.exec(log)?.[1];
      if (found && log.includes('shipclock is running')) {
        clearTimeout(timer);
        serve!.stdout!.off('data', onData);
        resolve(found);
      }
    };
    serve!.stdout!.on('data', onData);
    serve!.once('exit', (code) => reject(new Error(`shipclock exited (${code}):\n${log}`)));
  });
  serve.stdout!.on('data', (c) => (log += c));
  t.diagnostic(`npx shipclock serve up, with its database: ${((Date.now() - t0) / 1000).toFixed(1)} s after the install began`);
  assert.ok(fs.existsSync(path.join(appDir, '.shipclock/pg')), 'the embedded PostgreSQL keeps its data in ./.shipclock');

  const api = async (method: string, p: string, body?: unknown, token?: string) => {
    const res = await fetch(url + p, {
      method,
      headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: res.status === 204 ? null : await res.json() as any };
  };
  assert.equal((await api('GET', '/healthz')).status, 200);
  assert.match(await (await fetch(url + '/')).text(), /<div id="root">/, 'the UI is served');
  // The printed password is one-time: change it, as the UI asks on the first sign-in.
  const first = await api('POST', '/v1/auth/login', { email: 'admin@localhost', password });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const newPassword = `package-test-${Math.random().toString(36).slice(2)}`;
  const changed = await api('POST', '/v1/me/password', { current_password: password, new_password: newPassword }, first.body.access_token);
  assert.equal(changed.status, 204, JSON.stringify(changed.body));
  const created = await api('POST', '/v1/apps', { name: 'api', target: { type: 'webhook', url: receiver.url }, retry: { max_attempts: 1 } }, first.body.access_token);
  assert.equal(created.status, 201, JSON.stringify(created.body));

  const cli = (...args: string[]) => run('npx', ['--no-install', 'shipclock', ...args], { cwd: appDir, env, timeoutMs: 120_000 });
  const login = await cli('login', '--url', url, '--email', 'admin@localhost', '--password', newPassword);
  assert.equal(login.code, 0, login.stderr);
  const apps = await cli('apps', 'ls');
  assert.equal(apps.code, 0, apps.stderr);
  assert.match(apps.stdout, /\bapi\b.*webhook/);
  // Far enough ahead for `npx` to start the client on a loaded machine (several seconds each run).
  const at = new Date(Math.ceil((Date.now() + 20_000) / 1000) * 1000).toISOString().slice(0, 19).replace('T', ' ');
  const scheduled = await cli('schedule', 'api', '--at', at, '--tz', 'UTC', '--json');
  assert.equal(scheduled.code, 0, scheduled.stderr);
  const id = (JSON.parse(scheduled.stdout) as { id: string }).id;
  const watched = await cli('watch', id);
  assert.equal(watched.code, 0, `watch: ${watched.stdout}${watched.stderr}`);
  assert.equal(receiver.hits.length, 1, 'the webhook was called once');

  // SIGTERM: shipclock finishes what is in flight, stops its embedded PostgreSQL and exits, well
  // within its 30 s limit.
  signalGroup(serve, 'SIGTERM');
  await closed;
  assert.match(log, /"signal":"SIGTERM","msg":"stopping/);
  assert.doesNotMatch(log, /did not stop within 30 s/);
  assert.ok(!fs.existsSync(path.join(appDir, '.shipclock/pg/postmaster.pid')), 'the embedded PostgreSQL stopped');
});
