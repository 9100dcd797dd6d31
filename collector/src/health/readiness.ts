/**
 * Readiness: whether this collector can take profiles now, and if not,
 * why. Liveness (`/healthz`, gRPC health) says the process runs; readiness
 * (`/readyz`, `heapwatch_ready`) says its store takes writes. Not ready when:
 *
 * - the store does not answer a query within `pingTimeoutMs`;
 * - the last `failedInsertsThreshold` inserts all failed (a read-only or
 *   full data directory, a ClickHouse that refuses writes) and a probe
 *   write made now fails too: the probe is what brings a collector back
 *   once the store heals, since a collector taken out of rotation gets no
 *   more profiles to try;
 * - rows waiting for the store exceed `behindRatio` of the ingest buffer
 *   (the store is behind; past the buffer ingest is refused).
 *
 * A check costs a `SELECT 1` (and a probe insert while inserts fail); its
 * answer is reused for `cacheMs`, so probes and scrapes cannot pile up.
 */
import type { InsertHealth } from './insert-health';

export interface ReadinessDeps {
  ping(): Promise<void>;
  /** A small real write; throws when the store refuses writes. */
  probeWrite(): Promise<void>;
  inserts: InsertHealth;
  pendingRows(): number;
  maxPendingRows: number;
}

export interface ReadinessOptions {
  failedInsertsThreshold: number;
  behindRatio: number;
  pingTimeoutMs: number;
  cacheMs: number;
}

export const DEFAULT_READINESS: ReadinessOptions = { failedInsertsThreshold: 3, behindRatio: 0.8, pingTimeoutMs: 5000, cacheMs: 1000 };

export interface ReadinessState {
  ready: boolean;
  /** Why not, one line each; empty when ready. */
  reasons: string[];
  /** Short machine names of the reasons, for /metrics. */
  codes: ('store_unreachable' | 'inserts_failing' | 'store_behind')[];
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export class Readiness {
  private readonly opts: ReadinessOptions;
  private last: { at: number; state: Promise<ReadinessState> } | undefined;

  constructor(
    private readonly deps: ReadinessDeps,
    opts: Partial<ReadinessOptions> = {},
  ) {
    this.opts = { ...DEFAULT_READINESS, ...opts };
  }

  check(): Promise<ReadinessState> {
    const now = Date.now();
    if (this.last && now - this.last.at < this.opts.cacheMs) return this.last.state;
    const state = this.evaluate();
    this.last = { at: now, state };
    return state;
  }

  private async evaluate(): Promise<ReadinessState> {
    const s: ReadinessState = { ready: true, reasons: [], codes: [] };
    const fail = (code: ReadinessState['codes'][number], reason: string): void => {
      s.ready = false;
      s.codes.push(code);
      s.reasons.push(reason);
    };
    try {
      await withTimeout(this.deps.ping(), this.opts.pingTimeoutMs, 'the store');
    } catch (err) {
      fail('store_unreachable', `the store does not answer: ${(err as Error).message}`);
    }
    const ins = this.deps.inserts;
    if (ins.consecutiveFailures >= this.opts.failedInsertsThreshold) {
      try {
        await withTimeout(this.deps.probeWrite(), this.opts.pingTimeoutMs, 'a probe write');
        ins.recovered();
      } catch (err) {
        fail('inserts_failing', `the last ${ins.consecutiveFailures} inserts failed (${ins.lastError}), and a probe write too: ${(err as Error).message}`);
      }
    }
    const pending = this.deps.pendingRows();
    if (pending > this.opts.behindRatio * this.deps.maxPendingRows) {
      fail('store_behind', `the store is behind: ${pending} rows waiting, of at most ${this.deps.maxPendingRows}`);
    }
    return s;
  }
}
