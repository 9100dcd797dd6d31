import { randomUUID } from 'node:crypto';
import * as os from 'node:os';
import * as v8 from 'node:v8';
import { threadId } from 'node:worker_threads';
import type { DecodedDirective, GcInfo, Instance, JobCounters, ProcessMemory } from '@heapwatch/proto/messages';
import { Backoff, backoffCapMs } from './backoff';
import type { AgentConfig } from './config';
import { GC_WAIT_FRACTION, GcAlignedTimer } from './gc-aligned-timer';
import { GcAssist } from './gc-assist';
import { HolderCapture } from './holder-capture';
import { jobCounters, jobRegistry, refreshQueueDepths } from './jobs/registry';
import type { Logger } from './logger';
import { MajorGcWatch } from './major-gc-watch';
import { PreciseMode } from './precise-mode';
import { HeapSampler, type Capture } from './sampler';
import { SourceMaps } from './source-maps';
import { Sender, type Counters, type ModeCounters } from './sender';
import { Http2Transport, type Transport } from './transport';
import { AGENT_VERSION } from './version';

/**
 * A post-GC capture may cost at most this share of the host's time: after a
 * capture that took c, the next waits POST_GC_BUDGET_FACTOR x c. This only
 * bites a heap so large that one capture takes tens of milliseconds.
 */
export const POST_GC_BUDGET_FACTOR = 100;

/**
 * Post-GC captures are at least this fraction of the interval apart (15 s
 * at the 60 s default), so at most 1 / POST_GC_SPACING_FRACTION + 1 a
 * profile interval however often V8 runs a major GC. Only the newest is
 * sent; the others are read and encoded for nothing. A busy worker can run
 * a major GC every second: capturing after each one cost the default mode
 * a profile read and encode a second (bench/agent-cpu.mjs, part 7), 60
 * times what it sends. A tick that is due and waiting for a GC takes the
 * next one regardless.
 */
export const POST_GC_SPACING_FRACTION = GC_WAIT_FRACTION;

/** Holders sent per capture, of each kind (the largest off-heap, the largest on-heap). */
const MAX_HOLDERS_SENT = 5;
/** Reading the snapshot in the worker is abandoned after this. */
const HOLDER_READ_TIMEOUT_MS = 120_000;

/** The newest snapshot taken right after a major GC and not yet sent (at most one is kept). */
interface PostGcCapture extends Capture {
  timeMs: number;
  memory: ProcessMemory;
  majorGcs: number;
  lastMajorGcEndMs: number;
  inliningDisabled: boolean;
  /** The job counters read with `memory` (undefined: no integration counted anything). */
  jobs: JobCounters | undefined;
}

/**
 * One running agent: sampler + schedule + sender, for one isolate. It runs
 * in its default mode (inlining kept, no forced GCs, major GCs noticed
 * through a sentinel that costs nothing per scavenge) until the collector's
 * directive turns precise mode on (precise-mode.ts).
 */
export class Agent {
  private readonly sampler: HeapSampler;
  private readonly gcWatch = new MajorGcWatch(() => this.onMajorGc());
  private readonly gcAssist: GcAssist | undefined;
  private gcAssistEnabled: boolean | undefined;
  private readonly precise: PreciseMode;
  private readonly holders: HolderCapture;
  private postGc: PostGcCapture | undefined;
  private nextPostGcCaptureMs = 0;
  private lastPostGcCaptureMs = -Infinity;
  private postGcCaptures = 0;
  private readonly timer: GcAlignedTimer;
  private readonly sender: Sender;
  private readonly transport: Transport;
  private readonly instance: Instance;
  private lastSnapshotMs = 0;
  private snapshotting: Promise<void> | undefined;
  private stopped = false;

  constructor(
    readonly config: AgentConfig,
    private readonly log: Logger,
    transport?: Transport,
  ) {
    this.sampler = new HeapSampler(config.sourceMaps ? new SourceMaps() : undefined);
    this.transport = transport ?? new Http2Transport({ collector: config.collector, token: config.token, tls: config.tls, tlsCa: config.tlsCa });
    if (config.gcAssistBudget > 0) this.gcAssist = new GcAssist(config.gcAssistBudget, config.gcAssistMaxPauseMs);
    this.precise = new PreciseMode(
      {
        setting: config.precise,
        maxMs: config.preciseMaxMs,
        minMs: Math.min(config.preciseMaxMs, config.preciseMinProfiles * config.intervalMs),
        cooldownMs: config.preciseCooldownMs,
        disableInlining: config.disableInlining,
        log,
      },
      (on) => {
        if (on) this.enableGcAssist();
      },
    );
    this.holders = new HolderCapture({
      maxHeapBytes: config.holderMaxHeapMb * 1024 * 1024,
      cooldownMs: config.holderCooldownMs,
      maxHolders: MAX_HOLDERS_SENT,
      timeoutMs: HOLDER_READ_TIMEOUT_MS,
      log,
    });
    this.sender = new Sender(
      this.transport,
      new Backoff(backoffCapMs(config.intervalMs), config.random),
      { maxItems: config.maxQueueProfiles, maxBytes: config.maxQueueBytes },
      config.timeoutMs,
      log,
      () => this.modeCounters(),
      (d) => this.onDirective(d),
    );
    this.timer = new GcAlignedTimer(
      config.intervalMs,
      () => this.tick(),
      () => this.postGc !== undefined,
      () => this.forceGc(),
    );
    this.instance = {
      hostname: os.hostname(),
      pid: process.pid,
      processStartTimeMs: Math.round(Date.now() - process.uptime() * 1000),
      threadId,
      runtimeVersion: process.version,
      agentVersion: AGENT_VERSION,
    };
  }

