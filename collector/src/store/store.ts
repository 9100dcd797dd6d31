/**
 * The store boundary: everything the collector writes and reads, in its own
 * terms. Ingest, the query side, the leak detector and the HTTP API depend
 * on this interface; only its implementation (clickhouse.ts) knows SQL
 * and the table layouts.
 *
 * Tenants: every row carries the tenant of the token that wrote it. The
 * reads of a service exist only on a `TenantStore`, a view bound to one
 * tenant (`ProfileStore.forTenant`), whose every query is filtered by it: a
 * caller cannot ask for a service without having chosen whose.
 */
import type { Frame } from '../model/site';
import type { HolderCaptureRow } from './holder-captures';
import type { ProfileRow } from './profiles-insert';

export type { HolderCaptureRow, StoredHolder } from './holder-captures';

export type { ProfileFields, ProfileRow, StackValues } from './profiles-insert';

/** A stack the store does not have yet. */
export interface StackRow {
  tenant: string;
  service: string;
  /** The UInt64 stack id, decimal. */
  id: string;
  /** Leaf first. */
  frames: Frame[];
  lastSeenMs: number;
}

/** Identifies a stored profile (a retry carries the same). */
export interface ProfileKey {
  tenant: string;
  service: string;
  instance: string;
  profileId: string;
}

export interface ServiceSummary {
  service: string;
  instances: number;
  profiles: number;
  firstSeen: string;
  lastSeen: string;
}

/**
 * The label name under which reads present the service (Pyroscope's name
 * for it): labelValues(SERVICE_LABEL) lists services, and grouping by it
 * groups by service; an agent's own label of that name is shadowed.
 */
export const SERVICE_LABEL = 'service_name';

/** Profiles of one service (or of every service) in a time range whose labels match. */
export interface ProfileSelection {
  /** Absent: every service. */
  service?: string;
  fromMs: number;
  toMs: number;
  /** Every label must match exactly. */
  labels: Record<string, string>;
}

export interface ProfileQuery extends ProfileSelection {
  service: string;
}

/** `totalSeries`: the selection, cut into steps and grouped. */
export interface SeriesQuery extends ProfileSelection {
  stepMs: number;
  /** Label names to group by; `service_name` is the service. */
  groupBy: readonly string[];
  /** Most points returned. */
  limit: number;
}

export interface SeriesPoint {
  /** The value of each `groupBy` label, in order ('' where a profile has none). */
  group: string[];
  /** Start of the step, Unix ms. */
  timeMs: number;
  bytes: number;
  objects: number;
}

/** A distinct label set of stored profiles: the service and the agent's labels. */
export interface LabelSet {
  service: string;
  labels: Record<string, string>;
}

export interface MergedStack {
  functions: string[];
  files: string[];
  lines: number[];
  objects: number;
  bytes: number;
}

export interface MergedProfile {
  query: ProfileQuery;
  /** Snapshots that went into the merge, over all instances. */
  profiles: number;
  /** Of those, how many were read pre-summed from the hourly rollup (the rest raw). */
  profilesFromRollup: number;
  instances: number;
  stacks: MergedStack[];
}

/** The job counters of one profile (IngestRequest.jobs), cumulative per job type. */
export interface ProfileJobs {
  types: { queue: string; name: string; completed: number; failed: number; runTimeUs: number; waitTimeMs: number; waited: number }[];
  /** Jobs the agent did not count by type (past its type cap). */
  dropped: number;
  /** Queue depths the agent read (waiting jobs). */
  depths: { queue: string; waiting: number }[];
}

/** One profile's process gauges, as the leak detector follows them. */
export interface ProfilePoint {
  instance: string;
  timeMs: number;
  heapUsedBytes: number;
  externalBytes: number;
  heapSizeLimitBytes: number;
  /** Major GCs the agent had seen (cumulative); 0 from agents that do not report GCs. */
  majorGcs: number;
  /** Taken right after a major GC: no old-space garbage in it. */
  afterMajorGc: boolean;
  /** Taken in precise mode, with inlining off (false from agents that predate it). */
  inliningDisabled?: boolean;
  /** Its job counters; absent where the agent counted no jobs (or predates job counters). */
  jobs?: ProfileJobs;
}

/** In-use bytes of one allocation site in one profile. */
export interface SitePoint {
  instance: string;
  timeMs: number;
  siteId: string;
  bytes: number;
}

/** The profiles a site read covers: profilePoints' window (other fields are ignored). */
export type ProfileWindow = readonly Pick<ProfilePoint, 'instance' | 'timeMs'>[];

export interface SiteDetail {
  siteId: string;
  /** The site's frame. */
  site: Frame;
  /** The site's heaviest stack over the window's profiles, leaf first. */
  stack: Frame[];
}

/** How many leak sites and process findings a service's newest stored report flags. */
export interface FindingCounts {
  service: string;
  evaluatedAt: string;
  leaks: number;
  process: number;
}

