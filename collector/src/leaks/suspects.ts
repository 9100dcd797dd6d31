/**
 * Which services are suspected of leaking, for the directive the gRPC ingest
 * response carries back to their agents (AgentDirective in ingest.proto).
 *
 * A service is suspect while its newest stored leak report has a site or a
 * process gauge (heap, external) with a positive verdict that has not
 * cleared: an alert entry that is flagged, or pending (it counts positive
 * steps toward flagging, or rose and waits for its minimum growth time:
 * alert.ts isPending); or a site or gauge whose series rises before major
 * GCs can confirm it (the report's `suspects` and `processSuspects`,
 * detect.ts SiteDecision.suspect and ProcessDecision.suspect): in the
 * default mode a quiet worker may run too few major GCs for any positive
 * verdict, and precise mode's GC assist is what brings them. Its agents are
 * then asked to run in precise mode (inlining off, GC assist), so that a
 * leak first seen under inlining is confirmed, or charged to the right
 * function, by profiles that can tell a small function from its caller, and
 * off-heap growth, which the sampler cannot see in either mode, is judged
 * on post-GC points and can be confirmed (and its holders captured,
 * holder-requests.ts).
 *
 * The report is the one any collector wrote (findings table), so every
 * collector answers the same. Lookups never hold up an acknowledgement: a
 * service not in the cache, or whose entry is older than `ttlMs`, is looked
 * up in the background and answered from the cache (or with no directive,
 * which leaves the agent as it is) meanwhile. Bounded: at most `maxServices`
 * entries (the least recently refreshed go first) and `maxLookups` lookups
 * in flight; both overflows are counted.
 */
import { isPending, type AlertState } from './alert';

export interface Directive {
  precise: boolean;
  preciseForMs: number;
  reason: string;
}

export interface Suspicion {
  suspect: boolean;
  reason: string;
  /**
   * A finding is confirmed: a flagged site, or a flagged heap or external
   * process finding (off-heap included). What a holder capture is asked on
   * (holder-requests.ts).
   */
  confirmed: boolean;
}

export interface SuspectOptions {
  /** The newest stored report of a service as JSON, or null (leaks/index.ts latestStoredReport). */
  read: (service: string) => Promise<string | null>;
  ttlMs: number;
  maxServices: number;
  maxLookups: number;
  /** How long an agent stays in precise mode unless a later response renews it (it caps this itself). */
  preciseForMs: number;
  now: () => number;
  log?: { debug(msg: string): void };
}

export const DEFAULT_SUSPECTS: Omit<SuspectOptions, 'read'> = {
  ttlMs: 30_000,
  maxServices: 10_000,
  maxLookups: 8,
  preciseForMs: 10 * 60_000,
  now: Date.now,
};

/** Suspicion from a stored report (its JSON, as findings holds it). */
export function suspicionOf(raw: string | null): Suspicion {
  if (!raw) return { suspect: false, reason: 'no leak report yet', confirmed: false };
  let report: { leaks?: Array<{ function?: string }>; process?: unknown[]; alertState?: AlertState; suspects?: string[]; processSuspects?: string[] };
  try {
    report = JSON.parse(raw) as typeof report;
  } catch {
    return { suspect: false, reason: 'unreadable leak report', confirmed: false };
  }
  const confirmed = (report.leaks?.length ?? 0) > 0 || (report.process?.length ?? 0) > 0;
  const entries = Object.entries(report.alertState?.entries ?? {}).filter(([, e]) => e.flagged || isPending(e));
  const unconfirmed = report.suspects?.length ?? 0;
  const gauges = report.processSuspects ?? [];
  if (entries.length === 0 && unconfirmed === 0 && gauges.length === 0) return { suspect: false, reason: 'nothing rising', confirmed };
  const flagged = (report.leaks ?? []).map((l) => l.function || '(anonymous)');
  const rising = entries.filter(([key, e]) => key.startsWith('site:') && !e.flagged).length;
  const heap = entries.some(([key]) => key.startsWith('heap:'));
  const external = entries.some(([key]) => key.startsWith('external:'));
  const parts = [
    ...(flagged.length ? [`leak flagged at ${flagged.slice(0, 3).join(', ')}${flagged.length > 3 ? ', ...' : ''}`] : []),
    ...(rising ? [`${rising} site(s) rising`] : []),
    ...(heap ? ['heap not returning to its baseline'] : []),
    ...(external ? ['off-heap memory not returning to its baseline'] : []),
    ...(unconfirmed ? [`${unconfirmed} site(s) rising before any major GC confirms it`] : []),
    ...(gauges.length ? [`${[...new Set(gauges.map((k) => k.slice(0, k.indexOf(':'))))].join(' and ')} rising before any major GC confirms it`] : []),
  ];
  return { suspect: true, reason: parts.join('; '), confirmed };
}

interface Entry {
  directive: Directive;
  confirmed: boolean;
  atMs: number;
}

export class SuspectDirectives {
  private readonly opts: SuspectOptions;
  private readonly cache = new Map<string, Entry>();
  private readonly inFlight = new Set<string>();
  readonly counters = { lookups: 0, lookupFailures: 0, lookupsSkipped: 0, evicted: 0 };

  constructor(opts: Partial<SuspectOptions> & Pick<SuspectOptions, 'read'>) {
    this.opts = { ...DEFAULT_SUSPECTS, ...opts };
  }

  /** The directive for an agent of `service` now: cached, or undefined until the first lookup is done. */
  directiveFor(service: string): Directive | undefined {
    const e = this.cache.get(service);
    if (!e || this.opts.now() - e.atMs >= this.opts.ttlMs) this.refresh(service);
    return e?.directive;
  }

  /** Whether the service's cached report has a confirmed finding (false until the first lookup is done). */
  confirmed(service: string): boolean {
    return this.cache.get(service)?.confirmed ?? false;
  }

  get size(): number {
    return this.cache.size;
  }

  private refresh(service: string): void {
    if (this.inFlight.has(service)) return;
    if (this.inFlight.size >= this.opts.maxLookups) {
      this.counters.lookupsSkipped++;
      return;
    }
    this.inFlight.add(service);
    this.counters.lookups++;
    this.opts
      .read(service)
      .then((raw) => {
        const s = suspicionOf(raw);
        this.set(service, { precise: s.suspect, preciseForMs: s.suspect ? this.opts.preciseForMs : 0, reason: s.reason }, s.confirmed);
      })
      .catch((err: unknown) => {
        // Keep the last answer (if any) until a lookup works again.
        this.counters.lookupFailures++;
        this.opts.log?.debug(`suspects: looking up ${JSON.stringify(service)} failed: ${(err as Error)?.message ?? String(err)}`);
      })
      .finally(() => this.inFlight.delete(service));
  }

  private set(service: string, directive: Directive, confirmed: boolean): void {
    this.cache.delete(service); // re-inserted last: Map order is refresh order
    this.cache.set(service, { directive, confirmed, atMs: this.opts.now() });
    while (this.cache.size > this.opts.maxServices) {
      this.cache.delete(this.cache.keys().next().value!);
      this.counters.evicted++;
    }
  }
}