  /** Throws on failure; the public start() turns that into `false`. */
  start(): void {
    jobRegistry().maxTypes = this.config.maxJobTypes;
    this.sampler.start(this.config.samplingIntervalBytes, this.config.stackDepth);
    this.lastSnapshotMs = Date.now();
    if (!this.gcWatch.start()) this.log.info('FinalizationRegistry unavailable: sending live snapshots only');
    this.precise.start();
    this.timer.start();
    this.log.info(
      `started: service=${this.config.service} collector=${this.config.collector} intervalMs=${this.config.intervalMs} thread=${threadId}`,
    );
  }

  counters(): Counters {
    return this.sender.counters();
  }

  private modeCounters(): ModeCounters {
    const p = this.precise.counters();
    return {
      forcedGcs: this.gcAssist?.stats.forced ?? 0,
      forcedGcTimeUs: this.gcAssist?.stats.timeUs ?? 0,
      forcedGcsSkipped: (this.gcAssist?.stats.skippedPause ?? 0) + (this.gcAssist?.stats.skippedBudget ?? 0),
      preciseActivations: p.activations,
      preciseTimeMs: p.timeMs,
      preciseSwitchTimeUs: p.switchTimeUs,
      majorGcs: this.gcWatch.majorGcs,
      postGcCaptures: this.postGcCaptures,
      holderCaptures: this.holders.stats.taken,
      holderCapturesSkipped: this.holders.stats.skipped,
      holderCapturesFailed: this.holders.stats.failed,
      holderPauseMs: this.holders.stats.pauseMs,
    };
  }

  private onDirective(d: DecodedDirective): void {
    if (this.stopped) return;
    this.precise.direct(d);
    if (d.holders?.captureId) this.holders.request(d.holders.captureId);
  }

  /** GC assist's gc() is obtained on the first precise period: the default mode never forces a GC. */
  private enableGcAssist(): void {
    if (!this.gcAssist || this.gcAssistEnabled !== undefined) return;
    this.gcAssistEnabled = this.gcAssist.enable();
    if (!this.gcAssistEnabled) this.log.info("gc() unavailable: precise mode relies on V8's major GCs alone");
  }

  /** Takes a profile now and tries to send everything queued, until done or the deadline. */
  async flush(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const hold = holdProcess(timeoutMs);
    try {
      await this.snapshotNow();
      await this.sender.drain(deadline);
    } finally {
      clearTimeout(hold);
    }
  }

