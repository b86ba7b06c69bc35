import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAt, parseDuration, parseState, parseZone, UsageError } from './parse.ts';
import { readConfig, writeConfig } from './config.ts';
import { deploymentOfEvent } from './watch.ts';

test('--at takes "YYYY-MM-DD HH:MM" and "YYYY-MM-DD HH:MM:SS"', () => {
  assert.deepEqual(parseAt('2030-03-31 02:30'), { year: 2030, month: 3, day: 31, hour: 2, minute: 30, second: 0 });
  assert.deepEqual(parseAt('2030-12-01 23:59:58'), { year: 2030, month: 12, day: 1, hour: 23, minute: 59, second: 58 });
  assert.deepEqual(parseAt('2030-12-01T07:05'), { year: 2030, month: 12, day: 1, hour: 7, minute: 5, second: 0 });
});

test('--at rejects malformed and impossible dates', () => {
  for (const bad of ['2030-02-30 10:00', '2030-13-01 10:00', '2030-01-01 24:00', '2030-01-01 10:60', '2030-01-01', '10:00', '2030-1-1 1:00', '2030-01-01 10:00+02:00', '']) {
    assert.throws(() => parseAt(bad), UsageError, bad);
  }
  assert.deepEqual(parseAt('2028-02-29 00:00').day, 29); // a leap day
});

test('--lead takes 15m, 90s, 1h, 1h30m and plain seconds', () => {
  assert.equal(parseDuration('15m'), 900);
  assert.equal(parseDuration('90s'), 90);
  assert.equal(parseDuration('1h'), 3600);
  assert.equal(parseDuration('1h30m'), 5400);
  assert.equal(parseDuration('2M'), 120);
  assert.equal(parseDuration('600'), 600);
  for (const bad of ['', 'm', '15x', '1.5h', '-5m', '15m1h']) assert.throws(() => parseDuration(bad), UsageError, bad);
});

test('--tz and --state are checked', () => {
  assert.equal(parseZone('Europe/Berlin'), 'Europe/Berlin');
  assert.throws(() => parseZone('Mars/Olympus'), /unknown time zone "Mars\/Olympus"/);
  assert.equal(parseState('failed'), 'failed');
  assert.throws(() => parseState('done'), /--state must be one of/);
});

test('the config file is written with mode 0600 and read back', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shipclock-cfg-'));
  try {
    const env = { SHIPCLOCK_CONFIG: path.join(dir, 'nested', 'config.json') };
    fs.mkdirSync(path.join(dir, 'nested'));
    fs.writeFileSync(env.SHIPCLOCK_CONFIG, '{}', { mode: 0o644 }); // an existing, too-open file
    writeConfig({ url: 'http://x:1', token: 'tok' }, env);
    assert.equal(fs.statSync(env.SHIPCLOCK_CONFIG).mode & 0o777, 0o600);
    assert.deepEqual(readConfig(env), { url: 'http://x:1', token: 'tok' });
    assert.deepEqual(readConfig({ ...env, SHIPCLOCK_TOKEN: 'ci' }).token, 'ci');
    assert.throws(() => readConfig({ SHIPCLOCK_CONFIG: path.join(dir, 'none.json') }), /not logged in/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('watch understands the usual event envelopes', () => {
  assert.deepEqual(deploymentOfEvent({ deployment_id: 'a', state: 'running' }), { id: 'a', state: 'running', error: undefined });
  assert.equal(deploymentOfEvent({ result: { id: 'b', state: 'failed', error: 'x' } })?.error, 'x');
  assert.equal(deploymentOfEvent({ type: 'state', deployment: { id: 'c', state: 'succeeded' } })?.id, 'c');
  assert.equal(deploymentOfEvent({ hello: 1 }), null);
});
