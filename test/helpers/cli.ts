/**
 * The real `shipclock` executable (bin/shipclock.js) in a child process, for the tests of the
 * client, and the set-up those test files share: an in-process server, a few webhook apps, and a
 * HOME of their own with the CLI logged in.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer } from './server.ts';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'shipclock.js');

export interface CliRun { code: number | null; stdout: string; stderr: string }

/**
 * Runs the CLI with only PATH, TZ=UTC and `env` in its environment, asynchronously (the server
 * under test lives in this process, so the loop must never block); killed after 60 s.
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH, TZ: 'UTC', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A fresh temporary HOME with the CLI's config file (SHIPCLOCK_CONFIG) in it. */
export interface CliHome {
  dir: string;
  configFile: string;
  /** The CLI with this HOME and config file; `env` adds to or overrides them. */
  cli(args: string[], env?: NodeJS.ProcessEnv): Promise<CliRun>;
  /** `shipclock login`, which must succeed. */
  login(url: string, email: string, password: string): Promise<void>;
  remove(): void;
}

export function cliHome(opts: { prefix?: string; configFile?: string } = {}): CliHome {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), opts.prefix ?? 'shipclock-cli-'));
  const configFile = path.join(dir, opts.configFile ?? 'config.json');
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(args, { HOME: dir, SHIPCLOCK_CONFIG: configFile, ...env });
  return {
    dir,
    configFile,
    cli,
    async login(url, email, password) {
      const r = await cli(['login', '--url', url, '--email', email, '--password', password]);
      assert.equal(r.code, 0, r.stderr);
    },
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

export interface CliFixture {
  server: TestServer;
  home: CliHome;
  stop(): Promise<void>;
}

/**
 * An in-process server on a fresh database, the webhook apps named in `apps` (their URL is a
 * port nobody listens on: these apps are for the client's commands, not for firing), and a CLI
 * home, logged in as the admin unless `login` is false (the file logs in as someone else, or
 * tests login itself).
 */
export async function startCliFixture(opts: { apps?: string[]; login?: boolean; prefix?: string; configFile?: string } = {}): Promise<CliFixture> {
  const home = cliHome(opts);
  const server = await startTestServer();
  for (const name of opts.apps ?? []) {
    const r = await server.api('POST', '/v1/apps', { name, target: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } }, server.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  if (opts.login !== false) await home.login(server.url, server.adminEmail, server.adminPassword);
  return {
    server,
    home,
    async stop() {
      await server.stop();
      home.remove();
    },
  };
}

/**
 * startCliFixture in the calling file's before() (or its describe's), stopped in its after():
 * for the files whose set-up is nothing else. `cli` runs the client with the fixture's home.
 */
export function withCliFixture(opts: Parameters<typeof startCliFixture>[0] = {}): { cli(args: string[], env?: NodeJS.ProcessEnv): Promise<CliRun>; fixture(): CliFixture } {
  let fixture: CliFixture | undefined;
  before(async () => { fixture = await startCliFixture(opts); });
  after(async () => { await fixture?.stop(); });
  const started = () => {
    if (!fixture) throw new Error('the CLI fixture is not started yet: use it inside a test');
    return fixture;
  };
  return { cli: (args, env) => started().home.cli(args, env), fixture: started };
}
