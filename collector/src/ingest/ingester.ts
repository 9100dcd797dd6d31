/**
 * The write path: validate -> normalize -> store. Stateless apart from
 * caches that only save work (every collector behind a load balancer
 * derives the same ids and writes idempotently), so any collector may
 * receive any profile, including a retry of one another collector stored.
 */
import type { IngestRequest__Output } from '@heapwatch/proto';
import { InsertHealth } from '../health/insert-health';
import { BoundedSet } from '../lru';
import { Batcher, ExpiredError, type BatcherOptions } from '../store/batcher';
import { profileKeyString, type ProfileRow, type ProfileStore, type StackRow } from '../store/store';
import { KnownStacks } from './known-stacks';
import { normalize, stackIdDecimal, type NormalizedProfile } from './normalize';
import { Slots } from './slots';
import { StoredProfiles } from './stored-profiles';
import { decodeProfile, DEFAULT_LIMITS, validateEnvelope, type Limits } from './validate';

export interface IngesterOptions {
  limits?: Partial<Limits>;
  batch?: Partial<BatcherOptions>;
  /** Stack ids remembered as already stored, per collector. */
  stackCacheSize?: number;
  /** Profile ids remembered as already stored, per collector. */
  profileIdCacheSize?: number;
  /** Profiles inflated and decoded at once (each may inflate to limits.maxProfileBytes). */
  decodeConcurrency?: number;
}

export interface IngestResult {
  /** False when the profile had been stored before (a retry). */
  stored: boolean;
  stacks: number;
}

interface Prepared {
  req: IngestRequest__Output;
  tenant: string;
  instance: string;
  profileKey: string;
  stacks: NormalizedProfile | null;
}

const DEFAULT_BATCH: BatcherOptions = {
  maxBatchRows: 200_000,
  maxDelayMs: 50,
  maxPendingRows: 2_000_000,
  concurrency: 2,
};

/**
 * Stack values in one profiles insert, at most (~20 profiles of 5,000):
 * the engine's CPU per profile falls from ~55 ms alone to ~20 ms twenty at
 * a time (a part written and merged per insert), and rises again past that
 * (the statement carries its data as text: bench/results/REPORT.md, 3b).
 */
const MAX_PROFILE_BATCH_VALUES = 100_000;

/**
 * Decoding is CPU work (two cores' worth is plenty), and gunzip runs on
 * libuv's thread pool, which the embedded engine's queries need too.
 */
const DEFAULT_DECODE_CONCURRENCY = 2;

/** The instance key: one series per isolate per process lifetime. */
export function instanceKey(i: NonNullable<IngestRequest__Output['instance']>): string {
  return `${i.hostname}:${i.pid}:${i.threadId}:${i.processStartTimeMs}`;
}

export class Ingester {
  readonly limits: Limits;
  private readonly stacks: Batcher<StackRow>;
  /** Rows weigh their stack values: batches are bounded by values, not profiles. */
  private readonly profiles: Batcher<ProfileRow>;
  private readonly knownStacks: KnownStacks;
  private readonly knownProfiles: BoundedSet;
  private readonly storedProfiles: StoredProfiles;
  private readonly decodeSlots: Slots;
  readonly counters = { profiles: 0, duplicates: 0, rejected: 0, stackValues: 0, expired: 0, holderCaptures: 0, holderCaptureWriteFailures: 0 };
  /** Whether inserts have been failing (readiness). */
  readonly inserts = new InsertHealth();
  /** The most rows `pendingRows` can reach (stacks and profiles each have their bound). */
  readonly maxPendingRows: number;

  constructor(
    private readonly store_: ProfileStore,
    opts: IngesterOptions = {},
  ) {
    const store = store_;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    const batch = { ...DEFAULT_BATCH, ...opts.batch };
    this.maxPendingRows = 2 * batch.maxPendingRows;
    this.stacks = new Batcher<StackRow>(this.inserts.track((rows: StackRow[]) => store.writeStacks(rows)), batch);
    this.profiles = new Batcher<ProfileRow>(this.inserts.track((rows: ProfileRow[]) => store.writeProfiles(rows)), {
      ...batch,
      maxBatchRows: Math.min(batch.maxBatchRows, MAX_PROFILE_BATCH_VALUES),
    });
    this.knownStacks = new KnownStacks(opts.stackCacheSize ?? 500_000);
    this.knownProfiles = new BoundedSet(opts.profileIdCacheSize ?? 100_000);
    this.storedProfiles = new StoredProfiles(store);
    this.decodeSlots = new Slots(opts.decodeConcurrency ?? DEFAULT_DECODE_CONCURRENCY);
  }

  /** Rows buffered or being written, for /metrics-style introspection and tests. */
  get pendingRows(): number {
    return this.stacks.pendingRows + this.profiles.pendingRows;
  }

  get refusedRows(): number {
    return this.stacks.refusedRows + this.profiles.refusedRows;
  }

