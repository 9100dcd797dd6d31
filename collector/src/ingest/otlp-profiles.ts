/**
 * OpenTelemetry's profiles signal onto heapwatch's store: an OTLP
 * `ExportProfilesServiceRequest` (gRPC `ProfilesService/Export` on the
 * ingest port, or HTTP `POST /v1development/profiles`) becomes the
 * ingester's requests, all or nothing.
 *
 * What is mapped (docs/integrations.md#opentelemetry-profiles):
 * - A heap snapshot is the profiles of one ScopeProfiles with the same time
 *   and duration (OTLP carries one sample type per profile). It is stored
 *   when it has an in-use space profile (`inuse_space/bytes`, or Node's
 *   `space/bytes`); its in-use objects profile (`inuse_objects/count`,
 *   `objects/count`), if any, gives the object counts (else they are 0).
 *   Allocation profiles beside it (`alloc_space`, `alloc_objects`, as a Go
 *   heap profile converted to OTLP carries) are left out and counted in
 *   the answer's partial_success.
 * - The service is the resource's `service.name`; the resource's other
 *   attributes with a scalar value are labels. The instance is the series,
 *   as for Pyroscope's SDKs (foreign-heap.ts).
 * - Anything else (a CPU or wall profile, allocations without in-use space,
 *   a reference outside its table, no service.name) refuses the whole
 *   request with INVALID_ARGUMENT and a message naming the profile, and
 *   nothing of it is stored.
 */
import type { IngestRequest__Output } from '@heapwatch/proto';
import type { Message } from 'protobufjs';
import { Function as PFunction, Line as PLine, Location as PLocation, Profile as PProfile, Sample as PSample, StringTable, ValueType as PValueType } from 'pprof-format';
import { invalid } from './errors';
import { foreignRequest } from './foreign-heap';
import type { Ingester } from './ingester';
import { decodeExportJson, decodeExportRequest, type ExportAnswer, type Int64 } from './otlp-decode';
import { LABEL_KEY, MAX_NAME_LENGTH, type Limits } from './validate';

/**
 * The revision of the profiles format heapwatch reads, as the
 * `otlp-profiles-development-version` header (HTTP) or metadata (gRPC)
 * names it; a request without one is revision 1. Any other is refused
 * before its body is decoded: decoding another revision's bytes could
 * succeed and mean something else.
 */
export const OTLP_REVISION_HEADER = 'otlp-profiles-development-version';
export const OTLP_REVISION = '1';
/** The opentelemetry-proto release proto/otlp/ follows. */
export const OTLP_PROTO_RELEASE = 'v1.10.0';

/** Most heap snapshots one request may carry (each is a stored profile). */
export const MAX_SNAPSHOTS = 1000;

const SPACE = new Set(['inuse_space/bytes', 'space/bytes']);
const OBJECTS = new Set(['inuse_objects/count', 'objects/count']);
const ALLOCATIONS = new Set(['alloc_space/bytes', 'alloc_objects/count']);

/** Refuses a revision other than OTLP_REVISION (values: the header's, or gRPC metadata's). */
export function checkRevision(values: readonly string[]): void {
  if (values.length === 0) return;
  if (values.length === 1 && values[0]!.trim() === OTLP_REVISION) return;
  throw invalid(
    `${OTLP_REVISION_HEADER} ${JSON.stringify(values.join(', '))} is not supported: heapwatch reads revision ${OTLP_REVISION} ` +
      `of the OTLP profiles format (opentelemetry-proto ${OTLP_PROTO_RELEASE}); nothing was stored`,
  );
}

// The decoded messages, as far as they are read here (protobufjs camelCases names).
interface AnyValue {
  value?: string;
  stringValue?: string;
  boolValue?: boolean;
  intValue?: Int64;
  doubleValue?: number;
  stringValueStrindex?: number;
}
interface KeyValue {
  key: string;
  keyStrindex: number;
  value?: AnyValue | null;
}
interface ValueType {
  typeStrindex: number;
  unitStrindex: number;
}
interface Sample {
  stackIndex: number;
  attributeIndices: number[];
  linkIndex: number;
  values: Int64[];
  timestampsUnixNano: Int64[];
}
interface Profile {
  sampleType?: ValueType | null;
  samples: Sample[];
  timeUnixNano: Int64;
  durationNano: Int64;
  period: Int64;
  attributeIndices: number[];
}
interface Line {
  functionIndex: number;
  line: Int64;
}
interface Location {
  mappingIndex: number;
  address: Int64;
  lines: Line[];
  attributeIndices: number[];
}
interface Function {
  nameStrindex: number;
  systemNameStrindex: number;
  filenameStrindex: number;
  startLine: Int64;
}
interface Dictionary {
  mappingTable: { filenameStrindex: number; attributeIndices: number[] }[];
  locationTable: Location[];
  functionTable: Function[];
  linkTable: unknown[];
  stringTable: string[];
  attributeTable: { keyStrindex: number; value?: AnyValue | null; unitStrindex: number }[];
  stackTable: { locationIndices: number[] }[];
}
interface ExportRequest {
  resourceProfiles: { resource?: { attributes: KeyValue[] } | null; scopeProfiles: { profiles: Profile[] }[] }[];
  dictionary?: Dictionary | null;
}

