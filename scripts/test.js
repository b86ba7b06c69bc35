#!/usr/bin/env node
// `npm test`: runs every *.test.ts under src/ and test/ with node's own test runner.
// With TEST_DATABASE_URL (a server where the user may CREATE DATABASE), tests use it; without,
// an embedded PostgreSQL is started for the run and removed after. Each test file creates its
// own database on that server (a copy of a migrated template: test/helpers/db.ts), so files run
// in parallel without seeing each other's rows.
// Arguments: file paths or substrings to select test files (e.g. `npm test -- time`).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { register } from 'tsx/esm/api';

register();

function findTests(dir, out = []) {
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && e.name !== 'node_modules') findTests(p, out);
    else if (e.isFile() && e.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
let files = [...findTests('src'), ...findTests('test')].sort();
if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)));
if (!files.length) {
  console.error('no test files match', filters.join(' '));
  process.exit(2);
}

// Printed first, so that a CI log with several runs (.ci/run: the machine's Node, then Node 24) says which is which.
console.log(`# node ${process.version}`);

let embedded;
const env = { ...process.env };
if (!env.TEST_DATABASE_URL) {
  const { startEmbedded } = await import('../src/db/embedded.ts');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shipclock-test-pg-'));
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(`# starting embedded PostgreSQL in ${dir}`);
  embedded = await startEmbedded(dir, { persistent: false });
  env.TEST_DATABASE_URL = embedded.url.replace(/\/shipclock$/, '/postgres');
}

// The browser tests' Chromium is looked up (and, for the packaged one, unpacked) once here, so
// that test files running in parallel never unpack it at the same time.
if (files.some((f) => f.includes(`${path.sep}browser${path.sep}`))) {
  const { findChromium } = await import('../test/browser/chromium.ts');
  const chromium = await findChromium();
  console.log(`# browser tests use ${chromium.source}: ${chromium.path}`);
}

// 2 files at once by default. 3 was faster on a 10-file subset (164 s against 230 s) and took
// the fresh-clone CI from 17 to 10.5 min, but with two runs side by side a browser test then
// timed out once (a form's answer took over 15 s): TEST_CONCURRENCY=3 where the machine allows.
const concurrency = process.env.TEST_CONCURRENCY || '2';
// --test-timeout: a test stuck on something that never comes fails after TEST_TIMEOUT_MS (default
// 10 minutes) instead of hanging CI. No --test-force-exit: with more than one file at a time it
// silently loses verdicts (nodejs/node#64833: a run reported 594 of 609 tests, exit 0). A file
// that keeps its process alive after its tests (a server left open) is caught by the whole run's
// deadline instead: TEST_RUN_DEADLINE_MS (default 45 minutes), then the run is killed and fails.
const timeout = process.env.TEST_TIMEOUT_MS || '600000';
const deadlineMs = Number(process.env.TEST_RUN_DEADLINE_MS || 45 * 60_000);
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-timeout=${timeout}`, `--test-concurrency=${concurrency}`, ...files],
  { stdio: 'inherit', env },
);
let overDeadline = false;
const deadline = setTimeout(() => {
  overDeadline = true;
  console.log(`# the test run is still going after ${Math.round(deadlineMs / 60_000)} min (TEST_RUN_DEADLINE_MS): a test file keeps its process alive; stopping it, and the run fails`);
  child.kill('SIGKILL');
}, deadlineMs);
const stop = async () => { if (embedded) await embedded.stop().catch(() => {}); };
process.on('SIGINT', () => child.kill('SIGINT'));
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', async (code, signal) => {
  clearTimeout(deadline);
  await stop();
  process.exit(overDeadline ? 1 : code ?? (signal ? 1 : 0));
});
