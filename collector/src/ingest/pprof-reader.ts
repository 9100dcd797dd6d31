/**
 * A protobuf reader for exactly the parts of perftools.profiles.Profile that
 * the collector uses, into flat arrays.
 *
 * Why not pprof-format's `Profile.decode`: it builds an object per sample,
 * location and line and a Buffer view per field, and measured here it took
 * ~25 ms for one 5,000-stack heap profile, a quarter of the whole ingest
 * cost; this reader takes ~2 ms. Fields the collector does not read
 * (mapping, labels, comments, times) are skipped, not decoded.
 *
 * 64-bit values come back as numbers when they are safe integers and as
 * bigints otherwise, as pprof-format returns them, so ids compare and print
 * the same way.
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
  lineStart: number[];
  lineFunctionId: Int[];
  lineNumber: Int[];
  /** Sample i has location ids `locationIds[locationStart[i] .. locationStart[i+1])`, likewise values. */
  sampleCount: number;
  locationStart: number[];
  locationIds: ArrayLike<Int>;
  valueStart: number[];
  values: ArrayLike<Int>;
}

/**
 * The two long repeated fields (~180k location ids and ~15k values in a
 * 5,000-stack profile) go into typed arrays that grow by doubling: as JS
 * arrays they were megabytes of heap per profile, and the collector spent a
 * quarter of its main thread in GC. A value past 2^53 (a bigint) cannot be
 * held in one, so the profile is read again with JS arrays (NeedsBigInt).
 */
class Numbers {
  a = new Float64Array(1024);
  length = 0;
  push(v: Int): void {
    if (typeof v !== 'number') throw NEEDS_BIGINT;
    if (this.length === this.a.length) {
      const next = new Float64Array(this.a.length * 2);
      next.set(this.a);
      this.a = next;
    }
    this.a[this.length++] = v;
  }
  view(): Float64Array {
    return this.a.subarray(0, this.length);
  }
}

const NEEDS_BIGINT = new Error('a 64-bit value past 2^53');

interface Sink {
  push(v: Int): void;
  readonly length: number;
}

export class PprofDecodeError extends Error {}

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

export function readProfile(buf: Uint8Array): DecodedProfile {
  try {
    return read(buf, true);
  } catch (err) {
    if (err !== NEEDS_BIGINT) throw err;
    return read(buf, false);
  }
}

function read(buf: Uint8Array, typed: boolean): DecodedProfile {
  const locationIds: Sink = typed ? new Numbers() : [];
  const values: Sink = typed ? new Numbers() : [];
  const bytes = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const p: DecodedProfile = {
    strings: [],
    sampleTypes: [],
    function: [],
    locationCount: 0,
    locationId: [],
    lineStart: [0],
    lineFunctionId: [],
    lineNumber: [],
    sampleCount: 0,
    locationStart: [0],
    locationIds: [],
    valueStart: [0],
    values: [],
  };
  const r = new Reader(bytes, 0, bytes.length);
  while (r.pos < r.end) {
    const [field, wt] = r.tag();
    switch (field) {
      case 1: {
        if (wt !== 2) throw new PprofDecodeError('sample_type is not a message');
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
        if (wt !== 2) throw new PprofDecodeError('sample is not a message');
        const m = r.sub();
        while (m.pos < m.end) {
          const [f, w] = m.tag();
          if (f === 1) m.repeated(w, locationIds);
          else if (f === 2) m.repeated(w, values);
          else m.skip(w);
        }
        p.sampleCount++;
        p.locationStart.push(locationIds.length);
        p.valueStart.push(values.length);
        break;
      }
      case 4: {
        if (wt !== 2) throw new PprofDecodeError('location is not a message');
        const m = r.sub();
        let id: Int = 0;
        while (m.pos < m.end) {
          const [f, w] = m.tag();
          if (f === 1) id = scalar(m, w);
          else if (f === 4) {
            if (w !== 2) throw new PprofDecodeError('line is not a message');
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
        p.lineStart.push(p.lineFunctionId.length);
        p.locationCount++;
        break;
      }
      case 5: {
        if (wt !== 2) throw new PprofDecodeError('function is not a message');
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
        if (wt !== 2) throw new PprofDecodeError('string_table entry is not a string');
        const n = r.length();
        p.strings.push(bytes.toString('utf8', r.pos, r.pos + n));
        r.pos += n;
        break;
      }
      default:
        r.skip(wt);
    }
  }
  if (r.pos !== r.end) throw new PprofDecodeError('message overruns the buffer');
  p.locationIds = locationIds instanceof Numbers ? locationIds.view() : (locationIds as Int[]);
  p.values = values instanceof Numbers ? values.view() : (values as Int[]);
  return p;
}
