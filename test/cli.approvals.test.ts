/**
 * `shipclock approve` / `reject` and the approval column of `ls`, through the real executable
 * against an in-process server on a fresh database.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addMember } from './helpers/accounts.ts';
import { startTestServer, type TestServer, utcFields } from './helpers/server.ts';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'shipclock.js');
let server: TestServer;
let dir: string;
let configFile: string;
let appId: string;

interface Run { code: number | null; stdout: string; stderr: string }

function cli(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH, HOME: dir, TZ: 'UTC', SHIPCLOCK_CONFIG: configFile },
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

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shipclock-cli-appr-'));
  configFile = path.join(dir, 'config.json');
  server = await startTestServer();
  const team = (await server.api('GET', '/v1/me', undefined, server.adminToken)).body.team.id;
  await addMember(server, team, 'second@example.com', 'second-password-1', 'deployer');
  const r = await server.api('POST', '/v1/apps', { name: 'api', target: { type: 'webhook', url: 'http://127.0.0.1:9/' }, approval: { required: 2 } }, server.adminToken);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  appId = r.body.id;
  const login = await cli(['login', '--url', server.url, '--email', 'second@example.com', '--password', 'second-password-1']);
  assert.equal(login.code, 0, login.stderr);
});

after(async () => {
  await server?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('approve, reject and ls show the approval state', async () => {
  const mk = async (hours: number) => {
    const r = await server.api('POST', '/v1/scheduled_deployments', { app: appId, ...utcFields(hours * 3600_000) }, server.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.result.id as string;
  };
  const a = await mk(2);
  const b = await mk(3);

  let r = await cli(['ls']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /APPROVAL/);
  assert.match(r.stdout, new RegExp(`${a}\\s+api\\s+scheduled\\s+pending 0/2`));

  r = await cli(['approve', a, '--comment', 'checked the migration']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`${a}  scheduled  approval pending 1/2`));
  r = await cli(['ls']);
  assert.match(r.stdout, new RegExp(`${a}\\s+api\\s+scheduled\\s+pending 1/2`));

  r = await cli(['approve', a]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /already approved or rejected/);

  r = await cli(['reject', b]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--comment is required/);
  r = await cli(['reject', b, '--comment', 'not on a Friday']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /approval rejected/);

  r = await cli(['ls', '--approval', 'pending']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(a));
  assert.doesNotMatch(r.stdout, new RegExp(b));

  r = await cli(['show', b]);
  assert.match(r.stdout, /approval:\s+rejected/);
  assert.match(r.stdout, /rejected by second@example.com at .*: not on a Friday/);
});
