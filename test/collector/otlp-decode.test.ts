/**
 * OTLP profiles decoding and mapping (collector/src/ingest/otlp-*.ts),
 * without a collector: the counts that bound a request before protobufjs
 * allocates anything, and the mapping's refusals that the transports
 * (test/protocols/otlp-ingest.test.ts) do not each repeat.
 */
import { Profile } from 'pprof-format';
import { describe, expect, it } from 'vitest';
import { decodeExportJson, decodeExportRequest } from '../../collector/src/ingest/otlp-decode';
import { checkRevision, mapExport, MAX_SNAPSHOTS } from '../../collector/src/ingest/otlp-profiles';
import { DEFAULT_LIMITS, type Limits } from '../../collector/src/ingest/validate';
import { encodeRequest, heapRequest, jsonRequest, RequestType, type SnapshotSpec } from '../helpers/otlp';
import type { TestStack } from '../helpers/pprof';

const STACKS: TestStack[] = [
  { frames: [['leaf', '/app/a.js', 3], ['main', '/app/main.js', 1]], objects: 2, bytes: 2048 },
  { frames: [['other', '/app/b.js', 7], ['main', '/app/main.js', 1]], objects: 1, bytes: 512 },
];
const T = Date.UTC(2026, 0, 1);
const snap = (timeMs = T, extra: Partial<SnapshotSpec> = {}): SnapshotSpec => ({ timeMs, stacks: STACKS, ...extra });
const limits = (l: Partial<Limits> = {}): Limits => ({ ...DEFAULT_LIMITS, ...l });
const map = (req: Record<string, unknown>, l: Partial<Limits> = {}) => mapExport(decodeExportRequest(encodeRequest(req), limits(l)), limits(l), T);

