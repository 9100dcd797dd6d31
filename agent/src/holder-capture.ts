import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import { threadId, Worker } from 'node:worker_threads';
import type { HolderCapture as HolderCaptureMessage } from '@heapwatch/proto/messages';
import type { HolderAnalysis, HolderOptions } from './holders';
import type { Logger } from './logger';

export interface HolderCaptureOptions {
  /** Skip the capture when V8's heap used is above this: the snapshot's pause grows with the heap. */
  maxHeapBytes: number;
  /** No capture sooner than this after the last one, whatever the collector asks. */
  cooldownMs: number;
  /** Holders sent, at most. */
  maxHolders: number;
  /** The worker reading the snapshot is terminated after this. */
  timeoutMs: number;
  log: Logger;
  /** Where the snapshot file is written (os.tmpdir()). */
  dir?: string;
}

/** The worker reads the snapshot within this much old space; a larger snapshot fails the capture, not the host. */
const WORKER_MAX_OLD_SPACE_MB = 512;

/**
 * Holder capture: when the collector asks (AgentDirective.holders, sent to
 * one instance of a service with a confirmed finding), write a heap
 * snapshot and find who holds the largest off-heap backing stores and the
 * most heap (holders.ts), in a worker thread that reads the file into typed arrays;
 * the answer goes with the next profile (IngestRequest.holders).
 *
 * The cost is the main thread's pause while V8 writes the snapshot (it
 * stops the isolate; docs/detector.md#holders has the measured pause per
 * 100 MB of heap), so it is bounded by the heap-size budget (skipped above
 * it, and the skip is sent, so the report says why there are no holders),
 * by one capture at a time and a cool-down between captures. The worker
 * and its timer are unref'd: a capture never keeps the host alive. The
 * file is removed as soon as the worker has it open.
 */
export class HolderCapture {
  private busy = false;
  private readonly asked = new Set<string>();
  private nextAllowedMs = 0;
  private answer: HolderCaptureMessage | undefined;
  private worker: Worker | undefined;
  private stopped = false;
  readonly stats = { taken: 0, skipped: 0, failed: 0, pauseMs: 0 };

  constructor(private readonly opts: HolderCaptureOptions) {}

  /** A request from the collector's directive; returns at once (the capture runs after the current tick). */
  request(captureId: string): void {
    if (this.stopped || this.busy || captureId === '' || this.asked.has(captureId)) return;
    if (this.asked.size >= 64) this.asked.clear(); // bounded; ids are per request
    this.asked.add(captureId);
    this.busy = true;
    setImmediate(() => {
      this.capture(captureId)
        .then((a) => {
          this.answer = a;
        })
        .catch((e: unknown) => this.opts.log.debug(`holder capture: ${String(e)}`))
        .finally(() => {
          this.busy = false;
        });
    }).unref();
  }

  /** The finished answer, once: the caller sends it with a profile. */
  take(): HolderCaptureMessage | undefined {
    const a = this.answer;
    this.answer = undefined;
    return a;
  }

  /** Puts an answer back when its profile could not be queued. */
  putBack(a: HolderCaptureMessage): void {
    this.answer ??= a;
  }

  stop(): void {
    this.stopped = true;
    void this.worker?.terminate().catch(() => {});
  }

  private async capture(captureId: string): Promise<HolderCaptureMessage> {
    const takenAtMs = Date.now();
    const heapUsedBytes = v8.getHeapStatistics().used_heap_size;
    const base = { captureId, takenAtMs, heapUsedBytes, maxHeapBytes: this.opts.maxHeapBytes };
    const skip = (skipped: string): HolderCaptureMessage => {
      this.stats.skipped++;
      this.opts.log.info(`holder capture skipped: ${skipped}`);
      return { ...base, skipped };
    };
    if (takenAtMs < this.nextAllowedMs) return skip(`cool-down: the last capture was less than ${Math.round(this.opts.cooldownMs / 1000)} s ago`);
    if (this.opts.maxHeapBytes === 0) return skip('holder captures are off (HEAPWATCH_HOLDER_MAX_HEAP_MB=0)');
    if (heapUsedBytes > this.opts.maxHeapBytes) {
      return skip(`heap used ${mb(heapUsedBytes)} MB is above the pause budget of ${mb(this.opts.maxHeapBytes)} MB (HEAPWATCH_HOLDER_MAX_HEAP_MB)`);
    }
    this.nextAllowedMs = takenAtMs + this.opts.cooldownMs;
    const file = path.join(this.opts.dir ?? os.tmpdir(), `heapwatch-holders-${process.pid}-${threadId}-${takenAtMs}.heapsnapshot`);
    let pauseMs = 0;
    try {
      const t0 = process.hrtime.bigint();
      v8.writeHeapSnapshot(file);
      pauseMs = Number((process.hrtime.bigint() - t0) / 1_000_000n);
      this.stats.pauseMs += pauseMs;
      const r = await this.analyze(file);
      this.stats.taken++;
      this.opts.log.info(`holder capture: ${r.analysis.holders.length} holder(s), ${r.analysis.leaves} backing stores; pause ${pauseMs} ms, read ${r.parseMs} ms`);
      return {
        ...base,
        pauseMs,
        parseMs: r.parseMs,
        leaves: r.analysis.leaves,
        offHeapBytes: r.analysis.offHeapBytes,
        unreachable: r.analysis.unreachable,
        holders: r.analysis.holders,
      };
    } catch (e) {
      this.stats.failed++;
      return { ...base, pauseMs, skipped: `failed: ${String((e as Error)?.message ?? e).slice(0, 200)}` };
    } finally {
      fs.rm(file, { force: true }, () => {});
    }
  }

  private analyze(file: string): Promise<{ analysis: HolderAnalysis; parseMs: number }> {
    return new Promise((resolve, reject) => {
      const options: Partial<HolderOptions> = { maxHolders: this.opts.maxHolders };
      // No preload in the worker (execArgv), and HEAPWATCH_ENABLED=false in
      // case NODE_OPTIONS preloads the agent there: it must not profile itself.
      const worker = new Worker(path.join(__dirname, 'holder-worker.js'), {
        workerData: { file, options },
        execArgv: [],
        env: { ...process.env, HEAPWATCH_ENABLED: 'false' },
        resourceLimits: { maxOldGenerationSizeMb: WORKER_MAX_OLD_SPACE_MB },
        stdout: true,
        stderr: true,
      });
      this.worker = worker;
      worker.unref();
      let done = false;
      const finish = (err: Error | undefined, v?: { analysis: HolderAnalysis; parseMs: number }): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.worker = undefined;
        void worker.terminate().catch(() => {});
        if (err) reject(err);
        else resolve(v!);
      };
      const timer = setTimeout(() => finish(new Error(`reading the snapshot took over ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs);
      timer.unref();
      worker.on('message', (m: { ok: boolean; analysis?: HolderAnalysis; parseMs?: number; error?: string }) => {
        if (m.ok) finish(undefined, { analysis: m.analysis!, parseMs: m.parseMs ?? 0 });
        else finish(new Error(m.error ?? 'worker failed'));
      });
      worker.on('error', (e) => finish(e));
      worker.on('exit', (code) => finish(new Error(`worker exited with code ${code}`)));
    });
  }
}

function mb(bytes: number): number {
  return Math.round(bytes / (1024 * 1024));
}
