/**
 * A burst's quiet window (burst.ts quietWindow): the scheduled → running write and the final
 * states wait while its calls are being answered, and no longer than needed — until every call is
 * answered, until the answers stop coming (a receiver that hangs), or until the window's limit.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { quietWindow } from './burst.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long quietWindow took to resolve, ms. */
async function timed(p: Promise<void>): Promise<number> {
  const t0 = performance.now();
  await p;
  return performance.now() - t0;
}

describe('quietWindow', () => {
  it('ends as soon as every call is answered', async () => {
    const took = await timed(quietWindow(sleep(50), () => performance.now(), 10_000, 1000));
    assert.ok(took < 500, `ended with the answers (${took.toFixed(0)} ms)`);
  });

  it('goes on while answers keep coming, and ends a stall after them', async () => {
    let last = performance.now();
    // Answers every 100 ms for 1.5 s, then none (a receiver that stops answering).
    const answering = setInterval(() => { last = performance.now(); }, 100);
    setTimeout(() => clearInterval(answering), 1500);
    const took = await timed(quietWindow(new Promise(() => {}), () => last, 10_000, 400));
    assert.ok(took >= 1500, `not ended while answers came (${took.toFixed(0)} ms)`);
    assert.ok(took < 3000, `ended about 400 ms after the last answer (${took.toFixed(0)} ms)`);
  });

  it('ends at its limit even while answers keep coming', async () => {
    let last = performance.now();
    const answering = setInterval(() => { last = performance.now(); }, 50);
    try {
      const took = await timed(quietWindow(new Promise(() => {}), () => last, 800, 400));
      assert.ok(took >= 800 && took < 2500, `ended at the limit (${took.toFixed(0)} ms)`);
    } finally {
      clearInterval(answering);
    }
  });

  it('ends after the stall time when nothing is ever answered', async () => {
    const start = performance.now();
    const took = await timed(quietWindow(new Promise(() => {}), () => start, 10_000, 300));
    assert.ok(took >= 300 && took < 2000, `ended after the stall time (${took.toFixed(0)} ms)`);
  });
});
