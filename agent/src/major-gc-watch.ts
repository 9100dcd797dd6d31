import { PerformanceObserver, constants as perfConstants, performance } from 'node:perf_hooks';

/**
 * Observes major (mark-compact) GCs for the agent's whole life through
 * perf_hooks 'gc' entries, so that the agent can snapshot right after each:
 * the native heap profile keeps old-space garbage until a major GC frees it,
 * and a snapshot right after one is the post-GC picture the leak rule needs,
 * without forcing a GC (docs/sampler.md).
 *
 * Cost: Node builds an entry for every GC, scavenges included, once any 'gc'
 * observer exists (C++ epilogue -> SetImmediate -> a JS entry object), so the
 * host pays per minor GC, not per major one; bench/gc-observer-cost.mjs
 * measures it (no quiet-machine figure yet). Our own
 * callback only scans the batch for kind === MAJOR.
 */
export class MajorGcWatch {
  private observer: PerformanceObserver | undefined;
  /** Major GCs seen since start(). */
  majorGcs = 0;
  /** End of the newest major GC, Unix epoch ms; 0 if none yet. */
  lastMajorGcEndMs = 0;
  /** Forced GCs already counted by forced(), whose entries are still to come. */
  private forcedPending = 0;

  constructor(private readonly onMajorGc: () => void) {}

  /** False if 'gc' entries cannot be observed here; the agent then sends live snapshots only. */
  start(): boolean {
    if (this.observer) return true;
    try {
      const observer = new PerformanceObserver((list) => {
        let major = false;
        for (const e of list.getEntries()) {
          if ((e as unknown as { detail?: { kind?: number } }).detail?.kind !== perfConstants.NODE_PERFORMANCE_GC_MAJOR) continue;
          if (this.forcedPending > 0) {
            this.forcedPending--;
            continue;
          }
          major = true;
          this.majorGcs++;
          // The entry arrives after the GC; clamp so the monotonic clock's
          // drift from Date.now() never puts a GC's end after the snapshot.
          this.lastMajorGcEndMs = Math.min(Date.now(), Math.round(performance.timeOrigin + e.startTime + e.duration));
        }
        if (!major) return;
        try {
          this.onMajorGc();
        } catch {
          // The callback guards itself; the observer must survive regardless.
        }
      });
      observer.observe({ entryTypes: ['gc'] });
      this.observer = observer;
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The agent just forced a major GC (GcAssist) and reads the heap itself:
   * count it now, and do not report its entry, due in a setImmediate, as a
   * new GC.
   */
  forced(): void {
    this.majorGcs++;
    this.lastMajorGcEndMs = Date.now();
    if (this.observer) this.forcedPending++;
  }

  stop(): void {
    try {
      this.observer?.disconnect();
    } catch {
      // ignore
    }
    this.observer = undefined;
  }
}
