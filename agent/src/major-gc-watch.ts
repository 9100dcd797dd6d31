/**
 * Notices major (mark-compact) GCs at a cost paid per major GC only, through
 * one sentinel object registered with a FinalizationRegistry and referenced
 * by nothing. V8's scavenger treats weak references as strong, so only a
 * mark-compact frees the sentinel; V8 then posts the registry's callback as
 * a task, which runs a few milliseconds after the GC (measured: 1-6 ms on a
 * busy job loop, and exactly one callback per mark-compact while 354
 * scavenges ran). The callback counts the GC, registers a new sentinel and
 * tells the agent, which takes its post-GC snapshot then.
 *
 * Why not perf_hooks 'gc' entries: once any 'gc' observer exists Node builds
 * an entry object for every GC, scavenges included (a C++ epilogue, a
 * SetImmediate, a JS object per GC), and a CPU-bound worker scavenges
 * hundreds of times a second: +0.15 % of a job loop's instructions with a
 * fixed GC schedule (docs/performance.md, "What each agent mode costs"; an
 * earlier 4-7.5 % was the schedule moving). The sentinel costs nothing per
 * scavenge, nothing measurable in all.
 *
 * What it cannot say: how many major GCs ran before the callback ran (two
 * back to back count as one), nor when exactly each ended (the callback's
 * time stands for it). The leak detector only needs "a major GC ran between
 * these two profiles".
 */
export class MajorGcWatch {
  private registry: FinalizationRegistry<number> | undefined;
  /** Major GCs seen since start(). */
  majorGcs = 0;
  /** When the newest major GC was noticed, Unix epoch ms (a few ms after it ended); 0 if none yet. */
  lastMajorGcEndMs = 0;
  /** Forced GCs already counted by forced(), whose sentinel callback is still to come. */
  private forcedPending = 0;

  constructor(private readonly onMajorGc: () => void) {}

  /** False if FinalizationRegistry is unavailable; the agent then sends live snapshots only. */
  start(): boolean {
    if (this.registry) return true;
    try {
      const registry = new FinalizationRegistry<number>(() => this.collected(registry));
      this.registry = registry;
      this.arm();
      return true;
    } catch {
      this.registry = undefined;
      return false;
    }
  }

  /**
   * The agent just forced a major GC (GC assist) and reads the heap itself:
   * count it now, and do not report its sentinel callback, due shortly, as a
   * new GC.
   */
  forced(): void {
    this.majorGcs++;
    this.lastMajorGcEndMs = Date.now();
    if (this.registry) this.forcedPending++;
  }

  stop(): void {
    this.registry = undefined;
  }

  private arm(): void {
    // A fresh empty object nothing else references: only a mark-compact frees it.
    this.registry?.register({}, 0);
  }

  private collected(from: FinalizationRegistry<number>): void {
    if (this.registry !== from) return; // stopped (or restarted) since
    this.arm();
    if (this.forcedPending > 0) {
      this.forcedPending--;
      return;
    }
    this.majorGcs++;
    this.lastMajorGcEndMs = Date.now();
    try {
      this.onMajorGc();
    } catch {
      // The callback guards itself; the watch must survive regardless.
    }
  }
}