const EMPTY: Dictionary = { mappingTable: [], locationTable: [], functionTable: [], linkTable: [], stringTable: [], attributeTable: [], stackTable: [] };

function safe(v: Int64, where: string): number {
  const n = typeof v === 'number' ? v : Number(v.toString());
  if (!Number.isSafeInteger(n)) throw invalid(`${where} is ${v.toString()}, past 2^53`);
  return n;
}

function nanosToMs(v: Int64): number {
  return typeof v === 'number' ? Math.round(v / 1e6) : Number(BigInt(v.toString()) / 1_000_000n);
}

/**
 * An entry of a dictionary table: index 0 is the zero value ("unset"), so
 * it is allowed even where the table is empty; any other index must be in
 * the table.
 */
function entry<T>(table: readonly T[], i: number, table_: string, where: string): T | undefined {
  if (i === 0) return table[0];
  if (!(Number.isInteger(i) && i > 0 && i < table.length)) {
    throw invalid(`${where} ${i} is outside dictionary.${table_} (${table.length} entries); nothing was stored`);
  }
  return table[i];
}

/** What the dictionary resolves, checking every reference on the way. */
class Resolver {
  constructor(readonly d: Dictionary) {
    if (d.stringTable.length > 0 && d.stringTable[0] !== '') throw invalid('dictionary.string_table[0] must be the empty string; nothing was stored');
  }

  str(i: number, where: string): string {
    return entry(this.d.stringTable, i, 'string_table', where) ?? '';
  }

  /** A scalar attribute value as a label value, or undefined (arrays, maps, bytes, unset). */
  scalar(v: AnyValue | null | undefined, where: string): string | undefined {
    switch (v?.value) {
      case 'stringValue':
        return v.stringValue;
      case 'stringValueStrindex':
        return this.str(v.stringValueStrindex!, `${where}.string_value_strindex`);
      case 'boolValue':
        return String(v.boolValue);
      case 'intValue':
        return v.intValue!.toString();
      case 'doubleValue':
        return String(v.doubleValue);
      default:
        return undefined;
    }
  }

  sampleType(t: ValueType | null | undefined, where: string): string {
    return t ? `${this.str(t.typeStrindex, `${where}.sample_type.type_strindex`)}/${this.str(t.unitStrindex, `${where}.sample_type.unit_strindex`)}` : '/';
  }
}

/** The resource's attributes: service.name, and the labels (scalar values that fit a label). */
function resourceSeries(attrs: readonly KeyValue[], r: Resolver, where: string, maxLabels: number): { service: string; labels: Record<string, string>; runtime: string } {
  const all = new Map<string, string>();
  attrs.forEach((kv, i) => {
    const key = kv.key || r.str(kv.keyStrindex, `${where}.attributes[${i}].key_strindex`);
    const value = r.scalar(kv.value, `${where}.attributes[${i}].value`);
    if (value !== undefined) all.set(key, value);
  });
  const service = all.get('service.name') ?? '';
  if (!service) throw invalid(`${where} has no service.name attribute: heapwatch stores each profile under its service; nothing was stored`);
  const labels: Record<string, string> = {};
  for (const key of [...all.keys()].sort()) {
    const value = all.get(key)!;
    if (key === 'service.name' || !LABEL_KEY.test(key) || key.length > MAX_NAME_LENGTH || value.length > MAX_NAME_LENGTH) continue;
    if (Object.keys(labels).length >= maxLabels) break;
    labels[key] = value;
  }
  const runtime = [all.get('process.runtime.name'), all.get('process.runtime.version')].filter(Boolean).join(' ') || all.get('telemetry.sdk.language') || 'otlp';
  return { service, labels, runtime };
}

/** A sample's value: the sum of its values, or (values absent) one per timestamp. */
function sampleValue(s: Sample, where: string): number {
  if (s.values.length > 0 && s.timestampsUnixNano.length > 0 && s.values.length !== s.timestampsUnixNano.length) {
    throw invalid(`${where} has ${s.values.length} values and ${s.timestampsUnixNano.length} timestamps; they must pair up; nothing was stored`);
  }
  if (s.values.length === 0) return s.timestampsUnixNano.length;
  let sum = 0;
  for (const v of s.values) {
    const n = safe(v, `${where}.values`);
    if (n < 0) throw invalid(`${where} has a negative value (${n}); an in-use heap has none; nothing was stored`);
    sum += n;
  }
  if (!Number.isSafeInteger(sum)) throw invalid(`${where}'s values add up past 2^53`);
  return sum;
}

