/**
 * Heap profiles from other agents (Pyroscope SDKs, OpenTelemetry) as the
 * ingester takes them: pprof with the sample types `objects/count` and
 * `space/bytes`, in use. Node's heap profiles (@datadog/pprof, which
 * @pyroscope/nodejs uses) have them already; Go's heap profiles name them
 * `inuse_objects` and `inuse_space` (beside `alloc_*`, which heapwatch does
 * not read) and are renamed. Anything else (CPU, wall, allocations only,
 * mutex, ...) is refused with a message that says why: heapwatch stores
 * in-use heap only.
 */
import { createHash } from 'node:crypto';
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import type { IngestRequest__Output } from '@heapwatch/proto';
import { Profile, ValueType } from 'pprof-format';
import { SERVICE_LABEL } from '../store/store';
import { invalid } from './errors';
import type { Limits } from './validate';

const gunzip = promisify(zlib.gunzip);

/** The in-use sample types a foreign heap profile may carry, to heapwatch's names. */
const IN_USE: Record<string, string> = { 'inuse_objects/count': 'objects', 'inuse_space/bytes': 'space' };

export interface ForeignHeap {
  /** The pprof to ingest, gzipped or not. */
  pprof: Buffer;
  /** The profile's own time_nanos and duration_nanos, in ms (0 when absent). */
  timeMs: number;
  durationMs: number;
}

/**
 * @pyroscope/nodejs names each function `file:function:line` (its file
 * shortened, sometimes empty); split back, the function names are names
 * and the frames have files, which the site rule (model/site.ts) needs to
 * find the user's code.
 */
const NODE_NAME = /^(.*?):(\(anonymous[^)]*\)|[^:]*):(\d+)$/;

function splitNodeNames(p: Profile): void {
  const strings = p.stringTable.strings;
  for (const f of p.function) {
    const file = strings[Number(f.filename)] ?? '';
    const m = NODE_NAME.exec(strings[Number(f.name)] ?? '');
    if (!m || (file !== '' && !m[1]!.endsWith(file.replace(/^.*[\\/]/, '')))) continue;
    f.filename = p.stringTable.dedup(m[1]!);
    f.name = p.stringTable.dedup(m[2]!);
    f.systemName = f.name;
    f.startLine = Number(m[3]);
  }
}

/**
 * The pprof to ingest, or an INVALID_ARGUMENT error. `nodeNames`: the
 * profile comes from @pyroscope/nodejs (spyName `nodespy`).
 */
export async function foreignHeapProfile(bytes: Buffer, limits: Limits, opts: { nodeNames?: boolean } = {}): Promise<ForeignHeap> {
  if (bytes.length === 0) throw invalid('the profile is empty');
  if (bytes.length > limits.maxCompressedBytes) throw invalid(`the profile is ${bytes.length} bytes, over the ${limits.maxCompressedBytes}-byte limit`);
  let raw = bytes;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      raw = await gunzip(bytes, { maxOutputLength: limits.maxProfileBytes });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw invalid(`the profile is over the ${limits.maxProfileBytes}-byte limit once decompressed`);
      throw invalid(`the profile is not valid gzip: ${(err as Error).message}`);
    }
  }
  let p: Profile;
  try {
    p = Profile.decode(raw);
  } catch (err) {
    throw invalid(`the profile does not decode as pprof: ${(err as Error).message}`);
  }
  const strings = p.stringTable.strings;
  const types = p.sampleType.map((t) => `${strings[Number(t.type)] ?? '?'}/${strings[Number(t.unit)] ?? '?'}`);
  const timeMs = Math.max(0, Math.round(Number(p.timeNanos) / 1e6));
  const durationMs = Math.max(0, Math.round(Number(p.durationNanos) / 1e6));
  const ours = types.includes('objects/count') && types.includes('space/bytes');
  const go = types.includes('inuse_objects/count') && types.includes('inuse_space/bytes');
  if (ours || go) {
    if (ours && !opts.nodeNames) return { pprof: bytes, timeMs, durationMs };
    if (go) {
      p.sampleType = p.sampleType.map((t, i) => {
        const name = IN_USE[types[i]!];
        return name ? new ValueType({ type: p.stringTable.dedup(name), unit: t.unit }) : t;
      });
    }
    if (opts.nodeNames) splitNodeNames(p);
    return { pprof: Buffer.from(p.encode()), timeMs, durationMs };
  }
  throw invalid(
    `heapwatch stores in-use heap profiles only (sample types objects/count and space/bytes, or Go's inuse_objects/count and inuse_space/bytes); ` +
      `this profile has [${types.join(', ')}] and is not stored`,
  );
}

/** A foreign profile's series: its service and labels (Pyroscope's app name and tags, OTel's resource attributes). */
export interface Series {
  service: string;
  labels: Record<string, string>;
}

/** What sent the profile, for the instance's runtime_version and agent_version. */
export interface ForeignSource {
  runtime: string;
  agent: string;
}

/** Labels that name the host or pod, first found wins: Pyroscope's tags, then OpenTelemetry's resource attributes. */
const HOST_LABELS = ['hostname', 'host', 'pod', 'instance', 'host.name', 'k8s.pod.name', 'service.instance.id'];

function hash(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}

/**
 * The ingester's request for one foreign heap profile. A foreign profile
 * names no process: its instance is its series (the service and its
 * labels), so two series never share one, with the host label (if any) as
 * the hostname; its id is a hash of the series, the window and the bytes,
 * so a retried upload is stored once. No process memory and no GC
 * information come with it (docs/integrations.md).
 */
export function foreignRequest(series: Series, pprof: Buffer, startMs: number, endMs: number, source: ForeignSource): IngestRequest__Output {
  // Pyroscope's own labels (__session_id__, __name__, ...) say nothing about the workload.
  const labels = Object.fromEntries(Object.entries(series.labels).filter(([k]) => !k.startsWith('__') && k !== SERVICE_LABEL));
  const seriesKey = hash(series.service, JSON.stringify(Object.entries(labels).sort()));
  const host = HOST_LABELS.map((k) => labels[k]).find(Boolean) ?? source.agent;
  return {
    profileId: hash(seriesKey, String(startMs), String(endMs), pprof).slice(0, 32),
    service: series.service,
    labels,
    instance: { hostname: `${host}#${seriesKey.slice(0, 12)}`, pid: 1, processStartTimeMs: 1, threadId: 0, runtimeVersion: source.runtime, agentVersion: source.agent },
    startTimeMs: startMs,
    endTimeMs: endMs,
    pprofGzip: pprof,
    memory: null,
    agent: null,
    gc: null,
    // A foreign agent takes no directives from heapwatch.
    inliningDisabled: false,
    jobs: null,
    holders: null,
  };
}
