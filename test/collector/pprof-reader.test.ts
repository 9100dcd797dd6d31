/**
 * The pprof reader and the validator, property-based: fast-check builds
 * thousands of profiles a run (encoded by pprof-format, an independent
 * encoder) and damages them byte by byte. The reader must agree with the
 * model on every valid profile, stop at the first count over a limit, and
 * answer anything else with INVALID_ARGUMENT, never another error. A
 * failing case is shrunk to the smallest one and printed with its seed.
 *
 * The corpus at the end keeps the nasty inputs found by probing the
 * collector as an attacker, built here from code rather than kept as
 * binaries.
 */
import * as zlib from 'node:zlib';
import * as fc from 'fast-check';
import { status } from '@grpc/grpc-js';
import { Function as PFunction, Line, Location, Profile, Sample, StringTable, ValueType } from 'pprof-format';
import { describe, expect, it } from 'vitest';
import { IngestError } from '../../collector/src/ingest/errors';
import { PprofDecodeError, PprofLimitError, readProfile } from '../../collector/src/ingest/pprof-reader';
import { decodeProfile, DEFAULT_LIMITS, type Limits } from '../../collector/src/ingest/validate';

/** A profile as the tests think of it, before encoding. */
interface Model {
  functions: { name: string; file: string; startLine: number }[];
  /** Each location: its lines, as [function index, line]. */
  locations: [fn: number, line: number][][];
  /** Each sample: location indices (leaf first) and [objects, bytes]. */
  samples: { stack: number[]; objects: number; bytes: number; labels: number }[];
}

const word = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz_./0123456789é'), maxLength: 12 });

const model: fc.Arbitrary<Model> = fc
  .record({
    functions: fc.array(fc.record({ name: word, file: word, startLine: fc.nat(100_000) }), { minLength: 1, maxLength: 20 }),
    locationCount: fc.integer({ min: 1, max: 20 }),
  })
  .chain(({ functions, locationCount }) =>
    fc.record({
      functions: fc.constant(functions),
      locations: fc.array(fc.array(fc.tuple(fc.nat(functions.length - 1), fc.nat(0xffffffff)), { minLength: 1, maxLength: 4 }), {
        minLength: locationCount,
        maxLength: locationCount,
      }),
      samples: fc.array(
        fc.record({
          stack: fc.array(fc.nat(locationCount - 1), { minLength: 1, maxLength: 12 }),
          objects: fc.oneof(fc.nat(1000), fc.integer({ min: 0, max: 2 ** 47 })),
          bytes: fc.oneof(fc.nat(1 << 30), fc.integer({ min: 0, max: 2 ** 40 })),
          labels: fc.nat(3),
        }),
        { maxLength: 30 },
      ),
    }),
  );

function encode(m: Model, mutate?: (p: Profile) => void): Buffer {
  const strings = new StringTable();
  const p = new Profile({
    sampleType: [new ValueType({ type: strings.dedup('objects'), unit: strings.dedup('count') }), new ValueType({ type: strings.dedup('space'), unit: strings.dedup('bytes') })],
    function: m.functions.map((f, i) => new PFunction({ id: i + 1, name: strings.dedup(f.name), systemName: strings.dedup(f.name), filename: strings.dedup(f.file), startLine: f.startLine })),
    location: m.locations.map((lines, i) => new Location({ id: i + 1, line: lines.map(([fn, line]) => new Line({ functionId: fn + 1, line })) })),
    sample: m.samples.map(
      (s) =>
        new Sample({
          locationId: s.stack.map((l) => l + 1),
          value: [s.objects, s.bytes],
          label: Array.from({ length: s.labels }, (_, k) => ({ key: strings.dedup(`k${k}`), str: strings.dedup('v'), num: 0, numUnit: 0 })) as never,
        }),
    ),
    stringTable: strings,
  });
  mutate?.(p);
  return Buffer.from(p.encode());
}

/** decodeProfile's outcome: the valid profile, or the IngestError; anything else fails the test. */
async function outcome(bytes: Buffer, limits: Limits = DEFAULT_LIMITS) {
  try {
    return { ok: await decodeProfile(bytes, limits) };
  } catch (err) {
    if (!(err instanceof IngestError)) throw new Error(`not an IngestError: ${String((err as Error)?.stack ?? err)}`);
    return { err };
  }
}

