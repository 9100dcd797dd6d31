/**
 * A protobuf reader for exactly the parts of perftools.profiles.Profile that
 * the collector uses, into flat arrays, within limits.
 *
 * Why not pprof-format's `Profile.decode`: it builds an object per sample,
 * location and line and a Buffer view per field, and measured here it took
 * ~25 ms for one 5,000-stack heap profile, a quarter of the whole ingest
 * cost; this reader takes ~2 ms. Fields the collector does not read
 * (mapping, labels, comments, times) are skipped, not decoded.
 *
 * Bounded: the bytes are read twice. The first pass allocates nothing: it
 * counts strings and their bytes, functions, locations and their lines,
 * samples, their frames, values and labels, and stops at the first count
 * over its limit (`ReadLimits`). Only then does the second pass allocate,
 * each array at its exact size. Without the first pass a 65 KB gzipped
 * request that inflates to 64 MiB of 4-byte functions became 16.7 million
 * objects, 3 GB and 25 s of a blocked event loop before any count was seen.
 *
 * 64-bit ids come back as numbers when they are safe integers and as
 * bigints otherwise, as pprof-format returns them, so ids compare and print
 * the same way. Sample values past 2^53 are refused: no heap holds 8 PiB,
 * and as doubles they would be stored wrong (2^63 - 1 as 2^63).
 */

export type Int = number | bigint;

export interface DecodedProfile {
  strings: string[];
  sampleTypes: { type: Int; unit: Int }[];
  function: { id: Int; name: Int; systemName: Int; filename: Int; startLine: Int }[];
  /**
   * Locations, flat (no object per location or line: ~5,000 of each per
   * profile were a good part of the collector's garbage). Location k has id
   * `locationId[k]` and lines `lineStart[k] .. lineStart[k+1]` of
   * `lineFunctionId`/`lineNumber`.
   */
  locationCount: number;
  locationId: Int[];
  lineStart: Uint32Array;
  lineFunctionId: Int[];
  lineNumber: Int[];
  /** Sample i has location ids `locationIds[locationStart[i] .. locationStart[i+1])`, likewise values. */
  sampleCount: number;
  locationStart: Uint32Array;
  locationIds: ArrayLike<Int>;
  valueStart: Uint32Array;
  /** Every value is a number (a safe integer, possibly negative). */
  values: Float64Array;
}

/** Most of each thing one profile may hold; the first pass stops at the first one exceeded. */
export interface ReadLimits {
  /** Entries in the string table. */
  maxStrings: number;
  /** Bytes of all strings together. */
  maxStringBytes: number;
  maxFunctions: number;
  maxLocations: number;
  /** Lines of all locations together. */
  maxLines: number;
  /** Lines of one location (inlined frames). */
  maxLinesPerLocation: number;
  maxSamples: number;
  /** Sample types, and so values in one sample. */
  maxSampleTypes: number;
  /** Labels on one sample. */
  maxLabelsPerSample: number;
  /** Frames (location ids) in one sample. */
  maxStackDepth: number;
  /** Frames of all samples together. */
  maxFrames: number;
}

export class PprofDecodeError extends Error {}

/** A profile over one of its `ReadLimits`; the message names the limit. */
export class PprofLimitError extends PprofDecodeError {}

/**
 * Sample location ids go into a typed array: as JS arrays they were
 * megabytes of heap per profile, and the collector spent a quarter of its
 * main thread in GC. An id past 2^53 (a bigint) cannot be held in one, so
 * the profile is read again with a JS array (NEEDS_BIGINT).
 */
const NEEDS_BIGINT = new Error('a 64-bit id past 2^53');

interface Sink {
  push(v: Int): void;
  readonly length: number;
}

/** A preallocated typed array; counting made its size exact. */
class Numbers implements Sink {
  readonly a: Float64Array;
  length = 0;
  constructor(
    size: number,
    private readonly onBig: () => never,
  ) {
    this.a = new Float64Array(size);
  }
  push(v: Int): void {
    if (typeof v !== 'number') this.onBig();
    this.a[this.length++] = v;
  }
}

