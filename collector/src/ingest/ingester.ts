/**
 * The write path: validate -> normalize -> store. Stateless apart from
 * caches that only save work (every collector behind a load balancer
 * derives the same ids and writes idempotently), so any collector may
 * receive any profile, including a retry of one another collector stored.
 */
import type { IngestRequest__Output } from '@heapwatch/proto';
import { BoundedSet } from '../lru';
import { Batcher, type BatcherOptions } from '../store/batcher';
import type { Store } from '../store/clickhouse';
import { samplesInsert, type ProfileRef, type SampleRow } from '../store/samples-insert';
import { normalize, siteOf } from './normalize';
import { decodeProfile, DEFAULT_LIMITS, validateEnvelope, type Limits } from './validate';

export interface IngesterOptions {
  limits?: Partial<Limits>;
  batch?: Partial<BatcherOptions>;
  /** Stack ids remembered as already stored, per collector. */
  stackCacheSize?: number;
  /** Profile ids remembered as already stored, per collector. */
  profileIdCacheSize?: number;
}

export interface IngestResult {
  /** False when the profile had been stored before (a retry). */
  stored: boolean;
  stacks: number;
}

const DEFAULT_BATCH: BatcherOptions = {
  maxBatchRows: 200_000,
  maxDelayMs: 50,
  maxPendingRows: 2_000_000,
  concurrency: 2,
};

/** The instance key: one series per isolate per process lifetime. */
export function instanceKey(i: NonNullable<IngestRequest__Output['instance']>): string {
  return `${i.hostname}:${i.pid}:${i.threadId}:${i.processStartTimeMs}`;
}

export class Ingester {
  readonly limits: Limits;
  private readonly samples: Batcher<SampleRow>;
  private readonly stacks: Batcher<unknown[]>;
  private readonly profiles: Batcher<Record<string, unknown>>;
  private readonly knownStacks: BoundedSet;
  private readonly knownProfiles: BoundedSet;
  readonly counters = { profiles: 0, duplicates: 0, rejected: 0, stackValues: 0 };

  constructor(
    private readonly store: Store,
    opts: IngesterOptions = {},
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    const batch = { ...DEFAULT_BATCH, ...opts.batch };
    const insert = (table: string, format: 'JSONCompactEachRow' | 'JSONEachRow') => async (values: unknown[]) => {
      await store.client.insert({ table, values, format });
    };
    this.samples = new Batcher<SampleRow>(async (rows) => {
      await store.commandWithData(samplesInsert('samples', rows));
    }, batch);
    this.stacks = new Batcher<unknown[]>(insert('stacks', 'JSONCompactEachRow'), batch);
    // The commit markers: few rows, written only after their samples.
    this.profiles = new Batcher<Record<string, unknown>>(insert('profiles', 'JSONEachRow'), { ...batch, maxBatchRows: 1000 });
    this.knownStacks = new BoundedSet(opts.stackCacheSize ?? 500_000);
    this.knownProfiles = new BoundedSet(opts.profileIdCacheSize ?? 100_000);
  }

  /** Rows buffered or being written, for /metrics-style introspection and tests. */
  get pendingRows(): number {
    return this.samples.pendingRows + this.stacks.pendingRows + this.profiles.pendingRows;
  }

  get refusedRows(): number {
    return this.samples.refusedRows + this.stacks.refusedRows + this.profiles.refusedRows;
  }

  async ingest(req: IngestRequest__Output): Promise<IngestResult> {
    try {
      validateEnvelope(req, this.limits);
    } catch (err) {
      this.counters.rejected++;
      throw err;
    }
    const instance = instanceKey(req.instance!);
    const profileKey = `${req.service}\0${instance}\0${req.profileId}`;
    if (this.knownProfiles.has(profileKey) || (await this.isStored(req.service, instance, req.profileId))) {
      this.counters.duplicates++;
      return { stored: false, stacks: 0 };
    }
    let stacks;
    try {
      stacks = normalize(await decodeProfile(req.pprofGzip, this.limits));
    } catch (err) {
      this.counters.rejected++;
      throw err;
    }

    const time = req.endTimeMs;
    const profileRef: ProfileRef = { service: req.service, instance, timeMs: time };
    const sampleRows: SampleRow[] = [];
    const stackRows: unknown[][] = [];
    let totalBytes = 0;
    let totalObjects = 0;
    for (const s of stacks) {
      sampleRows.push([profileRef, s.id, s.objects, s.bytes]);
      totalBytes += s.bytes;
      totalObjects += s.objects;
      const stackKey = `${req.service}\0${s.id}`;
      if (!this.knownStacks.has(stackKey)) {
        const site = siteOf(s.frames);
        stackRows.push([
          req.service,
          s.id,
          s.frames.map((f) => f.function),
          s.frames.map((f) => f.file),
          s.frames.map((f) => f.line),
          site.id,
          site.frame.function,
          site.frame.file,
          site.frame.line,
          time,
        ]);
      }
    }
    await Promise.all([this.samples.add(sampleRows), this.stacks.add(stackRows)]);
    for (const row of stackRows) this.knownStacks.add(`${req.service}\0${row[1] as string}`);

    const inst = req.instance!;
    const mem = req.memory;
    const agent = req.agent;
    await this.profiles.add([
      {
        service: req.service,
        instance,
        profile_id: req.profileId,
        start_time: req.startTimeMs || time,
        time,
        labels: req.labels,
        hostname: inst.hostname,
        pid: inst.pid,
        thread_id: inst.threadId,
        process_start_time: inst.processStartTimeMs,
        runtime_version: inst.runtimeVersion,
        agent_version: inst.agentVersion,
        stacks: stacks.length,
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
      },
    ]);
    this.knownProfiles.add(profileKey);
    this.counters.profiles++;
    this.counters.stackValues += sampleRows.length;
    return { stored: true, stacks: stacks.length };
  }

  private async isStored(service: string, instance: string, profileId: string): Promise<boolean> {
    const rows = await this.store.query<{ n: string }>(
      `SELECT count() AS n FROM profiles
       WHERE service = {service:String} AND instance = {instance:String} AND profile_id = {id:String}`,
      { service, instance, id: profileId },
    );
    return Number(rows[0]?.n ?? 0) > 0;
  }

  async flush(): Promise<void> {
    await Promise.all([this.samples.flush(), this.stacks.flush()]);
    await this.profiles.flush();
  }
}
