/**
 * Which instance of a service is asked for a holder capture (a bounded heap
 * snapshot, docs/detector.md#holders), through AgentDirective.holders.
 *
 * A service is asked only while its newest report has a confirmed finding
 * (a flagged site, or a heap or external process finding: suspects.ts
 * `confirmed`), and one instance at a time: the first whose profile is
 * acknowledged once the service is eligible. That instance is asked again
 * with each acknowledgement, with the same capture id, until its answer
 * arrives (IngestRequest.holders) or `answerTimeoutMs` passes (it may have
 * exited); then none is asked for `cooldownMs`. So a service gets at most
 * one capture per cool-down from this collector, whatever its instance
 * count. Bounded: at most `maxServices` services remembered (the oldest
 * asked go first, counted).
 */
import { randomUUID } from 'node:crypto';

export interface HolderRequestOptions {
  cooldownMs: number;
  answerTimeoutMs: number;
  maxServices: number;
  now: () => number;
}

export const DEFAULT_HOLDER_REQUESTS: HolderRequestOptions = {
  cooldownMs: 60 * 60_000,
  answerTimeoutMs: 10 * 60_000,
  maxServices: 10_000,
  now: Date.now,
};

interface Asked {
  instance: string;
  captureId: string;
  askedAtMs: number;
  answeredAtMs: number | undefined;
}

export class HolderRequests {
  private readonly opts: HolderRequestOptions;
  private readonly byService = new Map<string, Asked>();
  readonly counters = { asked: 0, answered: 0, timedOut: 0, evicted: 0 };

  constructor(opts: Partial<HolderRequestOptions> = {}) {
    this.opts = { ...DEFAULT_HOLDER_REQUESTS, ...opts };
  }

  /** The capture to ask of `instance` of `service` now, if any; `confirmed`: the service has a confirmed finding. */
  requestFor(service: string, instance: string, confirmed: boolean): { captureId: string } | undefined {
    const now = this.opts.now();
    const a = this.byService.get(service);
    if (a && a.answeredAtMs === undefined) {
      if (now - a.askedAtMs < this.opts.answerTimeoutMs) return a.instance === instance ? { captureId: a.captureId } : undefined;
      a.answeredAtMs = now;
      this.counters.timedOut++;
    }
    if (a && now - a.answeredAtMs! < this.opts.cooldownMs) return undefined;
    if (!confirmed) return undefined;
    const next: Asked = { instance, captureId: randomUUID(), askedAtMs: now, answeredAtMs: undefined };
    this.byService.delete(service);
    this.byService.set(service, next);
    this.counters.asked++;
    while (this.byService.size > this.opts.maxServices) {
      this.byService.delete(this.byService.keys().next().value!);
      this.counters.evicted++;
    }
    return { captureId: next.captureId };
  }

  /** An answer arrived: the cool-down starts. Answers to ids not asked (another collector's) are ignored. */
  answered(service: string, captureId: string): void {
    const a = this.byService.get(service);
    if (!a || a.captureId !== captureId || a.answeredAtMs !== undefined) return;
    a.answeredAtMs = this.opts.now();
    this.counters.answered++;
  }
}