describe('OTLP profiles: decoding within the ingest limits', () => {
  it('counts before decoding and names the limit', () => {
    const req = heapRequest({ 'service.name': 's' }, [snap()]);
    expect(() => decodeExportRequest(encodeRequest(req), limits({ maxSamples: 3 }))).toThrow(/Profile\.samples holds more than 3 entries \(limit maxSamples/);
    expect(() => decodeExportRequest(encodeRequest(req), limits({ maxStrings: 4 }))).toThrow(/ProfilesDictionary\.string_table holds more than 4 entries \(limit maxStrings/);
    expect(() => decodeExportRequest(encodeRequest(req), limits({ maxStackDepth: 1 }))).toThrow(/a Stack's location_indices holds more than 1 entries \(limit maxStackDepth/);
    expect(() => decodeExportRequest(encodeRequest(req), limits({ maxFrames: 20 }))).toThrow(/more than 20 repeated values and strings \(limit maxFrames/);
    expect(() => decodeExportRequest(encodeRequest(req), limits({ maxLines: 10 }))).toThrow(/more than 10 messages \(limit maxLines/);
    expect(() => decodeExportRequest(encodeRequest(req), limits({ maxStringBytes: 10 }))).toThrow(/strings are over 10 bytes/);
    expect(decodeExportRequest(encodeRequest(req), limits())).toBeDefined();
  });

  it('refuses tiny messages by the million before allocating them', () => {
    // Two bytes per empty Stack: 1.5 MB of them would be 750,000 objects.
    const stacks = Buffer.alloc(1_500_000);
    for (let i = 0; i < stacks.length; i += 2) [stacks[i], stacks[i + 1]] = [0x3a, 0x00]; // field 7, length 0
    const body = Buffer.concat([Buffer.from([0x12]), varint(stacks.length), stacks]); // dictionary (field 2)
    expect(() => decodeExportRequest(body, limits())).toThrow(/stack_table holds more than 200000 entries \(limit maxSamples/);
  });

  it('refuses nesting deeper than 32 and wire types proto3 does not have', () => {
    // AnyValue { array_value { values { array_value { ... } } } } in a resource attribute.
    let value: Record<string, unknown> = { stringValue: 'x' };
    for (let i = 0; i < 40; i++) value = { arrayValue: { values: [value] } };
    const req = { resourceProfiles: [{ resource: { attributes: [{ key: 'deep', value }] } }] };
    expect(() => decodeExportRequest(encodeRequest(req), limits())).toThrow(/nests messages more than 32 deep/);
    expect(() => decodeExportRequest(Buffer.from([0x0b]), limits())).toThrow(/wire type 3/);
    expect(() => decodeExportRequest(Buffer.from([0x0a, 0x05, 0x0a]), limits())).toThrow(/truncated/);
  });

  it('counts a JSON body\'s values in its text before parsing it', () => {
    const json = jsonRequest(heapRequest({ 'service.name': 's' }, [snap()]));
    expect(() => decodeExportJson(json, limits({ maxFrames: 10 }))).toThrow(/JSON body holds more than 10 values/);
    expect(map(JSON.parse(json) as Record<string, unknown>).requests).toHaveLength(1);
    expect(() => decodeExportJson('[1]', limits())).toThrow(/not a JSON object/);
    expect(() => decodeExportJson('{"resourceProfiles":[{"scopeProfiles":"x"}]}', limits())).toThrow(/in JSON: .*scopeProfiles/);
  });

  it('bounds the frames that samples sharing a deep stack expand to', () => {
    const deep: TestStack = { frames: Array.from({ length: 40 }, (_, i) => [`f${i}`, '/app/x.js', i + 1] as [string, string, number]), objects: 1, bytes: 64 };
    const req = heapRequest({ 'service.name': 's' }, Array.from({ length: 10 }, (_, i) => snap(T + i, { stacks: [deep] })));
    expect(() => map(req, { maxFrames: 300 })).toThrow(/more than 300 frames once their stacks are expanded/);
    expect(map(req).requests).toHaveLength(10);
  });
});

describe('OTLP profiles: mapping onto heapwatch\'s requests', () => {
  it('a snapshot is one pprof of objects and bytes per stack, under its resource\'s service and labels', () => {
    const { requests, profiles, leftOut } = map(heapRequest({ 'service.name': 'api', 'host.name': 'h1', 'process.pid': 7, 'k8s.container.restart': false, 'bad key!': 'x' }, [snap(T), snap(T + 1000)]));
    expect([requests.length, profiles, leftOut]).toEqual([2, 4, 0]);
    const r = requests[0]!;
    expect(r).toMatchObject({ service: 'api', labels: { 'host.name': 'h1', 'process.pid': '7', 'k8s.container.restart': 'false' }, startTimeMs: T, endTimeMs: T });
    expect(r.instance!.hostname).toMatch(/^h1#[0-9a-f]{12}$/);
    expect(requests[1]!.instance!.hostname).toBe(r.instance!.hostname); // one series, one instance
    const p = Profile.decode(r.pprofGzip);
    const s = p.stringTable.strings;
    expect(p.sampleType.map((t) => `${s[Number(t.type)]}/${s[Number(t.unit)]}`)).toEqual(['objects/count', 'space/bytes']);
    expect(p.sample.map((x) => x.value.map(Number))).toEqual([[2, 2048], [1, 512]]);
    const fn = new Map(p.function.map((f) => [Number(f.id), s[Number(f.name)]]));
    const leaf = p.location.find((l) => l.id === p.sample[0]!.locationId[0])!;
    expect(fn.get(Number(leaf.line[0]!.functionId))).toBe('leaf');
  });

  it('reads attribute keys and values from the string table (key_strindex, string_value_strindex)', () => {
    const req = heapRequest({}, [snap()]) as { resourceProfiles: { resource: { attributes: unknown[] } }[]; dictionary: { stringTable: string[] } };
    const strings = req.dictionary.stringTable;
    const k = strings.push('service.name') - 1;
    const v = strings.push('from-the-table') - 1;
    req.resourceProfiles[0]!.resource.attributes = [{ keyStrindex: k, value: { stringValueStrindex: v } }];
    expect(map(req as never).requests[0]!.service).toBe('from-the-table');
  });

  it('refuses samples heapwatch cannot read as in-use bytes', () => {
    const sample = (s: Record<string, unknown>) => {
      const req = heapRequest({ 'service.name': 's' }, [snap()]) as { resourceProfiles: { scopeProfiles: { profiles: { samples: Record<string, unknown>[] }[] }[] }[] };
      Object.assign(req.resourceProfiles[0]!.scopeProfiles[0]!.profiles[1]!.samples[0]!, s);
      return () => map(req as never);
    };
    expect(sample({ values: [-5] })).toThrow(/negative value/);
    expect(sample({ values: ['9007199254740993'] })).toThrow(/past 2\^53/);
    expect(sample({ values: [1, 2], timestampsUnixNano: ['1'] })).toThrow(/2 values and 1 timestamps/);
    expect(sample({ linkIndex: 4 })).toThrow(/link_index 4 is outside dictionary\.link_table/);
    expect(sample({ attributeIndices: [9] })).toThrow(/attribute_indices 9 is outside dictionary\.attribute_table/);
    // Values absent: one event per timestamp, as the spec says.
    const events = sample({ values: [], timestampsUnixNano: ['1', '2', '3'] })();
    expect(Profile.decode(events.requests[0]!.pprofGzip).sample[0]!.value.map(Number)).toEqual([2, 3]);
  });

  it('refuses a second profile of one sample type at one time, a string table not starting with "", and too many snapshots', () => {
    expect(() => map(heapRequest({ 'service.name': 's' }, [snap(T), snap(T)]))).toThrow(/profiles\[2\] is a second inuse_objects\/count profile at the time of .*profiles\[0\]/);
    const req = heapRequest({ 'service.name': 's' }, [snap()]) as { dictionary: { stringTable: string[] } };
    req.dictionary.stringTable[0] = 'x';
    expect(() => map(req as never)).toThrow(/string_table\[0\] must be the empty string/);
    const many = heapRequest({ 'service.name': 's' }, Array.from({ length: MAX_SNAPSHOTS + 1 }, (_, i) => ({ timeMs: T + i, stacks: [] })));
    expect(() => map(many)).toThrow(new RegExp(`more than ${MAX_SNAPSHOTS} heap snapshots`));
  });

  it('takes revision 1 or none, and refuses any other before decoding', () => {
    expect(() => checkRevision([])).not.toThrow();
    expect(() => checkRevision(['1'])).not.toThrow();
    expect(() => checkRevision(['2'])).toThrow(/"2" is not supported: heapwatch reads revision 1 .*opentelemetry-proto v1\.10\.0/);
    expect(() => checkRevision(['1', '1'])).toThrow(/"1, 1" is not supported/);
    expect(() => checkRevision(['01'])).toThrow(/not supported/);
  });

  it('an empty request stores nothing and is no error', () => {
    expect(map({}).requests).toEqual([]);
    expect(RequestType().decode(Buffer.alloc(0))).toBeDefined();
  });
});

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}
