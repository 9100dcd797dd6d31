import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';

/** How long past the due time to wait for a natural major GC, as a fraction of the interval. */
export const GC_WAIT_FRACTION = 0.25;

/**
 * Fires `onTick` about every `intervalMs`, preferably just after a natural
 * major GC. The native heap profile counts sampled objects that no GC has
 * freed yet; right after a mark-compact the garbage is gone, so the snapshot
 * is close to the exact "live" numbers without forcing a GC ourselves.
 * Once the interval is due we watch 'gc' entries; if no major GC comes within
 * GC_WAIT_FRACTION of the interval (an idle worker), we take it anyway.
 * The GC observer is only connected while a tick is due, so the agent adds
 * nothing to the host's GCs the rest of the time. Timers are unref()'d.
 */
export class GcAlignedTimer {
  private intervalTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private observer: PerformanceObserver | undefined;
  private stopped = true;
  /** How the last tick was triggered, for tests and debug logs. */
  lastTrigger: 'gc' | 'timeout' | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly onTick: () => void,
  ) {}

  start(): void {
    this.stopped = false;
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  private arm(): void {
    if (this.stopped) return;
    this.intervalTimer = setTimeout(() => this.due(), this.intervalMs);
    this.intervalTimer.unref();
  }

  private due(): void {
    this.intervalTimer = undefined;
    if (this.stopped) return;
    try {
      const observer = new PerformanceObserver((list) => {
        const major = list
          .getEntries()
          .some((e) => (e as unknown as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR);
        if (major) this.fire('gc');
      });
      observer.observe({ entryTypes: ['gc'] });
      this.observer = observer;
    } catch {
      // No GC observation available: fall back to the grace timer alone.
    }
    this.graceTimer = setTimeout(() => this.fire('timeout'), Math.max(1, Math.round(this.intervalMs * GC_WAIT_FRACTION)));
    this.graceTimer.unref();
  }

  private fire(trigger: 'gc' | 'timeout'): void {
    if (this.stopped || (this.graceTimer === undefined && this.observer === undefined)) return;
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
    try {
      this.observer?.disconnect();
    } catch {
      // ignore
    }
    this.observer = undefined;
  }
}
