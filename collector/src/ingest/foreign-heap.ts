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
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import { Profile, ValueType } from 'pprof-format';
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
