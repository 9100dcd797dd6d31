/**
 * Turns the untrusted bytes of an IngestRequest into a decoded pprof that
 * the rest of the collector may index without checking again. Every way a
 * profile can be wrong ends here, as INVALID_ARGUMENT with a message that
 * says what is wrong.
 */
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import type { IngestRequest__Output } from '@heapwatch/proto';
import { invalid } from './errors';
import { IdIndex } from './id-index';
import { PprofLimitError, readProfile, type DecodedProfile, type Int, type ReadLimits } from './pprof-reader';

const gunzip = promisify(zlib.gunzip);

/**
 * What one request may hold. Every count is checked while the pprof is read,
 * before anything is allocated for it (pprof-reader.ts), so a request costs
 * at most what these allow. docs/security.md lists them with their defaults
 * and what a realistic profile needs; `heapwatch serve --limit name=value`
 * changes one.
 */
export interface Limits extends ReadLimits {
  /** Largest pprof_gzip accepted, in bytes. */
  maxCompressedBytes: number;
  /** Largest pprof after gunzip, in bytes (a gzip bomb stops here). */
  maxProfileBytes: number;
  /**
   * Most times its gzipped size a pprof may inflate to (but always up to
   * 4 MiB): real profiles inflate 2-10x, a gzip bomb 1000x. It keeps the
   * CPU a request costs in proportion to the bytes its sender paid for.
   */
  maxInflateRatio: number;
  /** Most labels on one profile (the request's labels, not the samples'). */
  maxLabels: number;
  /**
   * Oldest end_time_ms accepted, as an age in ms; 0 = no bound but the
   * year 2000. The collector sets it to the retention plus a day: a profile
   * older than that would be deleted on arrival.
   */
  maxAgeMs: number;
  /** Most job types (and queue depths) in one request's job counters. */
  maxJobTypes: number;
}

/**
 * A 5,000-stack heap profile of a real worker (bench/lib/profiles.mjs) has
 * ~5,000 samples, ~180,000 frames, ~8,000 locations, functions and strings
 * and ~1 MiB of pprof: these leave it 10x and more room, and bound the
 * worst request to ~0.2 s of decoding and ~100 MiB (docs/security.md).
 */
export const DEFAULT_LIMITS: Limits = {
  maxCompressedBytes: 16 << 20,
  maxProfileBytes: 64 << 20,
  maxInflateRatio: 64,
  maxLabels: 64,
  maxAgeMs: 0,
  maxJobTypes: 1000,
  maxStrings: 500_000,
  maxStringBytes: 32 << 20,
  maxFunctions: 200_000,
  maxLocations: 200_000,
  maxLines: 1_000_000,
  maxLinesPerLocation: 64,
  maxSamples: 200_000,
  maxSampleTypes: 16,
  maxLabelsPerSample: 64,
  maxStackDepth: 512,
  maxFrames: 2_000_000,
};

/** Longest service, profile id, host name, label key or label value. */
export const MAX_NAME_LENGTH = 256;
/** What a label key may look like. */
export const LABEL_KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
/** maxInflateRatio never refuses a pprof of this size or less. */
const MIN_INFLATE_BYTES = 4 << 20;
/** A snapshot time more than this far in the future is a broken clock. */
const MAX_CLOCK_SKEW_MS = 24 * 3600_000;
/** No heap profiler ran before 2000; older times are a broken clock or a unit mistake (seconds for ms). */
const MIN_TIME_MS = Date.UTC(2000, 0, 1);
/** Lines are UInt32 in the store. */
const MAX_LINE = 0xffffffff;

/** Indices of the two sample types heapwatch reads, into Sample.value. */
export interface ValidProfile {
  profile: DecodedProfile;
  objectsIndex: number;
  bytesIndex: number;
  /**
   * The id lookups validation had to make anyway, kept for normalisation:
   * for each entry of `profile.locationIds`, the position of its location;
   * for each line, the position of its function (last definitions win).
   */
  frameLocation: Int32Array;
  lineFunction: Int32Array;
}

