import { randomUUID } from 'node:crypto';
import * as os from 'node:os';
import * as v8 from 'node:v8';
import { threadId } from 'node:worker_threads';
import type { Instance, ProcessMemory } from '@heapwatch/proto/messages';
import { Backoff, backoffCapMs } from './backoff';
import type { AgentConfig } from './config';
import { GcAlignedTimer } from './gc-aligned-timer';
import type { Logger } from './logger';
import { HeapSampler } from './sampler';
import { Sender, type Counters } from './sender';
import { Http2Transport, type Transport } from './transport';
import { AGENT_VERSION } from './version';

/** One running agent: sampler + schedule + sender, for one isolate. */
export class Agent {
  private readonly sampler = new HeapSampler();
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
    this.transport = transport ?? new Http2Transport({ collector: config.collector, token: config.token, tls: config.tls });
    this.sender = new Sender(
      this.transport,
      new Backoff(backoffCapMs(config.intervalMs), config.random),
      { maxItems: config.maxQueueProfiles, maxBytes: config.maxQueueBytes },
      config.timeoutMs,
      log,
    );
    this.timer = new GcAlignedTimer(config.intervalMs, () => this.tick());
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
    if (this.config.disableInlining) {
      // V8's sampler records physical frames: an inlined callee vanishes and
      // its allocations are charged to its caller, hiding the real leak site.
      // Must run before the hot code is optimized, hence at start.
      v8.setFlagsFromString('--no-turbo-inlining');
    }
    this.sampler.start(this.config.samplingIntervalBytes, this.config.stackDepth);
    this.lastSnapshotMs = Date.now();
    this.timer.start();
    this.log.info(
      `started: service=${this.config.service} collector=${this.config.collector} intervalMs=${this.config.intervalMs} thread=${threadId}`,
    );
  }

  counters(): Counters {
    return this.sender.counters();
  }

  /** Takes a profile now and tries to send everything queued, until done or the deadline. */
  async flush(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const hold = holdProcess(timeoutMs);
    try {
      await this.takeSnapshot();
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
    const deadline = Date.now() + timeoutMs;
    const hold = holdProcess(timeoutMs);
    try {
      await this.takeSnapshot();
      await this.sender.drain(deadline);
    } catch (e) {
      this.log.debug(`stop: ${String(e)}`);
    } finally {
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
    this.takeSnapshot().catch((e: unknown) => this.log.debug(`tick: ${String(e)}`));
  }

  /** One snapshot at a time; a caller arriving mid-snapshot waits for that one. */
  private takeSnapshot(): Promise<void> {
    this.snapshotting ??= this.snapshotOnce()
      .catch((e: unknown) => this.log.warn(`could not take a heap profile: ${String(e)}`))
      .finally(() => {
        this.snapshotting = undefined;
      });
    return this.snapshotting;
  }

  private async snapshotOnce(): Promise<void> {
    if (!this.sampler.isRunning) return;
    const startMs = this.lastSnapshotMs;
    const endMs = Date.now();
    this.lastSnapshotMs = endMs;
    const memory = readMemory();
    const snap = await this.sampler.snapshot(startMs, endMs);
    this.sender.samplingTimeUs += snap.samplingTimeUs;
    this.log.debug(
      `profile taken (after ${this.timer.lastTrigger ?? 'request'}): ${snap.pprofGzip.length} bytes gzipped, ${snap.samplingTimeUs} us on thread`,
    );
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
