/**
 * Command-provider specifics beyond the conformance suite: a timeout or shutdown kills what the
 * command started too, a background process it leaves behind does not hold the step open, and
 * the child never sees shipclock's own environment.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { commandProvider, type CommandTarget } from '../src/providers/command.ts';
import type { ProviderContext } from '../src/providers/types.ts';

function ctx(target: Omit<CommandTarget, 'type'>, signal = new AbortController().signal): ProviderContext<CommandTarget> & { lines: string[] } {
  const lines: string[] = [];
  return {
    deployment: { id: randomUUID(), teamId: 't', appId: 'a', appName: 'web', runAt: new Date(), attempt: 1, startedAt: new Date() },
    target: { type: 'command', ...target }, ref: null, signal, log: (l) => lines.push(l), lines,
  };
}

/** Whether a process runs (a zombie left for an init that does not reap counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shipclock-cmd-'));

test('a timeout kills the processes the command started, not only the command', async () => {
  const pidFile = path.join(dir, 'grandchild.pid');
  const t0 = Date.now();
  const r = await commandProvider.start(ctx({ command: '/bin/sh', args: ['-c', `sleep 30 & echo $! > ${pidFile}; wait`], timeout_seconds: 1 }));
  assert.ok(Date.now() - t0 < 5000, `returned after ${Date.now() - t0} ms`);
  assert.deepEqual(r, { kind: 'failed', error: 'command did not finish within 1 s and was killed' });
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(alive(pid), false, 'the sleep the script started was killed too');
});

test('shutdown (the abort signal) stops the command and its children', async () => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 300);
  const t0 = Date.now();
  const r = await commandProvider.start(ctx({ command: '/bin/sh', args: ['-c', 'sleep 30; echo never'] }, ac.signal));
  assert.ok(Date.now() - t0 < 5000);
  assert.equal(r.kind, 'failed');
  if (r.kind === 'failed') assert.match(r.error, /killed by SIGTERM/);
});

test('a background process left holding the output does not keep the step open', async () => {
  const pidFile = path.join(dir, 'daemon.pid');
  const t0 = Date.now();
  const r = await commandProvider.start(ctx({ command: '/bin/sh', args: ['-c', `echo deployed; sleep 20 & echo $! > ${pidFile}; exit 0`] }));
  assert.ok(Date.now() - t0 < 5000, `returned after ${Date.now() - t0} ms`);
  assert.equal(r.kind, 'succeeded');
  try { process.kill(Number(fs.readFileSync(pidFile, 'utf8')), 'SIGKILL'); } catch { /* gone */ }
});

test('a failure names the last line the command printed; the whole output is the log', async () => {
  const c = ctx({ command: '/bin/sh', args: ['-c', 'echo step 1; echo "error: no space left on device" >&2; exit 3'] });
  const r = await commandProvider.start(c);
  assert.deepEqual(r, { kind: 'failed', error: 'command exited 3: error: no space left on device' });
  assert.match(c.lines.join(''), /step 1\n/);
});

test('the command gets the deployment in SHIPCLOCK_* variables and none of shipclock\'s own environment', async () => {
  process.env.SHIPCLOCK_SECRET_KEY_FOR_TEST = 'must-not-leak';
  const c = ctx({ command: '/usr/bin/env' });
  const r = await commandProvider.start(c);
  delete process.env.SHIPCLOCK_SECRET_KEY_FOR_TEST;
  assert.equal(r.kind, 'succeeded');
  const out = c.lines.join('');
  assert.match(out, new RegExp(`SHIPCLOCK_DEPLOYMENT_ID=${c.deployment.id}`));
  assert.match(out, /SHIPCLOCK_APP=web/);
  assert.ok(!out.includes('must-not-leak'));
  assert.ok(!/DATABASE_URL/.test(out));
});

test('an unknown command fails saying so', async () => {
  const r = await commandProvider.start(ctx({ command: path.join(dir, 'nope') }));
  assert.equal(r.kind, 'failed');
  if (r.kind === 'failed') assert.match(r.error, /command not found/);
});
