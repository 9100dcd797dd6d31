import * as v8 from 'node:v8';
import * as vm from 'node:vm';

/**
 * Forced full GC cost per MB of used heap assumed before the first one is
 * measured. Measured on the 2-core development machine (Node 20): 0.5 ms per
 * MB for a heap of small objects (1.8 ms at 4 MB, 24 ms at 43 MB, 50 ms at
 * 87 MB), the expensive case: large strings and buffers mark faster.
 */
export const INITIAL_MS_PER_MB = 0.5;

/**
 * Each time a GC is skipped for the pause cap, the learned cost per MB moves
 * this far back toward INITIAL_MS_PER_MB. One slow GC (the host's CPU
 * starved by other processes makes a pause look long) must not stop GC
 * assist for good, since a skipped GC measures nothing new; a heap that is
 * really that slow measures high again at its next forced GC.
 */
export const SKIP_DECAY = 0.9;

export interface GcAssistStats {
  /** Major GCs the agent forced. */
  forced: number;
  /** Main-thread time spent in them, microseconds. */
  timeUs: number;
  /** Times one was due but not forced: the heap was too large for the pause cap. */
  skippedPause: number;
  /** Times one was due but not forced: the time budget was spent. */
  skippedBudget: number;
}

/**
 * Forces a major GC before a profile when V8 has not run one during the
 * interval, within a pause cap and a time budget.
 *
 * Why: the native sampler counts old-space garbage until the next major GC,
 * and a worker that allocates little runs one only every 15-40 s or less
 * often; the leak rule judges post-GC profiles, so one per interval keeps
 * detection time counted in profiles (docs/sampler.md, GC assist).
 *
 * Bounds (a forced GC is a stop-the-world pause of the host):
 *  - no single pause above `maxPauseMs`: the pause is predicted from the
 *    used heap and the cost per MB of the previous forced GCs (starting at
 *    INITIAL_MS_PER_MB), and skipped when the prediction is over the cap,
 *    so a large heap is left to V8's own, frequent major GCs;
 *  - at most `budget` of wall time: after a pause p, the next forced GC waits
 *    p / budget.
 * Both skips are counted.
 */
export class GcAssist {
  private gc: (() => void) | undefined;
  private msPerMb = INITIAL_MS_PER_MB;
  private nextAllowedMs = 0;
  readonly stats: GcAssistStats = { forced: 0, timeUs: 0, skippedPause: 0, skippedBudget: 0 };

  constructor(
    private readonly budget: number,
    private readonly maxPauseMs: number,
    private readonly now: () => number = Date.now,
    private readonly usedHeapBytes: () => number = () => v8.getHeapStatistics().used_heap_size,
  ) {}

  /**
   * Obtains V8's gc() without exposing it to the host: the host's own when
   * it runs with --expose-gc, else one from a fresh context created while
   * the flag is briefly on (the way Jest's leak detector does it). False if
   * unavailable; the agent then relies on V8's GCs alone. `gcFn` replaces
   * V8's gc() (tests).
   */
  enable(gcFn?: () => void): boolean {
    if (gcFn) {
      this.gc = gcFn;
      return true;
    }
    const own = (globalThis as { gc?: unknown }).gc;
    if (typeof own === 'function') {
      this.gc = own as () => void;
      return true;
    }
    try {
      v8.setFlagsFromString('--expose-gc');
      const fn: unknown = vm.runInNewContext('gc');
      if (typeof fn === 'function') this.gc = fn as () => void;
    } catch {
      // stays undefined
    } finally {
      try {
        v8.setFlagsFromString('--no-expose-gc');
      } catch {
        // ignore
      }
    }
    return this.gc !== undefined;
  }

  /** Forces a major GC if the cap and the budget allow; true if it did. */
  tryForce(): boolean {
    if (!this.gc) return false;
    const now = this.now();
    if (now < this.nextAllowedMs) {
      this.stats.skippedBudget++;
      return false;
    }
    const heapMb = this.usedHeapBytes() / (1024 * 1024);
    if (heapMb * this.msPerMb > this.maxPauseMs) {
      this.stats.skippedPause++;
      this.msPerMb = Math.max(INITIAL_MS_PER_MB, this.msPerMb * SKIP_DECAY);
      return false;
    }
    const t0 = process.hrtime.bigint();
    this.gc();
    const pauseMs = Number(process.hrtime.bigint() - t0) / 1e6;
    this.stats.forced++;
    this.stats.timeUs += Math.round(pauseMs * 1000);
    // Learn the cost per MB, leaning toward the slower of old and new.
    if (heapMb >= 1) this.msPerMb = Math.max(pauseMs / heapMb, (this.msPerMb + pauseMs / heapMb) / 2);
    this.nextAllowedMs = now + pauseMs / this.budget;
    return true;
  }
}