/** One heap snapshot as a pprof (objects/count, space/bytes), built from the dictionary. */
class PprofBuilder {
  private readonly strings = new StringTable();
  private readonly functions: PFunction[] = [];
  private readonly functionIds = new Map<number, number>();
  private readonly locations: PLocation[] = [];
  private readonly locationIds = new Map<number, number>();
  /** Per stack index: [objects, bytes]. */
  private readonly stacks = new Map<number, [number, number]>();

  constructor(
    private readonly r: Resolver,
    /** Frames of every snapshot so far (one count per request: maxFrames). */
    private readonly frames: { count: number; max: number },
  ) {}

  add(p: Profile, kind: 0 | 1, where: string): void {
    const d = this.r.d;
    p.samples.forEach((s, i) => {
      const at = `${where}.samples[${i}]`;
      entry(d.stackTable, s.stackIndex, 'stack_table', `${at}.stack_index`);
      entry(d.linkTable, s.linkIndex, 'link_table', `${at}.link_index`);
      for (const a of s.attributeIndices) entry(d.attributeTable, a, 'attribute_table', `${at}.attribute_indices`);
      let v = this.stacks.get(s.stackIndex);
      if (!v) this.stacks.set(s.stackIndex, (v = [0, 0]));
      v[kind] += sampleValue(s, at);
      if (!Number.isSafeInteger(v[kind])) throw invalid(`${at}: the values at stack ${s.stackIndex} add up past 2^53`);
    });
  }

  private functionId(i: number, where: string): number {
    let id = this.functionIds.get(i);
    if (id !== undefined) return id;
    const f = entry(this.r.d.functionTable, i, 'function_table', where);
    const at = `dictionary.function_table[${i}]`;
    id = this.functions.length + 1;
    this.functions.push(
      new PFunction({
        id,
        name: this.strings.dedup(f ? this.r.str(f.nameStrindex, `${at}.name_strindex`) : ''),
        systemName: this.strings.dedup(f ? this.r.str(f.systemNameStrindex, `${at}.system_name_strindex`) : ''),
        filename: this.strings.dedup(f ? this.r.str(f.filenameStrindex, `${at}.filename_strindex`) : ''),
        startLine: f ? safe(f.startLine, `${at}.start_line`) : 0,
      }),
    );
    this.functionIds.set(i, id);
    return id;
  }

  private locationId(i: number, where: string): number {
    let id = this.locationIds.get(i);
    if (id !== undefined) return id;
    const d = this.r.d;
    const l = entry(d.locationTable, i, 'location_table', where);
    const at = `dictionary.location_table[${i}]`;
    const mapping = entry(d.mappingTable, l?.mappingIndex ?? 0, 'mapping_table', `${at}.mapping_index`);
    if (mapping) this.r.str(mapping.filenameStrindex, `dictionary.mapping_table[${l!.mappingIndex}].filename_strindex`);
    for (const a of l?.attributeIndices ?? []) entry(d.attributeTable, a, 'attribute_table', `${at}.attribute_indices`);
    id = this.locations.length + 1;
    const lines = (l?.lines ?? []).map((line, k) => new PLine({ functionId: this.functionId(line.functionIndex, `${at}.lines[${k}].function_index`), line: safe(line.line, `${at}.lines[${k}].line`) }));
    this.locations.push(new PLocation({ id, address: l ? safe(l.address, `${at}.address`) : 0, line: lines }));
    this.locationIds.set(i, id);
    return id;
  }

  build(timeMs: number, durationMs: number, period: number): Buffer {
    const samples: PSample[] = [];
    for (const [stack, value] of this.stacks) {
      const indices = this.r.d.stackTable[stack]?.locationIndices ?? [];
      this.frames.count += indices.length;
      if (this.frames.count > this.frames.max) {
        throw invalid(`the request's samples hold more than ${this.frames.max} frames once their stacks are expanded (limit maxFrames, docs/security.md#ingest-limits)`);
      }
      const locationId = indices.map((li, k) => this.locationId(li, `dictionary.stack_table[${stack}].location_indices[${k}]`));
      samples.push(new PSample({ locationId, value }));
    }
    const vt = (type: string, unit: string) => new PValueType({ type: this.strings.dedup(type), unit: this.strings.dedup(unit) });
    const profile = new PProfile({
      sampleType: [vt('objects', 'count'), vt('space', 'bytes')],
      sample: samples,
      location: this.locations,
      function: this.functions,
      stringTable: this.strings,
      timeNanos: BigInt(timeMs) * 1_000_000n,
      durationNanos: durationMs * 1_000_000,
      periodType: vt('space', 'bytes'),
      period,
    });
    return Buffer.from(profile.encode());
  }
}