const TWO_32 = 4294967296;

class Reader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  /** An unsigned or two's-complement signed 64-bit varint. */
  varint(): Int {
    const buf = this.buf;
    let pos = this.pos;
    let b = buf[pos++]!;
    let lo = b & 0x7f;
    let hi = 0;
    if (b >= 0x80) {
      // The low 28 bits fit in a small integer; past that, two 32-bit halves.
      for (let shift = 7; shift < 28 && b >= 0x80; shift += 7) {
        b = buf[pos++]!;
        lo |= (b & 0x7f) << shift;
      }
      if (b >= 0x80) {
        b = buf[pos++]!;
        lo = (lo | ((b & 0x0f) << 28)) >>> 0;
        hi = (b & 0x70) >> 4;
        for (let shift = 3; b >= 0x80; shift += 7) {
          if (shift > 31) throw new PprofDecodeError('varint is longer than 10 bytes');
          b = buf[pos++]!;
          hi = (hi | ((b & 0x7f) << shift)) >>> 0;
        }
      }
    }
    this.pos = pos;
    if (pos > this.end || b === undefined) throw new PprofDecodeError('truncated varint');
    if (hi === 0) return lo;
    if (hi & 0x80000000) {
      // A negative int64 (ten bytes): only value fields carry one.
      return -((~hi >>> 0) * TWO_32 + (~lo >>> 0) + 1);
    }
    if (hi < 0x200000) return hi * TWO_32 + lo;
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  length(): number {
    const n = this.varint();
    if (typeof n !== 'number' || n < 0 || this.pos + n > this.end) {
      throw new PprofDecodeError(`length ${String(n)} runs past the end of the message`);
    }
    return n;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2: {
        const n = this.length(); // before reading pos: length() moves it
        this.pos += n;
        return;
      }
      case 5:
        this.pos += 4;
        break;
      default:
        throw new PprofDecodeError(`invalid wire type ${wireType}`);
    }
    if (this.pos > this.end) throw new PprofDecodeError('truncated field');
  }

  /** A repeated scalar, packed (wire type 2) or not (wire type 0). */
  repeated(wireType: number, out: Sink): void {
    if (wireType === 0) {
      out.push(this.varint());
      return;
    }
    if (wireType !== 2) throw new PprofDecodeError(`invalid wire type ${wireType} for a repeated integer`);
    const n = this.length();
    const end = this.pos + n;
    const buf = this.buf;
    // Most ids and many values are below 2^14: one or two bytes, read here
    // without the general path (the ~180k location ids of a 5,000-stack
    // profile made this the reader's hottest loop).
    while (this.pos < end) {
      const b0 = buf[this.pos]!;
      if (b0 < 0x80) {
        out.push(b0);
        this.pos++;
        continue;
      }
      const b1 = buf[this.pos + 1]!;
      if (b1 < 0x80 && this.pos + 1 < end) {
        out.push((b0 & 0x7f) | (b1 << 7));
        this.pos += 2;
        continue;
      }
      out.push(this.varint());
    }
    if (this.pos !== end) throw new PprofDecodeError('packed field overruns its length');
  }

  /** How many integers a repeated scalar field holds, read past without decoding them. */
  countRepeated(wireType: number): number {
    if (wireType === 0) {
      this.varint();
      return 1;
    }
    if (wireType !== 2) throw new PprofDecodeError(`invalid wire type ${wireType} for a repeated integer`);
    const n = this.length();
    const buf = this.buf;
    let count = 0;
    // Every varint ends with the one byte of it below 0x80.
    for (let i = this.pos, end = this.pos + n; i < end; i++) if (buf[i]! < 0x80) count++;
    this.pos += n;
    return count;
  }

  sub(): Reader {
    const n = this.length();
    const r = new Reader(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }

  tag(): [field: number, wireType: number] {
    const t = this.varint();
    if (typeof t !== 'number') throw new PprofDecodeError('invalid tag');
    return [Math.floor(t / 8), t % 8];
  }
}

