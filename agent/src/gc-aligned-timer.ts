/** How long past the due time to wait for a natural major GC, as a fraction of the interval. */
export const GC_WAIT_FRACTION = 0.25;

/**
 * Fires `onTick` about every `intervalMs`, preferably with a post-major-GC
 * snapshot in hand, the one free of old-space garbage (docs/sampler.md). The
 * agent snapshots after every major GC (MajorGcWatch), so when the interval
 * is due: if such a snapshot was taken since the last tick (`hasPostGc`),
 * fire now; otherwise ask `forceGc` to force one and take the snapshot
 * (GcAssist, within its pause cap and time budget); failing that, wait up to
 * GC_WAIT_FRACTION of the interval for the next major GC (`majorGc()`), then
 * fire anyway (an idle worker, or one whose major GCs are far apart). Timers
 * are unref()'d.
 */
export class GcAlignedTimer {
  private intervalTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private stopped = true;
  /** How the last tick was triggered, for tests and debug logs. */
  lastTrigger: 'gc' | 'forced-gc' | 'timeout' | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly onTick: () => void,
    private readonly hasPostGc: () => boolean = () => false,
    private readonly forceGc: () => boolean = () => false,
  ) {}

  start(): void {
    this.stopped = false;
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  /** Whether a tick is due and waiting for the next major GC. */
  get waitingForGc(): boolean {
    return this.graceTimer !== undefined;
  }

  /** A post-major-GC snapshot was just taken: fire now if a tick is due. */
  majorGc(): void {
    if (this.graceTimer !== undefined) this.fire('gc');
  }

  private arm(): void {
    if (this.stopped) return;
    this.intervalTimer = setTimeout(() => this.due(), this.intervalMs);
    this.intervalTimer.unref();
  }

  private due(): void {
    this.intervalTimer = undefined;
    if (this.stopped) return;
    let ready: 'gc' | 'forced-gc' | undefined;
    try {
      if (this.hasPostGc()) ready = 'gc';
      else if (this.forceGc()) ready = 'forced-gc';
    } catch {
      // treat as not ready
    }
    this.graceTimer = setTimeout(() => this.fire('timeout'), Math.max(1, Math.round(this.intervalMs * GC_WAIT_FRACTION)));
    this.graceTimer.unref();
    if (ready) this.fire(ready);
  }

  private fire(trigger: 'gc' | 'forced-gc' | 'timeout'): void {
    if (this.stopped || this.graceTimer === undefined) return;
    this.disarm();
    this.lastTrigger = trigger;
    this.arm();
    try {
      this.onTick();
    } catch {
      // onTick guards itself; the schedule must survive regardless.
    }
  }

  private disarm(): void {
    if (this.intervalTimer) clearTimeout(this.intervalTimer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.intervalTimer = undefined;
    this.graceTimer = undefined;
  }
}