export function validateEnvelope(req: IngestRequest__Output, limits: Limits): void {
  checkName('service', req.service);
  checkName('profile_id', req.profileId);
  const labels = Object.entries(req.labels ?? {});
  if (labels.length > limits.maxLabels) throw invalid(`too many labels: ${labels.length} > ${limits.maxLabels}`);
  for (const [k, v] of labels) {
    if (!LABEL_KEY.test(k) || k.length > MAX_NAME_LENGTH) {
      throw invalid(`label key ${JSON.stringify(k)} must match [A-Za-z_][A-Za-z0-9_.-]* and be at most ${MAX_NAME_LENGTH} characters`);
    }
    if (v.length > MAX_NAME_LENGTH) throw invalid(`label ${k} is longer than ${MAX_NAME_LENGTH} characters`);
  }
  const inst = req.instance;
  if (!inst) throw invalid('instance is required');
  checkName('instance.hostname', inst.hostname);
  if (!(inst.pid > 0)) throw invalid('instance.pid is required');
  if (!(inst.processStartTimeMs > 0)) throw invalid('instance.process_start_time_ms is required');
  if (!(req.endTimeMs > 0)) throw invalid('end_time_ms is required');
  if (req.startTimeMs > req.endTimeMs) throw invalid('start_time_ms is after end_time_ms');
  const now = Date.now();
  if (req.endTimeMs > now + MAX_CLOCK_SKEW_MS) throw invalid('end_time_ms is more than a day in the future');
  const oldest = limits.maxAgeMs > 0 ? now - limits.maxAgeMs : MIN_TIME_MS;
  if (req.endTimeMs < oldest) {
    throw invalid(`end_time_ms ${req.endTimeMs} is before ${new Date(oldest).toISOString()}, ${limits.maxAgeMs > 0 ? 'outside the retention' : 'the earliest time accepted'}`);
  }
  if (inst.processStartTimeMs > req.endTimeMs + MAX_CLOCK_SKEW_MS) {
    throw invalid('instance.process_start_time_ms is more than a day after end_time_ms');
  }
  if (req.jobs) validateJobs(req.jobs, limits);
  if (req.pprofGzip.length === 0) throw invalid('pprof_gzip is empty');
  if (req.pprofGzip.length > limits.maxCompressedBytes) {
    throw invalid(`pprof_gzip is ${req.pprofGzip.length} bytes, over the ${limits.maxCompressedBytes}-byte limit`);
  }
}

/** The job counters (IngestRequest.jobs): bounded in count, names the store can keep, counts below 2^53. */
function validateJobs(jobs: NonNullable<IngestRequest__Output['jobs']>, limits: Limits): void {
  const types = jobs.types ?? [];
  const queues = jobs.queues ?? [];
  if (types.length > limits.maxJobTypes) throw invalid(`too many job types: ${types.length} > ${limits.maxJobTypes} (maxJobTypes)`);
  if (queues.length > limits.maxJobTypes) throw invalid(`too many queue depths: ${queues.length} > ${limits.maxJobTypes} (maxJobTypes)`);
  for (const t of types) {
    checkOptionalName('jobs.types.queue', t.queue);
    checkOptionalName('jobs.types.name', t.name);
    for (const [k, v] of [['completed', t.completed], ['failed', t.failed], ['run_time_us', t.runTimeUs], ['wait_time_ms', t.waitTimeMs], ['waited', t.waited]] as const) {
      if (!(Number.isSafeInteger(v) && v >= 0)) throw invalid(`jobs.types.${k} must be an integer in [0, 2^53)`);
    }
  }
  if (!(Number.isSafeInteger(jobs.droppedJobs) && jobs.droppedJobs >= 0)) throw invalid('jobs.dropped_jobs must be an integer in [0, 2^53)');
  for (const q of queues) {
    checkOptionalName('jobs.queues.queue', q.queue);
    if (!(Number.isSafeInteger(q.waiting) && q.waiting >= 0)) throw invalid('jobs.queues.waiting must be an integer in [0, 2^53)');
  }
}

/** A name that may be empty. */
function checkOptionalName(field: string, value: string): void {
  if (value) checkName(field, value);
}

