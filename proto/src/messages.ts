/**
 * The heapwatch.v1 messages alone, for encoding and decoding without a gRPC
 * or protobuf library: `@heapwatch/proto/messages`. The agent speaks gRPC
 * over node:http2 with this, inside the host's process, where every
 * megabyte counts: loading protobufjs alone costs a host about 8 MB RSS.
 *
 * The codec is driven by the field tables below, which restate
 * ingest.proto. test/proto/messages.test.ts fails when a table and the
 * .proto disagree (a field added, renumbered or re-typed) and round-trips
 * every field through protobufjs loaded from the .proto, so the wire format
 * cannot drift from the contract.
 */
import type { IngestRequest } from './generated/heapwatch/v1/IngestRequest';

export type { IngestRequest } from './generated/heapwatch/v1/IngestRequest';
export type { IngestResponse, IngestResponse__Output } from './generated/heapwatch/v1/IngestResponse';
export type { Instance } from './generated/heapwatch/v1/Instance';
export type { ProcessMemory } from './generated/heapwatch/v1/ProcessMemory';
export type { AgentStats } from './generated/heapwatch/v1/AgentStats';
export type { GcInfo } from './generated/heapwatch/v1/GcInfo';
export type { AgentDirective } from './generated/heapwatch/v1/AgentDirective';
export type { JobCounters } from './generated/heapwatch/v1/JobCounters';
export type { JobTypeCounters } from './generated/heapwatch/v1/JobTypeCounters';
export type { QueueDepth } from './generated/heapwatch/v1/QueueDepth';
export type { HolderCapture } from './generated/heapwatch/v1/HolderCapture';
export type { Holder, Holder__Output } from './generated/heapwatch/v1/Holder';

/** The fully-qualified method path of IngestService.Ingest, as it goes on the wire (`:path`). */
export const INGEST_METHOD_PATH = '/heapwatch.v1.IngestService/Ingest';

export type ScalarType = 'string' | 'bytes' | 'bool' | 'int64' | 'uint32' | 'uint64';

export interface FieldSpec {
  /** camelCase, as @grpc/proto-loader and the generated types name it. */
  name: string;
  id: number;
  type: ScalarType | 'message' | 'map<string,string>';
  message?: MessageSpec;
  /** A `repeated` field (messages only): an array, one wire entry per element. */
  repeated?: true;
}

export interface MessageSpec {
  /** Fully-qualified name in the .proto. */
  fullName: string;
  fields: FieldSpec[];
}

const Instance: MessageSpec = {
  fullName: 'heapwatch.v1.Instance',
  fields: [
    { name: 'hostname', id: 1, type: 'string' },
    { name: 'pid', id: 2, type: 'uint32' },
    { name: 'processStartTimeMs', id: 3, type: 'int64' },
    { name: 'threadId', id: 4, type: 'uint32' },
    { name: 'runtimeVersion', id: 5, type: 'string' },
    { name: 'agentVersion', id: 6, type: 'string' },
  ],
};

const ProcessMemory: MessageSpec = {
  fullName: 'heapwatch.v1.ProcessMemory',
  fields: [
    { name: 'rssBytes', id: 1, type: 'uint64' },
    { name: 'heapUsedBytes', id: 2, type: 'uint64' },
    { name: 'heapTotalBytes', id: 3, type: 'uint64' },
    { name: 'externalBytes', id: 4, type: 'uint64' },
    { name: 'arrayBuffersBytes', id: 5, type: 'uint64' },
    { name: 'heapSizeLimitBytes', id: 6, type: 'uint64' },
  ],
};

const AgentStats: MessageSpec = {
  fullName: 'heapwatch.v1.AgentStats',
  fields: [
    { name: 'profilesSent', id: 1, type: 'uint64' },
    { name: 'profilesDropped', id: 2, type: 'uint64' },
    { name: 'samplingTimeUs', id: 3, type: 'uint64' },
    { name: 'queueLength', id: 4, type: 'uint64' },
    { name: 'queueBytes', id: 5, type: 'uint64' },
    { name: 'sendFailures', id: 6, type: 'uint64' },
    { name: 'forcedGcs', id: 7, type: 'uint64' },
    { name: 'forcedGcTimeUs', id: 8, type: 'uint64' },
    { name: 'preciseActivations', id: 9, type: 'uint64' },
    { name: 'preciseTimeMs', id: 10, type: 'uint64' },
    { name: 'preciseSwitchTimeUs', id: 11, type: 'uint64' },
  ],
};

