/**
 * The database clock, as one process best knows it. The database decides when something is due:
 * every claim measures this machine's offset from it (half the round trip), timers are set on
 * database time (a slow reading is set aside while a quick one is fresh), and a skew beyond SKEW_WARN_MS is logged once and exported as
 * `shipclock_clock_skew_seconds`. Owns nothing else.
 */
import type { Logger } from '../observability/logger.ts';
import { clockSkew } from '../observability/metrics.ts';

const SKEW_WARN_MS = 500;
/**
 * A reading whose round trip took longer than this bounds the offset only within half of it (the
 * query may have waited for a pool connection, or run long, before the database read its clock):
 * it is used only when no quicker reading came within FRESH_READING_MS.
 */
const SLOW_READING_MS = 100;
const FRESH_READING_MS = 60_000;
/** Offsets smaller than this are measurement noise on a local link; timers then use the local clock. */
const SKEW_IGNORE_MS = 50;

export class DbClock {
  /** Database clock minus local clock, ms. */
  private offsetMs = 0;
  private skewWarned = false;
  /** Local time of the last reading quicker than SLOW_READING_MS. */
  private lastQuickAt = -Infinity;

  /**
   * @param testOffsetMs Test only: pretend this machine's clock is off by this many ms.
   */
  constructor(private readonly logger: Logger, private readonly testOffsetMs = 0) {}

  /** This machine's clock (shifted in tests that simulate a skewed machine). */
  localNow(): number {
    return Date.now() + this.testOffsetMs;
  }

  /** Database clock now, as this process best knows it. */
  dbNow(): number {
    return this.localNow() + this.offsetMs;
  }

  /** Takes a database timestamp read between `sentAt` and `receivedAt` (local clock). */
  measure(dbNow: Date, sentAt: number, receivedAt: number): void {
    if (receivedAt - sentAt > SLOW_READING_MS) {
      if (receivedAt - this.lastQuickAt < FRESH_READING_MS) return;
    } else this.lastQuickAt = receivedAt;
    const raw = dbNow.getTime() - (sentAt + receivedAt) / 2;
    clockSkew.set(-raw / 1000);
    if (Math.abs(raw) > SKEW_WARN_MS) {
      if (!this.skewWarned) this.logger.warn({ skew_ms: Math.round(-raw) }, 'this machine\'s clock differs from the database\'s by more than 500 ms; the database clock decides when deployments fire');
      this.skewWarned = true;
    } else this.skewWarned = false;
    this.offsetMs = Math.abs(raw) < SKEW_IGNORE_MS ? 0 : raw;
  }
}