  /** Everything the write path counts, for GET /metrics. */
  metrics(): Record<string, number> {
    return {
      profiles_stored_total: this.counters.profiles,
      profiles_duplicate_total: this.counters.duplicates,
      profiles_rejected_total: this.counters.rejected,
      stack_values_stored_total: this.counters.stackValues,
      store_pending_rows: this.pendingRows,
      store_refused_rows_total: this.refusedRows,
      store_failed_inserts_total: this.stacks.failedInserts + this.profiles.failedInserts,
      store_refused_profiles_total: this.stacks.isolatedFailures + this.profiles.isolatedFailures,
      requests_expired_total: this.counters.expired,
      holder_captures_total: this.counters.holderCaptures,
      holder_capture_write_failures_total: this.counters.holderCaptureWriteFailures,
      stack_cache_entries: this.knownStacks.size,
      stack_cache_evicted_total: this.knownStacks.evicted,
      profile_id_cache_evicted_total: this.knownProfiles.evicted,
    };
  }

  /**
   * Validates, normalizes and stores one profile as `tenant`'s, the tenant
   * of the token that sent it ('' = the default). `expired` says when the
   * caller has given up (its deadline passed): the work stops at the next
   * step, and rows not yet written are left out of their batch.
   */
  async ingest(req: IngestRequest__Output, tenant = '', expired: () => boolean = () => false): Promise<IngestResult> {
    try {
      return await this.ingestOnce(req, tenant, expired);
    } catch (err) {
      if (err instanceof ExpiredError) this.counters.expired++;
      throw err;
    }
  }

  /**
   * Ingests several profiles of `tenant` all or nothing: every one is
   * validated and decoded before any is stored, so a request with one bad
   * profile stores none (Pyroscope's Push carries many).
   */
  async ingestAll(reqs: readonly IngestRequest__Output[], tenant: string): Promise<IngestResult[]> {
    const never = () => false;
    const prepared: Prepared[] = [];
    for (const req of reqs) prepared.push(await this.prepare(req, tenant, never));
    const results: IngestResult[] = [];
    for (const p of prepared) results.push(await this.store(p, never));
    return results;
  }

  private async ingestOnce(req: IngestRequest__Output, tenant: string, expired: () => boolean): Promise<IngestResult> {
    return this.store(await this.prepare(req, tenant, expired), expired);
  }

  /** Validates and decodes; null stacks when the profile is already stored (a retry). */
  private async prepare(req: IngestRequest__Output, tenant: string, expired: () => boolean): Promise<Prepared> {
    const check = (where: string): void => {
      if (expired()) throw new ExpiredError(where);
    };
    try {
      validateEnvelope(req, this.limits);
    } catch (err) {
      this.counters.rejected++;
      throw err;
    }
    check('before it was looked up');
    const instance = instanceKey(req.instance!);
    const key = { tenant, service: req.service, instance, profileId: req.profileId };
    const profileKey = profileKeyString(key);
    if (this.knownProfiles.has(profileKey) || (await this.storedProfiles.has(key))) {
      return { req, tenant, instance, profileKey, stacks: null };
    }
    await this.decodeSlots.acquire();
    try {
      check('before the profile was decoded');
      return { req, tenant, instance, profileKey, stacks: normalize(await decodeProfile(req.pprofGzip, this.limits)) };
    } catch (err) {
      if (!(err instanceof ExpiredError)) this.counters.rejected++;
      throw err;
    } finally {
      this.decodeSlots.release();
    }
  }

