/**
 * The Batcher (src/services/batch.ts) that groups concurrent schedulings into one statement and
 * announcements into one NOTIFY: alone at once, grouped while runs are under way, in arrival
 * order, each caller answered with its own output, and a failing group isolated when asked.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher } from '../src/services/batch.ts';

/** A run that records its groups and answers once released. */
function recorder(fail?: (items: number[]) => boolean) {
  const groups: number[][] = [];
  const pending: Array<() => void> = [];
  const run = (items: number[]) => new Promise<string[]>((resolve, reject) => {
    groups.push(items);
    pending.push(() => (fail?.(items) ? reject(new Error(`failed ${items.join(',')}`)) : resolve(items.map((i) => `out ${i}`))));
  });
  const release = async () => {
    while (pending.length) {
      pending.shift()!();
      await new Promise((r) => setImmediate(r));
    }
  };
  return { groups, run, release };
}

describe('Batcher', () => {
  it('runs a lone call at once, and groups the calls that arrive while the runs in flight are under way', async () => {
    const r = recorder();
    const b = new Batcher(r.run, { maxInFlight: 2, maxBatch: 3, isolate: false });
    const outs = [1, 2, 3, 4, 5, 6, 7].map((i) => b.submit(i));
    assert.deepEqual(r.groups, [[1], [2]]);
    await r.release();
    assert.deepEqual(r.groups, [[1], [2], [3, 4, 5], [6, 7]]);
    assert.deepEqual(await Promise.all(outs), [1, 2, 3, 4, 5, 6, 7].map((i) => `out ${i}`));
  });

  it('isolate: a failing group runs again one by one, and only the failing call rejects', async () => {
    const r = recorder((items) => items.includes(4));
    const b = new Batcher(r.run, { maxInFlight: 1, maxBatch: 10, isolate: true });
    const outs = [1, 2, 3, 4, 5].map((i) => b.submit(i).catch((e: Error) => e.message));
    await r.release();
    await r.release();
    assert.deepEqual(await Promise.all(outs), ['out 1', 'out 2', 'out 3', 'failed 4', 'out 5']);
    assert.deepEqual(r.groups, [[1], [2, 3, 4, 5], [2], [3], [4], [5]]);
  });

  it('without isolate, every call of a failing group hears its error', async () => {
    const r = recorder((items) => items.includes(3));
    const b = new Batcher(r.run, { maxInFlight: 1, maxBatch: 10, isolate: false });
    const outs = [1, 2, 3].map((i) => b.submit(i).catch((e: Error) => e.message));
    await r.release();
    assert.deepEqual(await Promise.all(outs), ['out 1', 'failed 2,3', 'failed 2,3']);
  });
});
