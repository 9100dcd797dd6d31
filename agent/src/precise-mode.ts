import type { DecodedDirective } from '@heapwatch/proto/messages';
import { setInlining } from './inlining';
import type { Logger } from './logger';

/** `auto`: the collector's directive decides; `always`: on from start, unbounded; `never`: directives are ignored. */
export type PreciseSetting = 'auto' | 'always' | 'never';
export const PRECISE_SETTINGS: readonly PreciseSetting[] = ['auto', 'always', 'never'];

export interface PreciseStats {
  /** Times precise mode was turned on. */
  activations: number;
  /** Time spent in precise mode, ms, the current period included. */
  timeMs: number;
  /** Main-thread time of the switches in and out (flag + deoptimization), microseconds. */
  switchTimeUs: number;
  /** Directives to turn on that the cool-down refused. */
  refused: number;
}

export interface PreciseOptions {
  setting: PreciseSetting;
  /** Longest precise period, however often the collector renews it. */
  maxMs: number;
  /** Shortest: a clearing directive ends a period no sooner than this after it began. */
  minMs: number;
  /** No new period before this long after one ended at its bound (after one the collector ended: at most as long as it lasted). */
  cooldownMs: number;
  /** Whether precise mode turns V8's inlining off (disableInlining option). */
  disableInlining: boolean;
  log: Logger;
  now?: () => number;
  /** Replaces setInlining (tests of the schedule alone). */
  switchInlining?: (on: boolean) => { deoptimized: boolean; reason?: string };
}

/**
 * Precise mode: what the agent pays for only while a leak is suspected.
 * While it is on, V8's inlining is off (so a small allocating function is
 * charged to itself, not to the caller it was inlined into) and GC assist
 * may force a major GC before a profile when V8 ran none (so every profile
 * shows memory after GC). In the default mode neither happens.
 *
 * The collector turns it on and off through the directive in its ingest
 * responses (a service with a rising site or heap); each directive to stay
 * on renews the period, up to `maxMs` from its start. A directive that
 * clears the suspicion ends the period, but no sooner than `minMs` after it
 * began: the collector judges a site on post-GC profiles taken in precise
 * mode, and needs about 16 of them to confirm a leak (12 for the rule, 3
 * consecutive verdicts, one for ingest); a period ended after 3, when one
 * warm-up suspicion cleared, used to leave a real leak unconfirmed behind
 * the cool-down. After a period ends at its bound, none starts for
 * `cooldownMs`: a collector can never keep a worker in precise mode more
 * than maxMs of every maxMs + cooldownMs. After a period the collector
 * ended, the cool-down lasts as long as the period did (at most
 * cooldownMs): short suspicions cost at most half the time.
 * `always` is on from start with no bound (an operator's choice);
 * `never` ignores the collector. The one timer is unref'd.
 */
export class PreciseMode {
  private on = false;
  private sinceMs = 0;
  private untilMs = 0;
  private cooldownUntilMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private inliningOff = false;
  private doneMs = 0;
  /** Set while a clearing directive waits for minMs: why the period will end. */
  private endReason: string | undefined;
  private readonly now: () => number;
  readonly stats = { activations: 0, switchTimeUs: 0, refused: 0 };

  constructor(
    private readonly opts: PreciseOptions,
    private readonly onChange: (on: boolean) => void = () => {},
  ) {
    this.now = opts.now ?? Date.now;
  }

  get active(): boolean {
    return this.on;
  }

  /** Whether inlining is off now (precise mode on, with disableInlining). */
  get inliningDisabled(): boolean {
    return this.inliningOff;
  }

  /** At agent start: `always` turns precise mode on for good. */
  start(): void {
    if (this.opts.setting === 'always') this.turnOn(Infinity, 'HEAPWATCH_PRECISE=always');
  }

  /** A directive from the collector's ingest response. */
  direct(d: DecodedDirective): void {
    if (this.opts.setting !== 'auto') return;
    const now = this.now();
    if (!d.precise) {
      if (!this.on) return;
      const reason = `collector: ${d.reason || 'suspicion cleared'}`;
      if (now - this.sinceMs >= this.opts.minMs) {
        this.turnOff(reason);
        return;
      }
      // Not yet: end at minMs unless a later directive renews it.
      this.untilMs = Math.min(this.untilMs, this.sinceMs + this.opts.minMs);
      this.endReason = reason;
      this.arm();
      return;
    }
    const forMs = d.preciseForMs > 0 ? Math.min(d.preciseForMs, this.opts.maxMs) : this.opts.maxMs;
    if (this.on) {
      this.untilMs = Math.max(this.untilMs, Math.min(this.sinceMs + this.opts.maxMs, now + forMs));
      this.endReason = undefined;
      this.arm();
      return;
    }
    if (now < this.cooldownUntilMs) {
      this.stats.refused++;
      this.opts.log.debug(`precise mode requested (${d.reason}) during the cool-down; stays off for ${this.cooldownUntilMs - now} ms`);
      return;
    }
    this.turnOn(now + forMs, d.reason);
  }

  /** Agent stop: back to default, no cool-down bookkeeping needed. */
  stop(): void {
    if (this.on) this.turnOff('agent stopped');
  }

  counters(): PreciseStats {
    return { ...this.stats, timeMs: this.doneMs + (this.on ? Math.max(0, this.now() - this.sinceMs) : 0) };
  }

  private turnOn(untilMs: number, reason: string): void {
    this.on = true;
    this.sinceMs = this.now();
    this.untilMs = untilMs;
    this.endReason = undefined;
    this.stats.activations++;
    if (this.opts.disableInlining) this.inliningOff = this.switchInlining(false);
    this.arm();
    this.opts.log.info(`precise mode on (${reason || 'collector'})${Number.isFinite(untilMs) ? ` for up to ${Math.round((untilMs - this.sinceMs) / 1000)} s` : ''}`);
    this.notify(true);
  }

  /** `cleared`: the collector ended the period (else its bound did). */
  private turnOff(reason: string, cleared = true): void {
    const now = this.now();
    const lasted = Math.max(0, now - this.sinceMs);
    this.on = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.doneMs += lasted;
    this.cooldownUntilMs = now + (cleared ? Math.min(this.opts.cooldownMs, lasted) : this.opts.cooldownMs);
    if (this.inliningOff) {
      this.switchInlining(true);
      this.inliningOff = false;
    }
    this.opts.log.info(`precise mode off (${reason}) after ${Math.round((now - this.sinceMs) / 1000)} s`);
    this.notify(false);
  }

  /** Sets V8's inlining and times the switch; true if it now is as asked. */
  private switchInlining(on: boolean): boolean {
    const t0 = process.hrtime.bigint();
    try {
      const r = (this.opts.switchInlining ?? setInlining)(on);
      if (!r.deoptimized) this.opts.log.info(`inlining ${on ? 'on' : 'off'} for code compiled from now on only: ${r.reason ?? ''}`);
      return true;
    } catch (e) {
      this.opts.log.warn(`could not turn inlining ${on ? 'on' : 'off'}: ${String(e)}`);
      return false;
    } finally {
      this.stats.switchTimeUs += Number((process.hrtime.bigint() - t0) / 1000n);
    }
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!Number.isFinite(this.untilMs)) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.on) return;
      if (this.endReason) this.turnOff(this.endReason);
      else this.turnOff(`bound of ${Math.round((this.untilMs - this.sinceMs) / 1000)} s reached`, false);
    }, Math.max(0, this.untilMs - this.now()));
    this.timer.unref();
  }

  private notify(on: boolean): void {
    try {
      this.onChange(on);
    } catch {
      // the agent's callback guards itself
    }
  }
}
