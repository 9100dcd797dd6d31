/**
 * Admission control for ingest: how many requests, and how many of their
 * bytes, the collector works on at once, and whether a new one can finish
 * before its caller's deadline. Past any of these a request is refused at
 * once with RESOURCE_EXHAUSTED and a retry hint
 * (`grpc-retry-pushback-ms`, from gRPC's retry design A6), instead of
 * joining a queue that grows until every caller's deadline has passed.
 *
 * Without it, 2,000 agents at 5 s (four times what one collector stores)
 * had every request decoded and queued: acknowledgements fell from ~90/s to
 * ~4/s, 98 % of calls ended in DEADLINE_EXCEEDED, and the collector spent
 * its time on profiles whose callers had given up.
 *
 * Whether it can finish: by Little's law a request admitted now waits about
 * (requests in flight) / (requests completed per second, recently). When
 * that is past 80 % of the time its caller has left, it would only take
 * capacity from requests that can still make it. With no completion in the
 * last two windows to go by (start-up, or after a pause), only
 * minInFlight (16) are admitted until one completes, as TCP starts slow: a
 * collector started under a fleet's full load used to admit its 128 at
 * once, whose first inserts (a cold engine, every service's stacks) took
 * longer than their deadline; none completed, so there was never a rate to
 * go by, and it admitted the next 128 to the same fate. The fixed bounds
 * stay as a ceiling on memory in any case.
 *
 * The hint is the time the work in flight takes to drain at the rate the
 * collector has recently completed requests, stretched by how much more is
 * offered than completed (shed / completed recently: when four times the
 * capacity is offered, refused callers wait about four drains, so that their
 * retries do not become most of the traffic), with jitter so that shed
 * agents do not come back together.
 */

export interface AdmissionOptions {
  /** Ingest requests worked on at once; more are refused. */
  maxInFlightRequests: number;
  /** pprof_gzip bytes of those requests together; more are refused (one request alone is always admitted). */
  maxInFlightBytes: number;
  /**
   * The longest an admitted request holds capacity, whatever its deadline
   * (or without one): past it, it is answered and released, so that a
   * caller that sends headers and never its body cannot hold a slot for ever.
   */
  maxHoldMs: number;
  /**
   * Admitted whatever the estimate says: a small fleet on a slow machine is
   * served slowly rather than refused, and there is always a completion rate
   * to go by. Also all that is admitted while no request has completed
   * recently (start-up). The estimate is for congestion, which is many
   * requests at once.
   */
  minInFlight: number;
}

export const DEFAULT_ADMISSION: AdmissionOptions = {
  maxInFlightRequests: 128,
  maxInFlightBytes: 128 << 20,
  maxHoldMs: 60_000,
  minInFlight: 16,
};

/** A request is admitted when its expected wait is within this share of its caller's time left. */
const DEADLINE_SHARE = 0.8;
/** Retry hints stay within these bounds. */
const MIN_PUSHBACK_MS = 250;
const MAX_PUSHBACK_MS = 30_000;
const UNMEASURED_PUSHBACK_MS = 1000;
/** Completions are counted over this window for the drain rate. */
const RATE_WINDOW_MS = 2000;

/** Why a request was refused, and when its caller should try again. */
export interface Refusal {
  refused: string;
  /** The retry hint: gRPC's `grpc-retry-pushback-ms`, HTTP's `Retry-After`. */
  retryAfterMs: number;
}

export function isRefusal(x: Ticket | Refusal | undefined): x is Refusal {
  return x !== undefined && (x as Refusal).refused !== undefined;
}

/**
 * An admitted request's hold on the collector's ingest capacity, whatever
 * protocol it came by (gRPC, Pyroscope's HTTP ingest, Connect, OTLP): one
 * request, and the bytes `addBytes` adds. `leave` gives all of it back and
 * may be called any number of times; only the first counts, so every way a
 * request can end (answered, cancelled, past its deadline, a timer) may call
 * it without counting twice.
 */
export class Ticket {
  private bytes = 0;
  private left = false;

  /** @internal (Admission.enter) */
  constructor(private readonly owner: Admission) {}

  get done(): boolean {
    return this.left;
  }

  /**
   * Adds `bytes` of the request (its body, once known) to the bytes in
   * flight, or returns why not; refused, the ticket must still `leave`.
   */
  addBytes(bytes: number): Refusal | undefined {
    if (this.left) return undefined;
    const refused = this.owner.takeBytes(bytes);
    if (refused === undefined) this.bytes += bytes;
    return refused;
  }

  /** `completed`: answered in time (stored, or refused for what it held), not dropped, failed or timed out. */
  leave(completed: boolean): void {
    if (this.left) return;
    this.left = true;
    this.owner.giveBack(this.bytes, completed);
    this.bytes = 0;
  }
}