function checkName(field: string, value: string): void {
  if (!value) throw invalid(`${field} is required`);
  if (value.length > MAX_NAME_LENGTH) throw invalid(`${field} is longer than ${MAX_NAME_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f]/.test(value)) throw invalid(`${field} contains control characters`);
}

const GUNZIP_CHUNK_BYTES = 256 * 1024;

/** Gunzips (plain pprof is accepted too) and decodes, within the limits. */
export async function decodeProfile(bytes: Buffer, limits: Limits): Promise<ValidProfile> {
  let raw = bytes;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    const byRatio = Math.max(MIN_INFLATE_BYTES, limits.maxInflateRatio * bytes.length);
    const max = Math.min(limits.maxProfileBytes, byRatio);
    try {
      // Output in 256 KiB pieces, not zlib's 16 KiB: a 430 KiB profile
      // came back in 28 callbacks on the event loop, 2.0-2.8 ms of CPU a
      // profile against 1.2-1.4 ms (bench/results/REPORT.md, 3b).
      raw = await gunzip(bytes, { maxOutputLength: max, chunkSize: GUNZIP_CHUNK_BYTES });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ERR_BUFFER_TOO_LARGE') {
        throw invalid(
          max < limits.maxProfileBytes
            ? `pprof inflates past ${max} bytes, over ${limits.maxInflateRatio} times its gzipped size (maxInflateRatio)`
            : `pprof is over the ${limits.maxProfileBytes}-byte limit once decompressed (maxProfileBytes)`,
        );
      }
      throw invalid(`pprof_gzip is not valid gzip: ${(err as Error).message}`);
    }
  } else if (bytes.length > limits.maxProfileBytes) {
    throw invalid(`pprof is over the ${limits.maxProfileBytes}-byte limit`);
  }
  let profile: DecodedProfile;
  try {
    profile = readProfile(raw, limits);
  } catch (err) {
    if (err instanceof PprofLimitError) throw invalid(`pprof is too large: ${err.message}`);
    throw invalid(`pprof does not decode as perftools.profiles.Profile: ${(err as Error).message}`);
  }
  return checkProfile(profile);
}

function checkProfile(p: DecodedProfile): ValidProfile {
  const strings = p.strings;
  const str = (i: Int, what: string): string => {
    const s = strings[Number(i)];
    if (s === undefined) throw invalid(`${what} refers to string ${i}, past the string table (${strings.length})`);
    return s;
  };
  if (strings.length === 0 || strings[0] !== '') throw invalid('string table must start with the empty string');

  let objectsIndex = -1;
  let bytesIndex = -1;
  const types = p.sampleTypes.map((t, i) => {
    const type = `${str(t.type, `sample_type[${i}].type`)}/${str(t.unit, `sample_type[${i}].unit`)}`;
    if (type === 'objects/count') objectsIndex = i;
    if (type === 'space/bytes') bytesIndex = i;
    return type;
  });
  if (objectsIndex < 0 || bytesIndex < 0) {
    throw invalid(`sample types must include objects/count and space/bytes; got [${types.join(', ')}]`);
  }

  p.function.forEach((f, i) => {
    if (!(f.id > 0)) throw invalid(`function[${i}] has id ${f.id}; ids are positive`);
    if (!(f.startLine >= 0 && f.startLine <= MAX_LINE)) throw invalid(`function ${f.id} has start_line ${f.startLine}`);
    str(f.name, `function ${f.id} name`);
    str(f.systemName, `function ${f.id} system_name`);
    str(f.filename, `function ${f.id} filename`);
  });
  const functionIndex = new IdIndex(p.function.map((f) => f.id));
  const { locationId, lineStart, lineFunctionId } = p;
  const lineFunction = new Int32Array(lineFunctionId.length);
  const { lineNumber } = p;
  for (let i = 0; i < p.locationCount; i++) {
    if (!(locationId[i]! > 0)) throw invalid(`location[${i}] has id ${locationId[i]}; ids are positive`);
    for (let j = lineStart[i]!; j < lineStart[i + 1]!; j++) {
      const line = lineNumber[j]!;
      if (!(line >= 0 && line <= MAX_LINE)) throw invalid(`location ${locationId[i]} has line ${line}`);
      const fn = functionIndex.get(lineFunctionId[j]!);
      if (fn < 0) {
        throw invalid(`location ${locationId[i]} refers to function ${lineFunctionId[j]}, which the profile does not define`);
      }
      lineFunction[j] = fn;
    }
  }
  const locationIndex = new IdIndex(locationId);
  const { locationStart, locationIds: locs, valueStart, values } = p;
  const frameLocation = new Int32Array(locs.length);
  // The store sums a profile's values per stack and in all: the sums must stay exact too.
  let objects = 0;
  let bytes = 0;
  for (let i = 0; i < p.sampleCount; i++) {
    const valueCount = valueStart[i + 1]! - valueStart[i]!;
    if (valueCount !== types.length) {
      throw invalid(`sample[${i}] has ${valueCount} values for ${types.length} sample types`);
    }
    for (let k = locationStart[i]!; k < locationStart[i + 1]!; k++) {
      const loc = locationIndex.get(locs[k]!);
      if (loc < 0) throw invalid(`sample[${i}] refers to location ${locs[k]}, which the profile does not define`);
      frameLocation[k] = loc;
    }
    for (let k = valueStart[i]!; k < valueStart[i + 1]!; k++) {
      if (values[k]! < 0) throw invalid(`sample[${i}] has a negative value; heap profiles count in-use amounts`);
    }
    objects += values[valueStart[i]! + objectsIndex]!;
    bytes += values[valueStart[i]! + bytesIndex]!;
  }
  if (objects > Number.MAX_SAFE_INTEGER || bytes > Number.MAX_SAFE_INTEGER) {
    throw invalid('the sample values add up to 2^53 or more; heapwatch keeps sums below 2^53 exactly and refuses larger ones');
  }
  return { profile: p, objectsIndex, bytesIndex, frameLocation, lineFunction };
}