const GcInfo: MessageSpec = {
  fullName: 'heapwatch.v1.GcInfo',
  fields: [
    { name: 'majorGcs', id: 1, type: 'uint64' },
    { name: 'lastMajorGcEndMs', id: 2, type: 'int64' },
    { name: 'afterMajorGc', id: 3, type: 'bool' },
  ],
};

const JobTypeCounters: MessageSpec = {
  fullName: 'heapwatch.v1.JobTypeCounters',
  fields: [
    { name: 'queue', id: 1, type: 'string' },
    { name: 'name', id: 2, type: 'string' },
    { name: 'completed', id: 3, type: 'uint64' },
    { name: 'failed', id: 4, type: 'uint64' },
    { name: 'runTimeUs', id: 5, type: 'uint64' },
    { name: 'waitTimeMs', id: 6, type: 'uint64' },
    { name: 'waited', id: 7, type: 'uint64' },
  ],
};

const QueueDepth: MessageSpec = {
  fullName: 'heapwatch.v1.QueueDepth',
  fields: [
    { name: 'queue', id: 1, type: 'string' },
    { name: 'waiting', id: 2, type: 'uint64' },
    { name: 'readAtMs', id: 3, type: 'int64' },
  ],
};

const JobCounters: MessageSpec = {
  fullName: 'heapwatch.v1.JobCounters',
  fields: [
    { name: 'types', id: 1, type: 'message', message: JobTypeCounters, repeated: true },
    { name: 'droppedJobs', id: 2, type: 'uint64' },
    { name: 'queues', id: 3, type: 'message', message: QueueDepth, repeated: true },
  ],
};

const Holder: MessageSpec = {
  fullName: 'heapwatch.v1.Holder',
  fields: [
    { name: 'owner', id: 1, type: 'string' },
    { name: 'ownerKind', id: 2, type: 'string' },
    { name: 'container', id: 3, type: 'string' },
    { name: 'items', id: 4, type: 'uint64' },
    { name: 'function', id: 5, type: 'string' },
    { name: 'file', id: 6, type: 'string' },
    { name: 'line', id: 7, type: 'uint32' },
    { name: 'column', id: 8, type: 'uint32' },
    { name: 'offHeapBytes', id: 9, type: 'uint64' },
    { name: 'heapBytes', id: 10, type: 'uint64' },
    { name: 'objects', id: 11, type: 'uint64' },
    { name: 'path', id: 12, type: 'string' },
  ],
};

const HolderCapture: MessageSpec = {
  fullName: 'heapwatch.v1.HolderCapture',
  fields: [
    { name: 'captureId', id: 1, type: 'string' },
    { name: 'takenAtMs', id: 2, type: 'int64' },
    { name: 'skipped', id: 3, type: 'string' },
    { name: 'heapUsedBytes', id: 4, type: 'uint64' },
    { name: 'maxHeapBytes', id: 5, type: 'uint64' },
    { name: 'pauseMs', id: 6, type: 'uint32' },
    { name: 'parseMs', id: 7, type: 'uint32' },
    { name: 'leaves', id: 8, type: 'uint64' },
    { name: 'offHeapBytes', id: 9, type: 'uint64' },
    { name: 'unreachable', id: 10, type: 'uint64' },
    { name: 'holders', id: 11, type: 'message', message: Holder, repeated: true },
  ],
};