export class Admission {
  private requests = 0;
  private bytes = 0;
  /** Requests refused, for GET /metrics. */
  shed = 0;
  /** Requests admitted, and those that left without completing (cancelled, past their deadline, failed). */
  admitted = 0;
  abandoned = 0;
  private completedNow = 0;
  private completedBefore = 0;
  private shedNow = 0;
  private shedBefore = 0;
  private windowStart = Date.now();

  constructor(
    readonly opts: AdmissionOptions,
    private readonly random: () => number = Math.random,
  ) {}

  get inFlightRequests(): number {
    return this.requests;
  }

  get inFlightBytes(): number {
    return this.bytes;
  }

  /**
   * Admits a request whose caller waits at most `timeLeftMs`, or says why
   * not and when to retry. Asked when the request's headers arrive, before
   * its body is read: a request refused after its body had arrived would
   * already have cost the collector its bandwidth, and while thousands of
   * bodies arrive side by side none arrives in time. A ticket must `leave`.
   */
  enter(timeLeftMs = Infinity): Ticket | Refusal {
    if (this.requests >= this.opts.maxInFlightRequests) {
      return this.refuse(`collector is at capacity: ${this.requests} requests in flight (maxInFlightRequests ${this.opts.maxInFlightRequests})`);
    }
    if (this.requests >= this.opts.minInFlight) {
      if (!this.measured()) {
        return this.refuse(`collector is warming up: ${this.requests} requests in flight and none completed in the last ${(2 * RATE_WINDOW_MS) / 1000} s`);
      }
      const wait = this.expectedWaitMs();
      if (wait > DEADLINE_SHARE * timeLeftMs) {
        return this.refuse(`collector is behind: a request now would wait about ${Math.round(wait)} ms, past its deadline (${Math.round(timeLeftMs)} ms left)`);
      }
    }
    this.requests++;
    this.admitted++;
    return new Ticket(this);
  }

  /** Used by Ticket.addBytes. One request alone is always admitted, whatever its size. */
  takeBytes(bytes: number): Refusal | undefined {
    if (this.requests > 1 && this.bytes + bytes > this.opts.maxInFlightBytes) {
      return this.refuse(`collector is at capacity: ${this.bytes} bytes in flight (maxInFlightBytes ${this.opts.maxInFlightBytes})`);
    }
    this.bytes += bytes;
    return undefined;
  }

  /** Used by Ticket.leave. */
  giveBack(bytes: number, completed: boolean): void {
    this.requests--;
    this.bytes -= bytes;
    this.roll();
    if (completed) this.completedNow++;
    else this.abandoned++;
  }

  /** Counters for GET /metrics. */
  metrics(): Record<string, number> {
    return {
      requests_in_flight: this.requests,
      request_bytes_in_flight: this.bytes,
      requests_shed_total: this.shed,
      requests_admitted_total: this.admitted,
      requests_abandoned_total: this.abandoned,
    };
  }

  /** A refusal for a reason found later (the store is behind), counted as shed, with the retry hint. */
  refusal(why: string): Refusal {
    return this.refuse(why);
  }

  private refuse(why: string): Refusal {
    this.shed++;
    this.roll();
    this.shedNow++;
    const retryAfterMs = this.pushbackMs();
    return { refused: `${why}; retry in ${retryAfterMs} ms`, retryAfterMs };
  }

  /** Whether a request completed recently, so that there is a rate to go by. */
  private measured(): boolean {
    this.roll();
    return this.completedNow + this.completedBefore > 0;
  }

  /** Little's law: requests in flight over the recent completion rate. */
  private expectedWaitMs(): number {
    this.roll();
    const completed = this.completedNow + this.completedBefore;
    if (completed === 0) return 0;
    const elapsed = Math.max(1, Date.now() - this.windowStart) + (this.completedBefore > 0 ? RATE_WINDOW_MS : 0);
    return (this.requests * elapsed) / completed;
  }

  /** How long a refused caller should wait (see the top of the file). */
  private pushbackMs(): number {
    const wait = this.expectedWaitMs();
    const completed = this.completedNow + this.completedBefore;
    // Nothing completed recently: nothing to go by, so a second, to see again.
    if (completed === 0) return Math.round(UNMEASURED_PUSHBACK_MS * (0.5 + this.random()));
    const overload = 1 + (this.shedNow + this.shedBefore) / completed;
    const drain = wait;
    const jittered = drain * overload * (0.5 + this.random());
    return Math.round(Math.min(MAX_PUSHBACK_MS, Math.max(MIN_PUSHBACK_MS, jittered)));
  }

  /** Two windows of counts: the current one and the one before. */
  private roll(): void {
    const now = Date.now();
    if (now - this.windowStart < RATE_WINDOW_MS) return;
    const recent = now - this.windowStart < 2 * RATE_WINDOW_MS;
    this.completedBefore = recent ? this.completedNow : 0;
    this.shedBefore = recent ? this.shedNow : 0;
    this.completedNow = 0;
    this.shedNow = 0;
    this.windowStart = now;
  }
}
