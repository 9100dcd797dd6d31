/**
 * OTLP profiles requests as an OpenTelemetry SDK builds them: protobufjs
 * over the .proto files of proto/otlp/ (loaded here on their own, not
 * through the collector's loader), one profile per sample type sharing a
 * ProfilesDictionary whose tables start with their zero value.
 */
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import { ROOT } from './collector';
import type { TestFrame, TestStack } from './pprof';

const OTLP_ROOT = path.join(ROOT, 'proto/otlp');
export const EXPORT_PATH = '/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export';

let root: protobuf.Root | undefined;

export function otlpRoot(): protobuf.Root {
  if (!root) {
    const r = new protobuf.Root();
    r.resolvePath = (_o, t) => (path.isAbsolute(t) ? t : path.join(OTLP_ROOT, t));
    r.loadSync(['opentelemetry/proto/collector/profiles/v1development/profiles_service.proto', 'google/rpc/status.proto']);
    r.resolveAll();
    root = r;
  }
  return root;
}

const type = (name: string): protobuf.Type => otlpRoot().lookupType(name);
export const RequestType = (): protobuf.Type => type('opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest');
export const ResponseType = (): protobuf.Type => type('opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceResponse');
export const StatusType = (): protobuf.Type => type('google.rpc.Status');

/** One OTLP profile of a snapshot: a sample type and each stack's value of it. */
export interface OtlpProfileSpec {
  type: [string, string];
  /** The stack's value for this type (objects or bytes by default). */
  value?: (s: TestStack) => number;
}

export interface SnapshotSpec {
  timeMs: number;
  stacks: TestStack[];
  /** Default: inuse_objects/count and inuse_space/bytes. */
  profiles?: OtlpProfileSpec[];
}

export const IN_USE: OtlpProfileSpec[] = [
  { type: ['inuse_objects', 'count'], value: (s) => s.objects },
  { type: ['inuse_space', 'bytes'], value: (s) => s.bytes },
];

/**
 * An ExportProfilesServiceRequest, as a plain object for protobufjs'
 * fromObject (camelCase names): one resource (its attributes), one scope,
 * the snapshots' profiles, one dictionary.
 */
export function heapRequest(resource: Record<string, string | number | boolean>, snapshots: SnapshotSpec[]): Record<string, unknown> {
  const strings = [''];
  const str = (s: string): number => {
    let i = strings.indexOf(s);
    if (i < 0) i = strings.push(s) - 1;
    return i;
  };
  const functions: Record<string, unknown>[] = [{}];
  const locations: Record<string, unknown>[] = [{}];
  const stacks: { locationIndices: number[] }[] = [{ locationIndices: [] }];
  const locationOf = new Map<string, number>();
  const loc = ([name, file, line]: TestFrame): number => {
    const key = `${name}\0${file}\0${line}`;
    let i = locationOf.get(key);
    if (i === undefined) {
      functions.push({ nameStrindex: str(name), systemNameStrindex: str(name), filenameStrindex: str(file), startLine: line });
      i = locations.push({ mappingIndex: 0, lines: [{ functionIndex: functions.length - 1, line }] }) - 1;
      locationOf.set(key, i);
    }
    return i;
  };
  const stackOf = new Map<string, number>();
  const stack = (s: TestStack): number => {
    const indices = s.frames.map(loc);
    const key = indices.join(',');
    let i = stackOf.get(key);
    if (i === undefined) {
      i = stacks.push({ locationIndices: indices }) - 1;
      stackOf.set(key, i);
    }
    return i;
  };
  const profiles = snapshots.flatMap((snap) =>
    (snap.profiles ?? IN_USE).map((p) => ({
      sampleType: { typeStrindex: str(p.type[0]), unitStrindex: str(p.type[1]) },
      periodType: { typeStrindex: str('space'), unitStrindex: str('bytes') },
      period: 524288,
      timeUnixNano: String(BigInt(snap.timeMs) * 1_000_000n),
      samples: snap.stacks.map((s) => ({ stackIndex: stack(s), values: [(p.value ?? ((x: TestStack) => x.bytes))(s)] })),
    })),
  );
  const attributes = Object.entries(resource).map(([key, v]) => ({
    key,
    value: typeof v === 'string' ? { stringValue: v } : typeof v === 'boolean' ? { boolValue: v } : { intValue: v },
  }));
  return {
    resourceProfiles: [{ resource: { attributes }, scopeProfiles: [{ scope: { name: 'test-heap-profiler', version: '1' }, profiles }] }],
    dictionary: { mappingTable: [{}], locationTable: locations, functionTable: functions, linkTable: [{}], stringTable: strings, attributeTable: [{}], stackTable: stacks },
  };
}

export function encodeRequest(req: Record<string, unknown>): Buffer {
  const t = RequestType();
  const err = t.verify(t.fromObject(req));
  if (err) throw new Error(err);
  return Buffer.from(t.encode(t.fromObject(req)).finish());
}

/** OTLP/JSON: lowerCamelCase keys, 64-bit integers as strings. */
export function jsonRequest(req: Record<string, unknown>): string {
  const t = RequestType();
  return JSON.stringify(t.toObject(t.fromObject(req), { longs: String, json: true }));
}

/** A gRPC client of ProfilesService/Export sending encoded requests as they are. */
export function exportClient(address: string): { export(body: Buffer, metadata?: grpc.Metadata): Promise<Record<string, unknown>>; close(): void } {
  const Client = grpc.makeGenericClientConstructor(
    {
      Export: {
        path: EXPORT_PATH,
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    'ProfilesService',
  );
  const client = new Client(address, grpc.credentials.createInsecure());
  return {
    export: (body, metadata = new grpc.Metadata()) =>
      new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          EXPORT_PATH,
          (b: Buffer) => b,
          (b: Buffer) => b,
          body,
          metadata,
          { deadline: Date.now() + 60_000 },
          (err: grpc.ServiceError | null, res?: Buffer) => (err ? reject(err) : resolve(ResponseType().toObject(ResponseType().decode(res!), { longs: Number }))),
        );
      }),
    close: () => client.close(),
  };
}