export const INGEST_REQUEST: MessageSpec = {
  fullName: 'heapwatch.v1.IngestRequest',
  fields: [
    { name: 'profileId', id: 1, type: 'string' },
    { name: 'service', id: 2, type: 'string' },
    { name: 'labels', id: 3, type: 'map<string,string>' },
    { name: 'instance', id: 4, type: 'message', message: Instance },
    { name: 'startTimeMs', id: 5, type: 'int64' },
    { name: 'endTimeMs', id: 6, type: 'int64' },
    { name: 'pprofGzip', id: 7, type: 'bytes' },
    { name: 'memory', id: 8, type: 'message', message: ProcessMemory },
    { name: 'agent', id: 9, type: 'message', message: AgentStats },
    { name: 'gc', id: 10, type: 'message', message: GcInfo },
    { name: 'inliningDisabled', id: 11, type: 'bool' },
    { name: 'jobs', id: 12, type: 'message', message: JobCounters },
    { name: 'holders', id: 13, type: 'message', message: HolderCapture },
  ],
};

const HolderCaptureRequest: MessageSpec = {
  fullName: 'heapwatch.v1.HolderCaptureRequest',
  fields: [{ name: 'captureId', id: 1, type: 'string' }],
};

const AgentDirective: MessageSpec = {
  fullName: 'heapwatch.v1.AgentDirective',
  fields: [
    { name: 'precise', id: 1, type: 'bool' },
    { name: 'preciseForMs', id: 2, type: 'uint32' },
    { name: 'reason', id: 3, type: 'string' },
    { name: 'holders', id: 4, type: 'message', message: HolderCaptureRequest },
  ],
};

export const INGEST_RESPONSE: MessageSpec = {
  fullName: 'heapwatch.v1.IngestResponse',
  fields: [
    { name: 'stored', id: 1, type: 'bool' },
    { name: 'directive', id: 2, type: 'message', message: AgentDirective },
  ],
};

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

/** Collects the encoded pieces; big byte fields are referenced, not copied, until the end. */
class Writer {
  readonly parts: Uint8Array[] = [];
  length = 0;

  varint(value: number | bigint): void {
    let v = typeof value === 'bigint' ? BigInt.asUintN(64, value) : value;
    if (typeof v === 'number' && v < 0) v = BigInt.asUintN(64, BigInt(v));
    const out: number[] = [];
    if (typeof v === 'bigint') {
      while (v > 0x7fn) {
        out.push(Number(v & 0x7fn) | 0x80);
        v >>= 7n;
      }
      out.push(Number(v));
    } else {
      // Numbers above 2^31 must not go through bitwise operators.
      while (v > 0x7f) {
        out.push((v % 0x80) | 0x80);
        v = Math.floor(v / 0x80);
      }
      out.push(v);
    }
    this.push(Uint8Array.from(out));
  }

  tag(id: number, wireType: number): void {
    this.varint(id * 8 + wireType);
  }

  bytes(data: Uint8Array): void {
    this.varint(data.length);
    this.push(data);
  }

  push(part: Uint8Array): void {
    this.parts.push(part);
    this.length += part.length;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }
}

function toInteger(name: string, value: unknown): number | bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  throw new TypeError(`${name} must be an integer, got ${String(value)}`);
}

function writeMessage(w: Writer, spec: MessageSpec, msg: Record<string, unknown>): void {
  for (const f of spec.fields) {
    const value = msg[f.name];
    // proto3 implicit presence: defaults are not written.
    if (value === undefined || value === null) continue;
    switch (f.type) {
      case 'string': {
        if (value === '') break;
        w.tag(f.id, LENGTH_DELIMITED);
        w.bytes(Buffer.from(String(value), 'utf8'));
        break;
      }
      case 'bytes': {
        const data = typeof value === 'string' ? Buffer.from(value, 'base64') : (value as Uint8Array);
        if (data.length === 0) break;
        w.tag(f.id, LENGTH_DELIMITED);
        w.bytes(data);
        break;
      }
      case 'bool':
        if (value !== true) break;
        w.tag(f.id, VARINT);
        w.varint(1);
        break;
      case 'int64':
      case 'uint32':
      case 'uint64': {
        const n = toInteger(`${spec.fullName}.${f.name}`, value);
        if (n === 0 || n === 0n) break;
        w.tag(f.id, VARINT);
        w.varint(n);
        break;
      }
      case 'map<string,string>':
        for (const [k, v] of Object.entries(value as Record<string, string>)) {
          const entry = new Writer();
          writeMessage(entry, MAP_ENTRY, { key: k, value: v });
          w.tag(f.id, LENGTH_DELIMITED);
          w.varint(entry.length);
          for (const p of entry.parts) w.push(p);
        }
        break;
      case 'message':
        for (const element of f.repeated ? (value as Record<string, unknown>[]) : [value as Record<string, unknown>]) {
          const nested = new Writer();
          writeMessage(nested, f.message!, element);
          w.tag(f.id, LENGTH_DELIMITED);
          w.varint(nested.length);
          for (const p of nested.parts) w.push(p);
        }
        break;
    }
  }
}

