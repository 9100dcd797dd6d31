import type { AgentStats, DecodedDirective, IngestRequest } from '@heapwatch/proto/messages';
import { Backoff, MAX_BACKOFF_MS } from './backoff';
import { GrpcStatus } from './grpc-status';
import type { Logger } from './logger';
import { BoundedQueue, type QueuedItem } from './queue';
import type { Transport } from './transport';

/** Retrying cannot help: the collector rejected this profile or this agent. */
const PERMANENT_CODES: ReadonlySet<number> = new Set([
  GrpcStatus.INVALID_ARGUMENT,
  GrpcStatus.UNAUTHENTICATED,
  GrpcStatus.PERMISSION_DENIED,
]);

export interface PendingProfile extends QueuedItem {
  /** Everything but the agent stats, which are filled in at send time. */
  request: Omit<IngestRequest, 'agent'>;
}

export interface Counters {
  profilesSent: number;
  profilesDropped: number;
  samplingTimeUs: number;
  queueLength: number;
  queueBytes: number;
  sendFailures: number;
  /** Major GCs the agent forced (GC assist, precise mode only) and their pause time. */
  forcedGcs: number;
  forcedGcTimeUs: number;
  /** GCs GC assist had due but did not force: over its pause cap or its time budget. Local only: not sent. */
  forcedGcsSkipped: number;
  /** Precise mode: times turned on, time spent in it, and the main-thread time of its switches. */
  preciseActivations: number;
  preciseTimeMs: number;
  preciseSwitchTimeUs: number;
  /** Major GCs noticed, and the post-GC captures taken (read + encode, at most a few an interval). Local only: not sent. */
  majorGcs: number;
  postGcCaptures: number;
  /** Holder captures (docs/detector.md#holders): taken, skipped (budget, cool-down), failed, and the main-thread pause of those taken. Local only: not sent. */
  holderCaptures: number;
  holderCapturesSkipped: number;
  holderCapturesFailed: number;
  holderPauseMs: number;
}

/** The counters that other parts of the agent keep. */
export type ModeCounters = Omit<Counters, 'profilesSent' | 'profilesDropped' | 'samplingTimeUs' | 'queueLength' | 'queueBytes' | 'sendFailures'>;

const NO_MODE_COUNTERS: ModeCounters = {
  forcedGcs: 0,
  forcedGcTimeUs: 0,
  forcedGcsSkipped: 0,
  preciseActivations: 0,
  preciseTimeMs: 0,
  preciseSwitchTimeUs: 0,
  majorGcs: 0,
  postGcCaptures: 0,
  holderCaptures: 0,
  holderCapturesSkipped: 0,
  holderCapturesFailed: 0,
  holderPauseMs: 0,
};

/**
 * Owns the queue and sends its head, one RPC at a time. A profile leaves the
 * queue only when the collector acknowledges it (or rejects it for good).
 * Retryable failures back off with full jitter; the loop re-arms itself with
 * unref'd timers and never rejects.
 */
export class Sender {
  readonly queue: BoundedQueue<PendingProfile>;
  private inFlight: Promise<boolean> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** The collector's retry hint from the last failure, which replaces the next backoff delay. */
  private pushbackMs: number | undefined;
  private draining = 0;
  private closed = false;
  profilesSent = 0;
  sendFailures = 0;
  samplingTimeUs = 0;

  constructor(
    private readonly transport: Transport,
    private readonly backoff: Backoff,
    limits: { maxItems: number; maxBytes: number },
    private readonly timeoutMs: number,
    private readonly log: Logger,
    private readonly modeCounters: () => ModeCounters = () => NO_MODE_COUNTERS,
    /** Called with each directive an acknowledgement carries. */
    private readonly onDirective: (d: DecodedDirective) => void = () => {},
  ) {
    this.queue = new BoundedQueue<PendingProfile>(limits, (reason) => this.log.warn(`dropping profiles: ${reason}`));
  }

  counters(): Counters {
    return {
      profilesSent: this.profilesSent,
      profilesDropped: this.queue.dropped,
      samplingTimeUs: this.samplingTimeUs,
      queueLength: this.queue.length,
      queueBytes: this.queue.bytes,
      sendFailures: this.sendFailures,
      ...this.modeCounters(),
    };
  }