function scalar(r: Reader, wireType: number): Int {
  if (wireType !== 0) throw new PprofDecodeError(`invalid wire type ${wireType} for an integer`);
  return r.varint();
}

interface Counts {
  strings: number;
  stringBytes: number;
  sampleTypes: number;
  functions: number;
  locations: number;
  lines: number;
  samples: number;
  frames: number;
  values: number;
}

function over(limits: ReadLimits, name: keyof ReadLimits, what: string): never {
  throw new PprofLimitError(`${what}, over the limit of ${limits[name]} (${name})`);
}

/** The first pass: counts what the second will allocate, and stops at the first limit exceeded. */
function count(buf: Uint8Array, limits: ReadLimits): Counts {
  const c: Counts = { strings: 0, stringBytes: 0, sampleTypes: 0, functions: 0, locations: 0, lines: 0, samples: 0, frames: 0, values: 0 };
  const r = new Reader(buf, 0, buf.length);
  while (r.pos < r.end) {
    const [field, wt] = r.tag();
    switch (field) {
      case 1:
        if (wt !== 2) throw new PprofDecodeError('sample_type is not a message');
        r.skip(wt);
        if (++c.sampleTypes > limits.maxSampleTypes) over(limits, 'maxSampleTypes', 'more sample types');
        break;
      case 2: {
        if (wt !== 2) throw new PprofDecodeError('sample is not a message');
        const m = r.sub();
        let depth = 0;
        let values = 0;
        let labels = 0;
        while (m.pos < m.end) {
          const [f, w] = m.tag();
          if (f === 1) depth += m.countRepeated(w);
          else if (f === 2) values += m.countRepeated(w);
          else {
            if (f === 3) labels++;
            m.skip(w);
          }
        }
        const i = c.samples;
        if (++c.samples > limits.maxSamples) over(limits, 'maxSamples', 'more samples');
        if (depth > limits.maxStackDepth) over(limits, 'maxStackDepth', `sample[${i}] is ${depth} frames deep`);
        if (values > limits.maxSampleTypes) over(limits, 'maxSampleTypes', `sample[${i}] has ${values} values`);
        if (labels > limits.maxLabelsPerSample) over(limits, 'maxLabelsPerSample', `sample[${i}] has ${labels} labels`);
        if ((c.frames += depth) > limits.maxFrames) over(limits, 'maxFrames', 'more frames in all samples');
        c.values += values;
        break;
      }
      case 4: {
        if (wt !== 2) throw new PprofDecodeError('location is not a message');
        const m = r.sub();
        let lines = 0;
        while (m.pos < m.end) {
          const [f, w] = m.tag();
          if (f === 4) {
            if (w !== 2) throw new PprofDecodeError('line is not a message');
            lines++;
          }
          m.skip(w);
        }
        const i = c.locations;
        if (++c.locations > limits.maxLocations) over(limits, 'maxLocations', 'more locations');
        if (lines > limits.maxLinesPerLocation) over(limits, 'maxLinesPerLocation', `location[${i}] has ${lines} lines`);
        if ((c.lines += lines) > limits.maxLines) over(limits, 'maxLines', 'more lines in all locations');
        break;
      }
      case 5:
        if (wt !== 2) throw new PprofDecodeError('function is not a message');
        r.skip(wt);
        if (++c.functions > limits.maxFunctions) over(limits, 'maxFunctions', 'more functions');
        break;
      case 6: {
        if (wt !== 2) throw new PprofDecodeError('string_table entry is not a string');
        const n = r.length();
        r.pos += n;
        if (++c.strings > limits.maxStrings) over(limits, 'maxStrings', 'more strings');
        if ((c.stringBytes += n) > limits.maxStringBytes) over(limits, 'maxStringBytes', 'more bytes of strings');
        break;
      }
      default:
        r.skip(wt);
    }
  }
  if (r.pos !== r.end) throw new PprofDecodeError('message overruns the buffer');
  return c;
}

