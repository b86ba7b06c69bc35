import assert from 'node:assert/strict';
import { it } from 'node:test';
import { backoffSeconds } from './retry.ts';
import { canTransition, dependencyVerdict, FINAL_STATES, STATES } from './state.ts';

it('final states go nowhere; scheduled and running only forward', () => {
  for (const f of FINAL_STATES) for (const s of STATES) assert.equal(canTransition(f, s), false);
  assert.ok(canTransition('scheduled', 'running'));
  assert.ok(canTransition('scheduled', 'missed'));
  assert.ok(!canTransition('running', 'scheduled'));
  assert.ok(!canTransition('running', 'missed'));
});

it('a dependent runs only after its dependency succeeded', () => {
  assert.equal(dependencyVerdict(null), 'run');
  assert.equal(dependencyVerdict('succeeded'), 'run');
  assert.equal(dependencyVerdict('scheduled'), 'wait');
  assert.equal(dependencyVerdict('running'), 'wait');
  for (const s of ['failed', 'canceled', 'missed', 'skipped'] as const) assert.equal(dependencyVerdict(s), 'skip');
});

it('backoff doubles from backoff_seconds and is capped at an hour', () => {
  const p = { max_attempts: 5, backoff_seconds: 10 };
  assert.deepEqual([1, 2, 3, 4].map((a) => backoffSeconds(p, a)), [10, 20, 40, 80]);
  assert.equal(backoffSeconds({ max_attempts: 30, backoff_seconds: 600 }, 20), 3600);
});