  private async store({ req, tenant, instance, profileKey, stacks }: Prepared, expired: () => boolean): Promise<IngestResult> {
    const check = (where: string): void => {
      if (expired()) throw new ExpiredError(where);
    };
    if (!stacks || this.knownProfiles.has(profileKey)) {
      this.counters.duplicates++;
      return { stored: false, stacks: 0 };
    }
    const time = req.endTimeMs;
    const known = this.knownStacks.of(tenant, req.service);
    const stackRows: StackRow[] = [];
    const newStacks: number[] = [];
    let totalBytes = 0;
    let totalObjects = 0;
    for (let k = 0; k < stacks.count; k++) {
      totalBytes += stacks.bytes[k]!;
      totalObjects += stacks.objects[k]!;
      if (known.has(stacks.idHi[k]!, stacks.idLo[k]!)) continue;
      newStacks.push(k);
      stackRows.push({ tenant, service: req.service, id: stackIdDecimal(stacks, k), frames: stacks.frames(k), lastSeenMs: time });
    }
    // Stacks first: a visible profile's stacks are always there to read.
    check('before its stacks were written');
    await this.stacks.add(stackRows, stackRows.length, expired);
    for (const k of newStacks) known.add(stacks.idHi[k]!, stacks.idLo[k]!);

    const inst = req.instance!;
    const mem = req.memory;
    const agent = req.agent;
    const row: ProfileRow = {
      fields: {
        tenant,
        service: req.service,
        instance,
        profile_id: req.profileId,
        start_time: req.startTimeMs || time,
        time,
        labels: req.labels ?? {},
        hostname: inst.hostname,
        pid: inst.pid,
        thread_id: inst.threadId,
        process_start_time: inst.processStartTimeMs,
        runtime_version: inst.runtimeVersion,
        agent_version: inst.agentVersion,
        stacks: stacks.count,
        total_bytes: totalBytes,
        total_objects: totalObjects,
        rss_bytes: mem?.rssBytes ?? 0,
        heap_used_bytes: mem?.heapUsedBytes ?? 0,
        heap_total_bytes: mem?.heapTotalBytes ?? 0,
        external_bytes: mem?.externalBytes ?? 0,
        array_buffers_bytes: mem?.arrayBuffersBytes ?? 0,
        heap_size_limit_bytes: mem?.heapSizeLimitBytes ?? 0,
        agent_profiles_sent: agent?.profilesSent ?? 0,
        agent_profiles_dropped: agent?.profilesDropped ?? 0,
        agent_sampling_time_us: agent?.samplingTimeUs ?? 0,
        agent_queue_length: agent?.queueLength ?? 0,
        agent_queue_bytes: agent?.queueBytes ?? 0,
        agent_send_failures: agent?.sendFailures ?? 0,
        received_at: Date.now(),
        gc_major_gcs: req.gc?.majorGcs ?? 0,
        gc_last_major_gc_end_ms: req.gc?.lastMajorGcEndMs ?? 0,
        gc_after_major_gc: req.gc?.afterMajorGc ? 1 : 0,
        agent_forced_gcs: agent?.forcedGcs ?? 0,
        agent_forced_gc_time_us: agent?.forcedGcTimeUs ?? 0,
        inlining_disabled: req.inliningDisabled ? 1 : 0,
        agent_precise_activations: agent?.preciseActivations ?? 0,
        agent_precise_time_ms: agent?.preciseTimeMs ?? 0,
        agent_precise_switch_time_us: agent?.preciseSwitchTimeUs ?? 0,
        ...jobFields(req.jobs),
      },
      values: stacks,
    };
    await this.profiles.add([row], Math.max(1, stacks.count), expired);
    this.knownProfiles.add(profileKey);
    if (req.holders?.captureId) this.writeHolders(tenant, req.service, instance, req.holders);
    this.counters.profiles++;
    this.counters.stackValues += stacks.count;
    return { stored: true, stacks: stacks.count };
  }

  /**
   * An agent's answer to a holder capture request: a row of its own, written
   * once the profile that carried it is stored. Rare (one per service per
   * cool-down), so not batched; a failed write is counted, not retried: the
   * profile is stored and the next capture will come.
   */
  private writeHolders(tenant: string, service: string, instance: string, h: NonNullable<IngestRequest__Output['holders']>): void {
    this.counters.holderCaptures++;
    this.store_
      .forTenant(tenant)
      .writeHolderCapture(service, {
        instance,
        captureId: h.captureId,
        takenAtMs: Number(h.takenAtMs) || Date.now(),
        skipped: h.skipped,
        heapUsedBytes: Number(h.heapUsedBytes),
        maxHeapBytes: Number(h.maxHeapBytes),
        pauseMs: h.pauseMs,
        parseMs: h.parseMs,
        leaves: Number(h.leaves),
        offHeapBytes: Number(h.offHeapBytes),
        unreachable: Number(h.unreachable),
        holders: (h.holders ?? []).map((x) => ({
          owner: x.owner,
          ownerKind: x.ownerKind,
          container: x.container,
          items: Number(x.items),
          function: x.function,
          file: x.file,
          line: x.line,
          column: x.column,
          offHeapBytes: Number(x.offHeapBytes),
          heapBytes: Number(x.heapBytes),
          objects: Number(x.objects),
          path: x.path,
        })),
      })
      .catch(() => {
        this.counters.holderCaptureWriteFailures++;
      });
  }

  async flush(): Promise<void> {
    await this.stacks.flush();
    await this.profiles.flush();
  }
}

type JobFields = Pick<
  ProfileRow['fields'],
  'job_queues' | 'job_names' | 'jobs_completed' | 'jobs_failed' | 'job_run_time_us' | 'job_wait_time_ms' | 'jobs_waited' | 'jobs_dropped' | 'queue_depth_queues' | 'queue_depth_waiting'
>;

/** IngestRequest.jobs as the profile's parallel arrays (empty without it). */
export function jobFields(jobs: IngestRequest__Output['jobs']): JobFields {
  const types = jobs?.types ?? [];
  const queues = jobs?.queues ?? [];
  return {
    job_queues: types.map((t) => t.queue),
    job_names: types.map((t) => t.name),
    jobs_completed: types.map((t) => t.completed),
    jobs_failed: types.map((t) => t.failed),
    job_run_time_us: types.map((t) => t.runTimeUs),
    job_wait_time_ms: types.map((t) => t.waitTimeMs),
    jobs_waited: types.map((t) => t.waited),
    jobs_dropped: jobs?.droppedJobs ?? 0,
    queue_depth_queues: queues.map((q) => q.queue),
    queue_depth_waiting: queues.map((q) => q.waiting),
  };
}
