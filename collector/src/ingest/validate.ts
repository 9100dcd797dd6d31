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
import { readProfile, type DecodedProfile, type Int } from './pprof-reader';

const gunzip = promisify(zlib.gunzip);

export interface Limits {
  /** Largest pprof_gzip accepted, in bytes. */
  maxCompressedBytes: number;
  /** Largest pprof after gunzip, in bytes (a gzip bomb stops here). */
  maxProfileBytes: number;
  /** Most samples in one profile. */
  maxSamples: number;
  /** Deepest stack, in frames. */
  maxStackDepth: number;
  /** Most labels on one profile. */
  maxLabels: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxCompressedBytes: 16 << 20,
  maxProfileBytes: 64 << 20,
  maxSamples: 200_000,
  maxStackDepth: 512,
  maxLabels: 64,
};

const MAX_NAME_LENGTH = 256;
/** A snapshot time more than this far in the future is a broken clock. */
const MAX_CLOCK_SKEW_MS = 24 * 3600_000;

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
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(k) || k.length > MAX_NAME_LENGTH) {
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
  if (req.endTimeMs > Date.now() + MAX_CLOCK_SKEW_MS) throw invalid('end_time_ms is more than a day in the future');
  if (req.pprofGzip.length === 0) throw invalid('pprof_gzip is empty');
  if (req.pprofGzip.length > limits.maxCompressedBytes) {
    throw invalid(`pprof_gzip is ${req.pprofGzip.length} bytes, over the ${limits.maxCompressedBytes}-byte limit`);
  }
}

function checkName(field: string, value: string): void {
  if (!value) throw invalid(`${field} is required`);
  if (value.length > MAX_NAME_LENGTH) throw invalid(`${field} is longer than ${MAX_NAME_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f]/.test(value)) throw invalid(`${field} contains control characters`);
}

/** Gunzips (plain pprof is accepted too) and decodes, within the limits. */
export async function decodeProfile(bytes: Buffer, limits: Limits): Promise<ValidProfile> {
  let raw = bytes;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      raw = await gunzip(bytes, { maxOutputLength: limits.maxProfileBytes });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ERR_BUFFER_TOO_LARGE') {
        throw invalid(`pprof is over the ${limits.maxProfileBytes}-byte limit once decompressed`);
      }
      throw invalid(`pprof_gzip is not valid gzip: ${(err as Error).message}`);
    }
  } else if (bytes.length > limits.maxProfileBytes) {
    throw invalid(`pprof is over the ${limits.maxProfileBytes}-byte limit`);
  }
  let profile: DecodedProfile;
  try {
    profile = readProfile(raw);
  } catch (err) {
    throw invalid(`pprof does not decode as perftools.profiles.Profile: ${(err as Error).message}`);
  }
  return checkProfile(profile, limits);
}

function checkProfile(p: DecodedProfile, limits: Limits): ValidProfile {
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
  if (p.sampleCount > limits.maxSamples) {
    throw invalid(`${p.sampleCount} samples, over the ${limits.maxSamples} limit`);
  }

  p.function.forEach((f, i) => {
    if (Number(f.id) === 0) throw invalid(`function[${i}] has id 0`);
    str(f.name, `function ${f.id} name`);
    str(f.systemName, `function ${f.id} system_name`);
    str(f.filename, `function ${f.id} filename`);
  });
  const functionIndex = new IdIndex(p.function.map((f) => f.id));
  const { locationId, lineStart, lineFunctionId } = p;
  const lineFunction = new Int32Array(lineFunctionId.length);
  for (let i = 0; i < p.locationCount; i++) {
    if (Number(locationId[i]) === 0) throw invalid(`location[${i}] has id 0`);
    for (let j = lineStart[i]!; j < lineStart[i + 1]!; j++) {
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
  for (let i = 0; i < p.sampleCount; i++) {
    const valueCount = valueStart[i + 1]! - valueStart[i]!;
    if (valueCount !== types.length) {
      throw invalid(`sample[${i}] has ${valueCount} values for ${types.length} sample types`);
    }
    const depth = locationStart[i + 1]! - locationStart[i]!;
    if (depth > limits.maxStackDepth) {
      throw invalid(`sample[${i}] is ${depth} frames deep, over the ${limits.maxStackDepth} limit`);
    }
    for (let k = locationStart[i]!; k < locationStart[i + 1]!; k++) {
      const loc = locationIndex.get(locs[k]!);
      if (loc < 0) throw invalid(`sample[${i}] refers to location ${locs[k]}, which the profile does not define`);
      frameLocation[k] = loc;
    }
    for (let k = valueStart[i]!; k < valueStart[i + 1]!; k++) {
      if (values[k]! < 0) throw invalid(`sample[${i}] has a negative value; heap profiles count in-use amounts`);
    }
  }
  return { profile: p, objectsIndex, bytesIndex, frameLocation, lineFunction };
}
