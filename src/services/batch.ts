/**
 * Groups concurrent calls of one kind into one run: while `maxInFlight` runs are under way, the
 * calls that arrive wait and go together in the next (at most `maxBatch` in one). Idle, a call
 * runs at once, alone, so grouping adds no wait where there is no load; under load, one round trip
 * and one commit serve many requests instead of one each. Calls are taken in arrival order.
 *
 * Used for scheduling (one statement for many requests, decision 0014) and for announcing
 * committed events (one NOTIFY statement, src/services/announce.ts).
 */
export interface BatcherOptions {
  /** How many runs may be under way at once; the others wait and join the next. */
  maxInFlight: number;
  /** The most calls one run takes. */
  maxBatch: number;
  /**
   * When a run of several fails: false, every call of it fails with that error; true, each is run
   * again alone, so that only the caller whose item caused it hears of it.
   */
  isolate: boolean;
}

interface Waiting<I, O> {
  item: I;
  resolve: (out: O) => void;
  reject: (err: unknown) => void;
}

export class Batcher<I, O> {
  private queue: Array<Waiting<I, O>> = [];
  private running = 0;

  /** `run` answers one output per item, in their order. */
  constructor(private readonly run: (items: I[]) => Promise<O[]>, private readonly o: BatcherOptions) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.o.maxInFlight && this.queue.length) {
      const batch = this.queue.splice(0, this.o.maxBatch);
      this.running++;
      void this.runBatch(batch).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  private async runBatch(batch: Array<Waiting<I, O>>): Promise<void> {
    try {
      const out = await this.run(batch.map((w) => w.item));
      batch.forEach((w, i) => w.resolve(out[i]));
    } catch (err) {
      if (batch.length === 1 || !this.o.isolate) {
        for (const w of batch) w.reject(err);
        return;
      }
      await Promise.all(batch.map((w) => this.run([w.item]).then((out) => w.resolve(out[0]), w.reject)));
    }
  }
}

/** One Batcher per key object (a pool): made on first use, gone with the key. */
export function batcherFor<K extends object, I, O>(registry: WeakMap<K, Batcher<I, O>>, key: K, make: () => Batcher<I, O>): Batcher<I, O> {
  let b = registry.get(key);
  if (!b) registry.set(key, (b = make()));
  return b;
}
