import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import type { SourceMapper } from '@datadog/pprof';
import type { Profile } from 'pprof-format';
import { heap } from './pprof-heap';
import type { SourceMaps } from './source-maps';

const gzip = promisify(zlib.gzip);

/** A profile read and encoded, not yet compressed. */
export interface Capture {
  encoded: Uint8Array;
  /** Main-thread time spent in heap.profile() + Profile.encode(), microseconds. */
  samplingTimeUs: number;
}

export interface Snapshot {
  pprofGzip: Buffer;
  /** Main-thread time spent in heap.profile() + Profile.encode(), microseconds. */
  samplingTimeUs: number;
}

/**
 * The V8 sampling heap profiler through @datadog/pprof's native binding.
 * Not node:inspector: the inspector path forces a full GC on every poll
 * (about 1 s at a 1 GB heap); the native read costs milliseconds.
 */
export class HeapSampler {
  private running = false;

  /** `sourceMaps`: maps frames of compiled code to their original source (source-maps.ts). */
  constructor(private readonly sourceMaps?: SourceMaps) {}

  start(samplingIntervalBytes: number, stackDepth: number): void {
    heap.start(samplingIntervalBytes, stackDepth);
    this.running = true;
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    heap.stop();
  }

  get isRunning(): boolean {
    return this.running;
  }

  /**
   * Reads the live-sample tree and encodes it. The profile and encode steps
   * are synchronous (measured); gzip runs on the libuv thread pool so a large
   * profile never blocks the host's event loop while it compresses.
   */
  async snapshot(startMs: number, endMs: number): Promise<Snapshot> {
    const { encoded, samplingTimeUs } = this.capture(startMs, endMs);
    return { pprofGzip: await gzip(encoded), samplingTimeUs };
  }

  /** The synchronous part of snapshot(): read and encode, no compression. */
  capture(startMs: number, endMs: number): Capture {
    const t0 = process.hrtime.bigint();
    this.sourceMaps?.startProfile();
    // @datadog/pprof calls the mapper's mappingInfo() per frame; SourceMaps
    // has that method but not the rest of its own (eager) SourceMapper class.
    const profile = heap.profile(undefined, this.sourceMaps as unknown as SourceMapper | undefined);
    renameSampleTypes(profile);
    profile.timeNanos = BigInt(endMs) * 1_000_000n;
    profile.durationNanos = BigInt(Math.max(0, endMs - startMs)) * 1_000_000n;
    const encoded = profile.encode();
    const samplingTimeUs = Number((process.hrtime.bigint() - t0) / 1000n);
    return { encoded, samplingTimeUs };
  }

  async compress(encoded: Uint8Array): Promise<Buffer> {
    return gzip(encoded);
  }
}

/**
 * @datadog/pprof names the heap sample types inuse_objects/inuse_space; the
 * heapwatch contract (ingest.proto) and the field (Cloud Profiler, Pyroscope)
 * use objects/count + space/bytes, and the collector rejects anything else
 * with INVALID_ARGUMENT. Rename in place: only two string-table entries.
 */
const SAMPLE_TYPE_NAMES: Readonly<Record<string, string>> = { inuse_objects: 'objects', inuse_space: 'space' };

export function renameSampleTypes(profile: Profile): void {
  const strings = profile.stringTable;
  for (const t of profile.sampleType) {
    const to = SAMPLE_TYPE_NAMES[strings.strings[Number(t.type)] ?? ''];
    if (to !== undefined) t.type = strings.dedup(to);
  }
}