  enqueue(p: PendingProfile): void {
    this.queue.push(p);
    this.pump();
  }

  /** Background sending: starts the next RPC unless one is running, a retry is pending, or a drain owns the queue. */
  pump(): void {
    if (this.closed || this.inFlight || this.retryTimer || this.draining > 0 || this.queue.length === 0) return;
    this.sendHead(this.timeoutMs)
      .then((retryable) => {
        if (this.draining > 0 || this.closed) return;
        if (retryable) this.scheduleRetry();
        else this.pump();
      })
      .catch((e: unknown) => this.log.debug(`send loop: ${String(e)}`));
  }

  /**
   * Sends the queue now, ignoring any backoff, until it is empty, a retryable
   * failure occurs, or the deadline passes. Never rejects.
   */
  async drain(deadlineMs: number): Promise<void> {
    this.draining++;
    try {
      if (this.retryTimer) {
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
      }
      while (!this.closed) {
        const remaining = deadlineMs - Date.now();
        if (remaining <= 0) break;
        if (this.inFlight) {
          await withTimeout(this.inFlight, remaining);
          continue;
        }
        if (this.queue.length === 0) break;
        const retryable = await this.sendHead(Math.min(this.timeoutMs, remaining));
        if (retryable) break;
      }
    } catch (e) {
      this.log.debug(`drain: ${String(e)}`);
    } finally {
      this.draining--;
      if (this.queue.length > 0 && !this.inFlight && !this.retryTimer) this.scheduleRetry();
    }
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** Sends the queue head once. Resolves true when the failure is retryable. */
  private sendHead(timeoutMs: number): Promise<boolean> {
    const item = this.queue.peek();
    if (!item) return Promise.resolve(false);
    // The counters as they stand at send time, head of the queue included.
    // The local-only counters are for stats(): not in AgentStats.
    const {
      majorGcs: _majorGcs,
      postGcCaptures: _postGcCaptures,
      forcedGcsSkipped: _skipped,
      holderCaptures: _holders,
      holderCapturesSkipped: _holdersSkipped,
      holderCapturesFailed: _holdersFailed,
      holderPauseMs: _holderPause,
      ...sent
    } = this.counters();
    const agent: AgentStats = sent;
    const p = this.transport
      .send({ ...item.request, agent }, timeoutMs)
      .then((r) => {
        if (r.ok) {
          if (this.queue.remove(item)) this.profilesSent++;
          this.backoff.reset();
          this.pushbackMs = undefined;
          this.queue.endBurst();
          this.log.debug(`profile ${String(item.request.profileId)} acknowledged (stored=${String(r.stored)})`);
          if (r.directive) {
            try {
              this.onDirective(r.directive);
            } catch (e) {
              this.log.debug(`directive: ${String(e)}`);
            }
          }
          return false;
        }
        if (r.code !== undefined && PERMANENT_CODES.has(r.code)) {
          if (this.queue.remove(item)) {
            this.queue.countDrop(1, `collector rejected a profile (code ${r.code}: ${r.details ?? ''}); retrying cannot help`);
          }
          return false;
        }
        this.sendFailures++;
        this.pushbackMs = r.retryAfterMs;
        this.log.debug(`send failed (code ${String(r.code)}: ${r.details ?? ''})`);
        return true;
      })
      .catch((e: unknown) => {
        this.sendFailures++;
        this.log.debug(`send failed: ${String(e)}`);
        return true;
      })
      .finally(() => {
        if (this.inFlight === p) this.inFlight = undefined;
      });
    this.inFlight = p;
    return p;
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    if (this.backoff.attempts === 0 && this.sendFailures > 0) {
      this.log.warn('collector unreachable; queueing profiles and retrying with backoff (logged once per outage)');
    }
    // A collector that sheds load says when to come back; it has spread its
    // hints already, so it is followed as given (within the backoff's bound).
    const backoffDelay = this.backoff.nextDelayMs();
    const delay = this.pushbackMs !== undefined ? Math.min(this.pushbackMs, MAX_BACKOFF_MS) : backoffDelay;
    this.pushbackMs = undefined;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, delay);
    this.retryTimer.unref();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise<T | undefined>((resolve) => {
    const t = setTimeout(() => resolve(undefined), ms);
    t.unref();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      () => {
        clearTimeout(t);
        resolve(undefined);
      },
    );
  });
}