  /** Last profile, bounded send, then release everything. Never rejects. */
  async stop(timeoutMs: number): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.timer.stop();
    this.gcWatch.stop();
    this.holders.stop();
    this.postGc = undefined;
    const deadline = Date.now() + timeoutMs;
    const hold = holdProcess(timeoutMs);
    try {
      await this.snapshotNow();
      await this.sender.drain(deadline);
    } catch (e) {
      this.log.debug(`stop: ${String(e)}`);
    } finally {
      this.precise.stop();
      this.sender.close();
      this.transport.close();
      try {
        this.sampler.stop();
      } catch (e) {
        this.log.debug(`sampler stop: ${String(e)}`);
      }
      clearTimeout(hold);
      this.log.info('stopped');
    }
  }

  private tick(): void {
    if (this.stopped) return;
    // Read now, sent with a later profile: a depth read is a round trip to the queue's broker.
    refreshQueueDepths();
    this.takeSnapshot(true).catch((e: unknown) => this.log.debug(`tick: ${String(e)}`));
  }

  /**
   * Right after a major GC (the sentinel's callback runs a few ms after it,
   * so little has been allocated since): read the profile and keep it,
   * replacing any older one, until the next tick sends it; at most one per
   * POST_GC_SPACING_FRACTION of the interval, unless a due tick waits for
   * it. Only the synchronous read and encode happen here; gzip waits until
   * it is sent, so a capture superseded before a tick costs no compression.
   */
  private onMajorGc(): void {
    if (this.stopped || !this.sampler.isRunning) return;
    const now = Date.now();
    if (now < this.nextPostGcCaptureMs) return;
    const spaced = now - this.lastPostGcCaptureMs >= this.config.intervalMs * POST_GC_SPACING_FRACTION;
    if (!spaced && !this.timer.waitingForGc) return;
    if (this.capturePostGc()) this.timer.majorGc();
  }

  /**
   * A tick is due and V8 ran no major GC since the last one: in precise
   * mode, force one if GcAssist allows, and take the post-GC snapshot right
   * away. The default mode never forces one.
   */
  private forceGc(): boolean {
    if (this.stopped || !this.precise.active || !this.sampler.isRunning || !this.gcAssist?.tryForce()) return false;
    this.gcWatch.forced();
    return this.capturePostGc();
  }

  /** Reads and keeps the post-GC snapshot (replacing an older one); false if that failed. */
  private capturePostGc(): boolean {
    const now = Date.now();
    try {
      const memory = readMemory();
      const jobs = jobCounters();
      const c = this.sampler.capture(this.lastSnapshotMs, now);
      this.sender.samplingTimeUs += c.samplingTimeUs;
      this.postGcCaptures++;
      this.lastPostGcCaptureMs = now;
      this.nextPostGcCaptureMs = now + Math.ceil((POST_GC_BUDGET_FACTOR * c.samplingTimeUs) / 1000);
      this.postGc = {
        ...c,
        timeMs: now,
        memory,
        majorGcs: this.gcWatch.majorGcs,
        lastMajorGcEndMs: this.gcWatch.lastMajorGcEndMs,
        inliningDisabled: this.precise.inliningDisabled,
        jobs,
      };
    } catch (e) {
      this.log.debug(`post-GC capture: ${String(e)}`);
      return false;
    }
    return true;
  }

  /**
   * One snapshot at a time; a caller arriving mid-snapshot waits for that one.
   * `preferPostGc`: send the newest post-GC capture if one was taken since
   * the last send (interval ticks); flush() and stop() read the heap now.
   */
  private takeSnapshot(preferPostGc = false): Promise<void> {
    this.snapshotting ??= this.snapshotOnce(preferPostGc)
      .catch((e: unknown) => this.log.warn(`could not take a heap profile: ${String(e)}`))
      .finally(() => {
        this.snapshotting = undefined;
      });
    return this.snapshotting;
  }

  /**
   * A profile of the heap as it is now (flush, stop). A tick's snapshot
   * still running may be sending an older post-GC capture: wait for it
   * (and any that follows) rather than join it.
   */
  private async snapshotNow(): Promise<void> {
    while (this.snapshotting) await this.snapshotting;
    await this.takeSnapshot();
  }

  private async snapshotOnce(preferPostGc: boolean): Promise<void> {
    if (!this.sampler.isRunning) return;
    const startMs = this.lastSnapshotMs;
    const post = this.postGc;
    this.postGc = undefined;
    let endMs: number;
    let memory: ProcessMemory;
    let pprofGzip: Buffer;
    let gc: GcInfo;
    let inliningDisabled: boolean;
    let jobs: JobCounters | undefined;
    if (preferPostGc && post && post.timeMs >= startMs) {
      // Its window was set at capture time from the same lastSnapshotMs.
      endMs = post.timeMs;
      this.lastSnapshotMs = endMs;
      memory = post.memory;
      pprofGzip = await this.sampler.compress(post.encoded);
      gc = { majorGcs: post.majorGcs, lastMajorGcEndMs: post.lastMajorGcEndMs, afterMajorGc: true };
      inliningDisabled = post.inliningDisabled;
      jobs = post.jobs;
    } else {
      endMs = Date.now();
      this.lastSnapshotMs = endMs;
      memory = readMemory();
      jobs = jobCounters();
      gc = { majorGcs: this.gcWatch.majorGcs, lastMajorGcEndMs: this.gcWatch.lastMajorGcEndMs, afterMajorGc: false };
      inliningDisabled = this.precise.inliningDisabled;
      const snap = await this.sampler.snapshot(startMs, endMs);
      this.sender.samplingTimeUs += snap.samplingTimeUs;
      pprofGzip = snap.pprofGzip;
    }
    this.log.debug(
      `profile taken (${gc.afterMajorGc ? 'after a major GC' : 'live'}, tick by ${this.timer.lastTrigger ?? 'request'}): ${pprofGzip.length} bytes gzipped`,
    );
    const snap = { pprofGzip };
    this.sender.enqueue({
      bytes: snap.pprofGzip.length,
      request: {
        profileId: randomUUID(),
        service: this.config.service,
        labels: this.config.labels,
        instance: this.instance,
        startTimeMs: startMs,
        endTimeMs: endMs,
        pprofGzip: snap.pprofGzip,
        memory,
        gc,
        inliningDisabled,
        jobs,
        holders: this.holders.take(),
      },
    });
  }
}

/**
 * A host that awaits stop() or flush() asked for that work explicitly, so keep
 * the process alive for it, bounded by the deadline. Everything else the agent
 * does is unref'd and never delays the host's exit.
 */
function holdProcess(ms: number): NodeJS.Timeout {
  return setTimeout(() => {}, ms);
}

function readMemory(): ProcessMemory {
  const m = process.memoryUsage();
  return {
    rssBytes: m.rss,
    heapUsedBytes: m.heapUsed,
    heapTotalBytes: m.heapTotal,
    externalBytes: m.external,
    arrayBuffersBytes: m.arrayBuffers,
    heapSizeLimitBytes: v8.getHeapStatistics().heap_size_limit,
  };
}