export interface OtlpMapping {
  requests: IngestRequest__Output[];
  /** OTLP profiles read, and those left out (allocation profiles beside in-use ones). */
  profiles: number;
  leftOut: number;
}

/** The ingester's requests for a decoded ExportProfilesServiceRequest, or INVALID_ARGUMENT. */
export function mapExport(message: Message, limits: Limits, nowMs: number): OtlpMapping {
  const req = message as unknown as ExportRequest;
  const r = new Resolver(req.dictionary ?? EMPTY);
  const frames = { count: 0, max: limits.maxFrames };
  const requests: IngestRequest__Output[] = [];
  let profiles = 0;
  let leftOut = 0;
  req.resourceProfiles.forEach((rp, ri) => {
    const rwhere = `resource_profiles[${ri}]`;
    // A resource without profiles says nothing, and needs no service.name.
    if (!rp.scopeProfiles.some((sp) => sp.profiles.length > 0)) return;
    const series = resourceSeries(rp.resource?.attributes ?? [], r, `${rwhere}.resource`, limits.maxLabels);
    rp.scopeProfiles.forEach((sp, si) => {
      // One snapshot per (time, duration): its in-use space, objects and allocation profiles.
      const snapshots = new Map<string, { space?: [Profile, string]; objects?: [Profile, string]; alloc: string[] }>();
      sp.profiles.forEach((p, pi) => {
        profiles++;
        const where = `${rwhere}.scope_profiles[${si}].profiles[${pi}]`;
        const type = r.sampleType(p.sampleType, where);
        for (const a of p.attributeIndices) entry(r.d.attributeTable, a, 'attribute_table', `${where}.attribute_indices`);
        const key = `${p.timeUnixNano.toString()}/${p.durationNano.toString()}`;
        let snap = snapshots.get(key);
        if (!snap) snapshots.set(key, (snap = { alloc: [] }));
        const slot = SPACE.has(type) ? 'space' : OBJECTS.has(type) ? 'objects' : undefined;
        if (slot) {
          if (snap[slot]) throw invalid(`${where} is a second ${type} profile at the time of ${snap[slot]![1]}; nothing was stored`);
          snap[slot] = [p, where];
        } else if (ALLOCATIONS.has(type)) {
          snap.alloc.push(where);
        } else {
          throw invalid(
            `${where} is a ${type === '/' ? 'profile without a sample type' : `${type} profile`}: heapwatch stores in-use heap profiles only ` +
              `(a profile of inuse_space/bytes or space/bytes, with inuse_objects/count or objects/count beside it); nothing of this request was stored`,
          );
        }
      });
      for (const snap of snapshots.values()) {
        if (!snap.space) {
          const [, where] = snap.objects ?? [undefined, snap.alloc[0]!];
          throw invalid(
            `${where} has no in-use space profile (inuse_space/bytes or space/bytes) beside it at its time: heapwatch stores in-use heap profiles only, ` +
              `not allocations or object counts alone; nothing of this request was stored`,
          );
        }
        if (requests.length >= MAX_SNAPSHOTS) throw invalid(`the request holds more than ${MAX_SNAPSHOTS} heap snapshots; send them in several requests`);
        leftOut += snap.alloc.length;
        const [space, where] = snap.space;
        const b = new PprofBuilder(r, frames);
        b.add(space, 1, where);
        if (snap.objects) b.add(snap.objects[0], 0, snap.objects[1]);
        const timeMs = nanosToMs(space.timeUnixNano) || nowMs;
        const durationMs = nanosToMs(space.durationNano);
        const pprof = b.build(timeMs, durationMs, Math.max(0, safe(space.period, `${where}.period`)));
        requests.push(foreignRequest(series, pprof, timeMs, timeMs + durationMs, { runtime: series.runtime, agent: 'otlp' }));
      }
    });
  });
  return { requests, profiles, leftOut };
}

/**
 * Decodes, maps and stores one request as `tenant`'s: everything or nothing
 * (Ingester.ingestAll validates and decodes every snapshot before storing
 * any). `json`: the body is OTLP/JSON.
 */
export async function exportProfiles(ingester: Ingester, body: Buffer, json: boolean, tenant: string): Promise<ExportAnswer> {
  const message = json ? decodeExportJson(body.toString('utf8'), ingester.limits) : decodeExportRequest(body, ingester.limits);
  const { requests, leftOut } = mapExport(message, ingester.limits, Date.now());
  await ingester.ingestAll(requests, tenant);
  return {
    rejected: leftOut,
    message: leftOut > 0 ? `${leftOut} allocation profile(s) (alloc_space, alloc_objects) were not stored: heapwatch stores in-use heap only` : '',
  };
}