const MAP_ENTRY: MessageSpec = {
  fullName: '(map entry)',
  fields: [
    { name: 'key', id: 1, type: 'string' },
    { name: 'value', id: 2, type: 'string' },
  ],
};

/** IngestRequest -> protobuf bytes (not framed). Throws TypeError on a non-integer numeric field. */
export function encodeIngestRequest(request: IngestRequest): Buffer {
  const w = new Writer();
  writeMessage(w, INGEST_REQUEST, request as Record<string, unknown>);
  return w.finish();
}

/** What the agent reads of a collector's directive (absent fields are proto3 defaults). */
export interface DecodedDirective {
  precise: boolean;
  preciseForMs: number;
  reason: string;
  /** The holder capture asked of this instance (AgentDirective.holders), if any. */
  holders?: { captureId: string };
}

/** What the agent reads of an IngestResponse; `directive` is undefined when the collector sent none. */
export interface DecodedIngestResponse {
  stored: boolean;
  directive?: DecodedDirective;
}

/**
 * protobuf bytes -> IngestResponse. Unknown fields are skipped, as protobuf
 * requires, so a newer collector's additions never break an older agent.
 * Throws on malformed input.
 */
export function decodeIngestResponse(data: Uint8Array): DecodedIngestResponse {
  const out: DecodedIngestResponse = { stored: false };
  readFields(data, (id, value) => {
    if (id === 1 && typeof value === 'number') out.stored = value !== 0;
    else if (id === 2 && typeof value !== 'number') out.directive = decodeDirective(value);
  });
  return out;
}

function decodeDirective(data: Uint8Array): DecodedDirective {
  const d: DecodedDirective = { precise: false, preciseForMs: 0, reason: '' };
  readFields(data, (id, value) => {
    if (id === 1 && typeof value === 'number') d.precise = value !== 0;
    else if (id === 2 && typeof value === 'number') d.preciseForMs = value % 2 ** 32;
    else if (id === 3 && typeof value !== 'number') d.reason = Buffer.from(value).toString('utf8');
    else if (id === 4 && typeof value !== 'number') d.holders = decodeHolderRequest(value);
  });
  return d;
}

function decodeHolderRequest(data: Uint8Array): { captureId: string } {
  const r = { captureId: '' };
  readFields(data, (id, value) => {
    if (id === 1 && typeof value !== 'number') r.captureId = Buffer.from(value).toString('utf8');
  });
  return r;
}

/**
 * Walks the fields of one message: `visit(id, value)` gets a varint field's
 * value (above 2^53 rounded) or a length-delimited field's bytes.
 * Fixed-width fields are skipped.
 */
function readFields(data: Uint8Array, visit: (id: number, value: number | Uint8Array) => void): void {
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= data.length) throw new RangeError('truncated varint');
      const b = data[pos++]!;
      if (shift < 53) result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return result;
      shift += 7;
      if (shift > 63) throw new RangeError('varint longer than 10 bytes');
    }
  };
  while (pos < data.length) {
    const key = varint();
    const id = Math.floor(key / 8);
    const wireType = key % 8;
    if (wireType === VARINT) visit(id, varint());
    else if (wireType === LENGTH_DELIMITED) {
      const length = varint(); // read before adding: `pos += varint()` would add to the old pos
      if (pos + length > data.length) throw new RangeError('truncated field');
      visit(id, data.subarray(pos, pos + length));
      pos += length;
    } else if (wireType === FIXED64) pos += 8;
    else if (wireType === FIXED32) pos += 4;
    else throw new RangeError(`unsupported wire type ${wireType}`);
    if (pos > data.length) throw new RangeError('truncated field');
  }
}