/** Decodes `buf`, or throws PprofDecodeError (PprofLimitError when a limit is exceeded). */
export function readProfile(buf: Uint8Array, limits: ReadLimits): DecodedProfile {
  const bytes = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const counts = count(bytes, limits);
  try {
    return read(bytes, counts, true);
  } catch (err) {
    if (err !== NEEDS_BIGINT) throw err;
    return read(bytes, counts, false);
  }
}

const bigValue = (): never => {
  throw new PprofDecodeError('a sample value is 2^53 or more; heapwatch keeps values below 2^53 exactly and refuses larger ones');
};
const bigId = (): never => {
  throw NEEDS_BIGINT;
};

function read(bytes: Buffer, c: Counts, typed: boolean): DecodedProfile {
  const locationIds: Sink = typed ? new Numbers(c.frames, bigId) : [];
  const values = new Numbers(c.values, bigValue);
  const p: DecodedProfile = {
    strings: [],
    sampleTypes: [],
    function: [],
    locationCount: 0,
    locationId: [],
    lineStart: new Uint32Array(c.locations + 1),
    lineFunctionId: [],
    lineNumber: [],
    sampleCount: 0,
    locationStart: new Uint32Array(c.samples + 1),
    locationIds: [],
    valueStart: new Uint32Array(c.samples + 1),
    values: values.a,
  };
  const r = new Reader(bytes, 0, bytes.length);
  while (r.pos < r.end) {
    const [field, wt] = r.tag();
    switch (field) {
      case 1: {
        const m = r.sub();
        const vt: { type: Int; unit: Int } = { type: 0, unit: 0 };
        while (m.pos < m.end) {
          const [f, w] = m.tag();
          if (f === 1) vt.type = scalar(m, w);
          else if (f === 2) vt.unit = scalar(m, w);
          else m.skip(w);
        }
        p.sampleTypes.push(vt);
        break;
      }
      case 2: {
        const m = r.sub();
        while (m.pos < m.end) {
          const [f, w] = m.tag();
          if (f === 1) m.repeated(w, locationIds);
          else if (f === 2) m.repeated(w, values);
          else m.skip(w);
        }
        p.sampleCount++;
        p.locationStart[p.sampleCount] = locationIds.length;
        p.valueStart[p.sampleCount] = values.length;
        break;
      }
      case 4: {
        const m = r.sub();
        let id: Int = 0;
        while (m.pos < m.end) {
          const [f, w] = m.tag();
          if (f === 1) id = scalar(m, w);
          else if (f === 4) {
            const l = m.sub();
            let functionId: Int = 0;
            let line: Int = 0;
            while (l.pos < l.end) {
              const [lf, lw] = l.tag();
              if (lf === 1) functionId = scalar(l, lw);
              else if (lf === 2) line = scalar(l, lw);
              else l.skip(lw);
            }
            p.lineFunctionId.push(functionId);
            p.lineNumber.push(line);
          } else m.skip(w);
        }
        p.locationId.push(id);
        p.locationCount++;
        p.lineStart[p.locationCount] = p.lineFunctionId.length;
        break;
      }
      case 5: {
        const m = r.sub();
        const fn = { id: 0 as Int, name: 0 as Int, systemName: 0 as Int, filename: 0 as Int, startLine: 0 as Int };
        while (m.pos < m.end) {
          const [f, w] = m.tag();
          if (f === 1) fn.id = scalar(m, w);
          else if (f === 2) fn.name = scalar(m, w);
          else if (f === 3) fn.systemName = scalar(m, w);
          else if (f === 4) fn.filename = scalar(m, w);
          else if (f === 5) fn.startLine = scalar(m, w);
          else m.skip(w);
        }
        p.function.push(fn);
        break;
      }
      case 6: {
        const n = r.length();
        p.strings.push(bytes.toString('utf8', r.pos, r.pos + n));
        r.pos += n;
        break;
      }
      default:
        r.skip(wt);
    }
  }
  if (locationIds.length !== c.frames || values.length !== c.values) throw new PprofDecodeError('a packed field overruns its length');
  p.locationIds = locationIds instanceof Numbers ? locationIds.a : (locationIds as Int[]);
  return p;
}
