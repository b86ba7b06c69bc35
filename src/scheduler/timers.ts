/**
 * The local timers: one per instant, however many claimed deployments are due then. A slot's
 * timer fires on database time (DbClock), never early: a timer that wakes a millisecond early
 * is set again. Everything due at once (a slot, or rows claimed already late) is handed over as
 * one group on the next tick, so a burst is fired by one loop.
 */
import type { DbClock } from './clock.ts';
import type { Held } from './types.ts';

interface Slot {
  timer?: NodeJS.Timeout;
  members: Set<Held>;
}

export class Timers {
  private readonly slots = new Map<number, Slot>();
  private nowQueue: Held[] = [];
  private nowScheduled = false;

  /** `onDue` gets each group of held rows whose instant has come. */
  constructor(private readonly clock: DbClock, private readonly onDue: (group: Held[]) => void) {}

  /** Waits for `h`'s due_at (or hands it over at once if that has passed). */
  arm(h: Held): void {
    const due = h.row.due_at!.getTime();
    if (due - this.clock.dbNow() <= 0) {
      // Coalesce everything already due into one batch on the next tick.
      this.queueNow(h);
      return;
    }
    let slot = this.slots.get(due);
    if (!slot) {
      slot = { members: new Set() };
      this.slots.set(due, slot);
      this.armSlot(due, slot);
    }
    slot.members.add(h);
    h.slot = due;
  }

  private armSlot(due: number, slot: Slot): void {
    slot.timer = setTimeout(() => {
      // Timers may wake a millisecond early, and the clock offset may have moved: never fire early.
      if (due - this.clock.dbNow() > 0) return this.armSlot(due, slot);
      this.slots.delete(due);
      for (const h of slot.members) {
        h.slot = undefined;
        this.queueNow(h);
      }
    }, Math.max(1, due - this.clock.dbNow()));
  }

  /** Stops waiting for `h` (released, ended or handed back before its instant). */
  unslot(h: Held): void {
    const due = h.slot;
    if (due === undefined) return;
    h.slot = undefined;
    const slot = this.slots.get(due);
    if (!slot) return;
    slot.members.delete(h);
    if (!slot.members.size) {
      clearTimeout(slot.timer);
      this.slots.delete(due);
    }
  }

  private queueNow(h: Held): void {
    this.nowQueue.push(h);
    if (this.nowScheduled) return;
    this.nowScheduled = true;
    setImmediate(() => {
      this.nowScheduled = false;
      const group = this.nowQueue;
      this.nowQueue = [];
      this.onDue(group);
    });
  }
}