describe('pprof reader, property-based', () => {
  it('reads back every valid profile exactly as it was built', async () => {
    await fc.assert(
      fc.asyncProperty(model, async (m) => {
        const { ok, err } = await outcome(encode(m));
        expect(err, err?.message).toBeUndefined();
        const p = ok!.profile;
        expect(p.function.map((f) => p.strings[Number(f.name)])).toEqual(m.functions.map((f) => f.name));
        expect(p.function.map((f) => f.startLine)).toEqual(m.functions.map((f) => f.startLine));
        expect(p.locationCount).toBe(m.locations.length);
        for (let k = 0; k < m.locations.length; k++) {
          const lines = [];
          for (let j = p.lineStart[k]!; j < p.lineStart[k + 1]!; j++) lines.push([Number(p.lineFunctionId[j]) - 1, p.lineNumber[j]]);
          expect(lines).toEqual(m.locations[k]);
        }
        expect(p.sampleCount).toBe(m.samples.length);
        m.samples.forEach((s, i) => {
          expect(Array.from(p.locationIds).slice(p.locationStart[i], p.locationStart[i + 1]).map((id) => Number(id) - 1)).toEqual(s.stack);
          expect(Array.from(p.values.subarray(p.valueStart[i], p.valueStart[i + 1]))).toEqual([s.objects, s.bytes]);
        });
      }),
      { numRuns: 1000 },
    );
  });

  it('answers any damaged profile with a valid profile or INVALID_ARGUMENT, never another error', async () => {
    const damage = fc.oneof(
      // flip a byte
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.nat(255) }),
      // cut the end off
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(), value: fc.constant(0) }),
      // insert a byte
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.nat(255) }),
    );
    await fc.assert(
      fc.asyncProperty(model, fc.array(damage, { minLength: 1, maxLength: 6 }), fc.boolean(), async (m, damages, gzip) => {
        let b = encode(m);
        for (const d of damages) {
          const at = b.length === 0 ? 0 : d.at % b.length;
          if (d.kind === 'set') b[at] = d.value;
          else if (d.kind === 'truncate') b = b.subarray(0, at);
          else b = Buffer.concat([b.subarray(0, at), Buffer.from([d.value]), b.subarray(at)]);
        }
        const { err } = await outcome(gzip ? zlib.gzipSync(b) : b);
        if (err) {
          expect(err.code).toBe(status.INVALID_ARGUMENT);
          expect(err.message.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('accepts a profile exactly when every count is within its limit, and names the one it exceeds', async () => {
    const limits = fc.record({
      maxFunctions: fc.integer({ min: 1, max: 20 }),
      maxLocations: fc.integer({ min: 1, max: 20 }),
      maxLinesPerLocation: fc.integer({ min: 1, max: 4 }),
      maxLines: fc.integer({ min: 1, max: 60 }),
      maxSamples: fc.integer({ min: 0, max: 30 }),
      maxStackDepth: fc.integer({ min: 1, max: 12 }),
      maxFrames: fc.integer({ min: 0, max: 200 }),
      maxLabelsPerSample: fc.integer({ min: 0, max: 3 }),
      maxStrings: fc.integer({ min: 1, max: 80 }),
    });
    await fc.assert(
      fc.property(model, limits, (m, lim) => {
        const all = { ...DEFAULT_LIMITS, ...lim };
        const bytes = encode(m);
        const p = readProfile(bytes, { ...DEFAULT_LIMITS, maxSampleTypes: 2 });
        const counts: Partial<Record<keyof Limits, number>> = {
          maxFunctions: m.functions.length,
          maxLocations: m.locations.length,
          maxLinesPerLocation: Math.max(...m.locations.map((l) => l.length)),
          maxLines: m.locations.reduce((a, l) => a + l.length, 0),
          maxSamples: m.samples.length,
          maxStackDepth: Math.max(0, ...m.samples.map((s) => s.stack.length)),
          maxFrames: m.samples.reduce((a, s) => a + s.stack.length, 0),
          maxLabelsPerSample: Math.max(0, ...m.samples.map((s) => s.labels)),
          maxStrings: p.strings.length,
        };
        const exceeded = (Object.keys(counts) as (keyof typeof lim)[]).filter((k) => counts[k]! > all[k]);
        let error: unknown;
        try {
          readProfile(bytes, all);
        } catch (err) {
          error = err;
        }
        if (exceeded.length === 0) expect(error).toBeUndefined();
        else {
          expect(error).toBeInstanceOf(PprofLimitError);
          const named = /\((\w+)\)$/.exec((error as Error).message)?.[1];
          expect(exceeded).toContain(named);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses a sample value of 2^53 or more, up to 2^64 - 1, instead of storing it rounded or wrapped', async () => {
    await fc.assert(
      fc.asyncProperty(model, fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n - 1n }), async (m, big) => {
        const bytes = encode({ ...m, samples: [{ stack: [0], objects: 1, bytes: 1, labels: 0 }, ...m.samples] }, (p) => {
          p.sample[0]!.value = [1, big];
        });
        const { err } = await outcome(bytes);
        expect(err?.code).toBe(status.INVALID_ARGUMENT);
        expect(err?.message).toMatch(/2\^53|negative/);
      }),
      { numRuns: 500 },
    );
  });
});

describe('pprof reader, regression corpus', () => {
  /** `n` copies of one encoded message, gzipped: how the bombs were built. */
  function repeated(message: number[], n: number): Buffer {
    const one = Buffer.from(message);
    const all = Buffer.alloc(one.length * n);
    for (let i = 0; i < n; i++) one.copy(all, i * one.length);
    return zlib.gzipSync(all, { level: 9 });
  }

  it('refuses the 65 KB request that inflated into 16.7 M functions, at once and at small cost', async () => {
    // Profile.function (field 5), each `{ id: 1 }`: 4 bytes, 16.7 M of them in 64 MiB.
    const bomb = repeated([0x2a, 0x02, 0x08, 0x01], 16_700_000);
    expect(bomb.length).toBeLessThan(70_000);
    const t0 = process.cpuUsage();
    const { err } = await outcome(bomb);
    expect(err?.code).toBe(status.INVALID_ARGUMENT);
    expect(err?.message).toMatch(/maxInflateRatio/);
    // And with the inflate ratio out of the way, the function count stops it before anything is allocated.
    const { err: err2 } = await outcome(bomb, { ...DEFAULT_LIMITS, maxInflateRatio: 10_000 });
    expect(err2?.message).toMatch(/more functions, over the limit of 200000 \(maxFunctions\)/);
    const cpu = process.cpuUsage(t0);
    // Before: 25.7 s of one thread and 3 GB. The second decode gunzips 64 MiB (~1 s of CPU on a loaded machine).
    expect((cpu.user + cpu.system) / 1e6).toBeLessThan(10);
  });

  it('refuses an 11 M-sample profile by counting, not decoding', () => {
    // Profile.sample (field 2), each `{ location_id: [1], value: [1, 1] }`.
    const raw = zlib.gunzipSync(repeated([0x12, 0x07, 0x0a, 0x01, 0x01, 0x12, 0x02, 0x01, 0x01], 1_000_000));
    const t0 = performance.now();
    expect(() => readProfile(raw, DEFAULT_LIMITS)).toThrow(/more samples, over the limit of 200000 \(maxSamples\)/);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it.each([
    ['a negative line number', (p: Profile) => (p.location[0]!.line[0]!.line = -1), /line -1/],
    ['a line past UInt32', (p: Profile) => (p.location[0]!.line[0]!.line = 2 ** 32), /line 4294967296/],
    ['a negative function start line', (p: Profile) => (p.function[0]!.startLine = -5), /start_line -5/],
    ['a negative location id', (p: Profile) => { p.location[0]!.id = -1; p.sample[0]!.locationId = [-1]; }, /ids are positive/],
    ['2^63 - 1 bytes', (p: Profile) => (p.sample[0]!.value = [1, 2n ** 63n - 1n]), /2\^53/],
    ['1e22 bytes (wrapped by the encoder)', (p: Profile) => (p.sample[0]!.value = [1, 1e22]), /2\^53/],
    ['2^63 bytes (negative as int64)', (p: Profile) => (p.sample[0]!.value = [1, 2n ** 63n]), /negative/],
    ['values that add up past 2^53', (p: Profile) => {
      p.sample = [0, 1].map(() => new Sample({ locationId: [1], value: [1, 2 ** 52 + 1] }));
    }, /add up to 2\^53/],
    ['a sample 600 frames deep', (p: Profile) => (p.sample[0]!.locationId = new Array(600).fill(1)), /600 frames deep, over the limit of 512 \(maxStackDepth\)/],
  ])('refuses %s with INVALID_ARGUMENT', async (_name, mutate, message) => {
    const m: Model = { functions: [{ name: 'f', file: '/a.js', startLine: 1 }], locations: [[[0, 3]]], samples: [{ stack: [0], objects: 1, bytes: 8, labels: 0 }] };
    const { err } = await outcome(zlib.gzipSync(encode(m, mutate)));
    expect(err?.code).toBe(status.INVALID_ARGUMENT);
    expect(err?.message).toMatch(message);
  });

  it('reads a truncated varint, an 11-byte varint and a group wire type as decode errors', () => {
    for (const bytes of [[0x08], [0x08, ...new Array(10).fill(0xff), 0x01], [0x0b]]) {
      expect(() => readProfile(Buffer.from(bytes), DEFAULT_LIMITS)).toThrow(PprofDecodeError);
    }
  });
});