export interface TenantService {
  tenant: string;
  service: string;
}

/** A lease claim (store/lease.ts): `holder` runs the work named `name` until `expiresAtMs`. */
export interface LeaseClaim {
  holder: string;
  acquiredAtMs: number;
  /** When this claim was written; a holder's newest claim is the one that counts. */
  renewedAtMs: number;
  expiresAtMs: number;
}

/** The whole store: writes (rows carry their tenant) and what is not any one tenant's. */
export interface ProfileStore {
  // Writes. Each call is one insert; callers batch (store/batcher.ts).
  /** Stacks first: a profile that refers to a stack is written after it. */
  writeStacks(rows: readonly StackRow[]): Promise<void>;
  writeProfiles(rows: readonly ProfileRow[]): Promise<void>;
  /**
   * Sums the profiles of each instance-hour that ended a little before
   * `nowMs` (and, with `sinceMs`, starts at or after it) and is not summed
   * yet into the hourly rollup that long-range merges read
   * (store/rollup.ts); stops between hours once `stopped()`.
   */
  rollUp(nowMs: number, stopped: () => boolean, opts?: { sinceMs?: number }): Promise<{ hours: number }>;
  /** Which of `keys` are stored, as `profileKeyString` of each. */
  storedProfiles(keys: readonly ProfileKey[]): Promise<Set<string>>;

  /** Throws unless the store answers. */
  ping(): Promise<void>;
  /** Services of every tenant with a profile at `sinceMs` or later, at most `limit`. */
  activeServices(sinceMs: number, limit: number): Promise<TenantService[]>;
  /** The reads and findings of one tenant. */
  forTenant(tenant: string): TenantStore;

  /** Adds a claim on lease `name`. */
  writeLeaseClaim(name: string, claim: LeaseClaim): Promise<void>;
  /** Each holder's newest claim on `name`, if it has not expired at `nowMs`; earliest acquired first, then by holder. */
  liveLeaseClaims(name: string, nowMs: number): Promise<LeaseClaim[]>;

  close(): Promise<void>;
}

/** One tenant's view: every read is filtered by `tenant`, every finding tagged with it. */
export interface TenantStore {
  readonly tenant: string;
  /** Stores a leak report JSON of a service. */
  writeFinding(service: string, evaluatedAtMs: number, report: string): Promise<void>;
  /** Every service with its instance and profile counts. */
  services(): Promise<ServiceSummary[]>;
  serviceExists(service: string): Promise<boolean>;
  /** Each instance averaged over its profiles in the range, summed over instances. */
  mergedProfile(q: ProfileQuery): Promise<MergedProfile>;
  /** Label names of the selected profiles (the agent's labels), sorted, at most `limit`. */
  labelNames(q: ProfileSelection, limit: number): Promise<string[]>;
  /** Values of label `name` in the selected profiles, sorted, at most `limit`. */
  labelValues(name: string, q: ProfileSelection, limit: number): Promise<string[]>;
  /** Distinct (service, labels) of the selected profiles, at most `limit`. */
  labelSets(q: ProfileSelection, limit: number): Promise<LabelSet[]>;
  /**
   * In-use totals per step with the merge's semantics: within a step each
   * instance is averaged over its profiles, then instances are summed.
   */
  totalSeries(q: SeriesQuery): Promise<SeriesPoint[]>;
  /**
   * The last `maxProfiles` profiles of every instance of `service` whose
   * newest profile is at most `lookbackMs` older than the service's newest,
   * oldest first within an instance.
   */
  profilePoints(service: string, maxProfiles: number, lookbackMs: number): Promise<ProfilePoint[]>;
  /**
   * In-use bytes per (instance, profile, site) over the profiles of `window`;
   * a site the sampler saw nothing of in a profile has no point there. The
   * agent's own site and the `(external)` gauge are left out (model/site.ts).
   */
  sitePoints(service: string, window: ProfileWindow): Promise<SitePoint[]>;
  /** The frame and heaviest stack of each of `siteIds` over `window`. */
  siteDetails(service: string, siteIds: readonly string[], window: ProfileWindow): Promise<SiteDetail[]>;
  /** The newest stored report JSON of a service, or null. */
  latestFinding(service: string): Promise<string | null>;
  /** Per service with a stored report, the counts of its newest one (without reading every report). */
  findingCounts(): Promise<FindingCounts[]>;
  /** Stores an agent's answer to a holder capture request. */
  writeHolderCapture(service: string, capture: HolderCaptureRow): Promise<void>;
  /** The newest holder capture of a service taken at most `lookbackMs` before `nowMs`, or null. */
  latestHolderCapture(service: string, nowMs: number, lookbackMs: number): Promise<HolderCaptureRow | null>;
}

export function profileKeyString(k: ProfileKey): string {
  return `${k.tenant}\0${k.service}\0${k.instance}\0${k.profileId}`;
}
