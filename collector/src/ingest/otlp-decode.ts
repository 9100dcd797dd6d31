/**
 * Decoding an OTLP `ExportProfilesServiceRequest` (proto/otlp/, the
 * profiles signal at opentelemetry-proto v1.10.0) within the ingest limits.
 *
 * protobufjs builds an object per message and per string, so a request of
 * tiny messages (an empty Stack is 2 bytes, its object ~100) would cost 50
 * times its size before anything could be counted. So, as the pprof reader
 * does (pprof-reader.ts), the bytes are first walked without allocating,
 * guided by the message types: every table's entries, every repeated
 * field's elements, every message and the nesting depth are counted, and
 * the walk stops at the first count over its limit (`countLimits`). Only
 * then does protobufjs decode. A JSON body is bounded the same way: its
 * values are counted in the text before it is parsed, and what it parses to
 * is encoded and walked like a binary body.
 */
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { PROTO_ROOT } from '@heapwatch/proto';
import { protoRoot } from '../protos';
import { invalid } from './errors';
import type { Limits } from './validate';

/** The include root of proto/otlp/, upstream's file layout. */
export const OTLP_PROTO_ROOT = path.join(PROTO_ROOT, 'otlp');
export const OTLP_SERVICE = 'opentelemetry.proto.collector.profiles.v1development.ProfilesService';
const REQUEST_TYPE = 'opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest';
const RESPONSE_TYPE = 'opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceResponse';

/**
 * Deeper nesting is refused before decoding (an AnyValue of arrays of
 * arrays...): protobufjs decodes recursively. Real requests nest 6 deep.
 */
const MAX_DEPTH = 32;

/** proto/otlp/, loaded once per process. */
export function otlpProtos(): protobuf.Root {
  return protoRoot(OTLP_PROTO_ROOT, ['opentelemetry/proto/collector/profiles/v1development/profiles_service.proto', 'google/rpc/status.proto']);
}

/** A 64-bit integer as protobufjs decodes it: a number, or a Long past 2^31. */
export type Int64 = number | { low: number; high: number; unsigned: boolean; toString(): string };

/**
 * Caps on what one request may hold, by field (`Message.field`, upstream's
 * names), from the ingest limits (validate.ts): the dictionary's tables as
 * the pprof's, samples of all profiles as one pprof's. `perParent` caps one
 * message's elements (lines of a location, frames of a stack). Besides
 * these, all repeated elements and strings together are capped at
 * maxFrames, and all messages at maxLines.
 */
function countLimits(limits: Limits): { total: Record<string, [number, string]>; perParent: Record<string, [number, string]> } {
  const l = (name: keyof Limits): [number, string] => [limits[name], name];
  return {
    total: {
      'ProfilesDictionary.string_table': l('maxStrings'),
      'ProfilesDictionary.attribute_table': l('maxStrings'),
      'ProfilesDictionary.function_table': l('maxFunctions'),
      'ProfilesDictionary.location_table': l('maxLocations'),
      'ProfilesDictionary.mapping_table': l('maxLocations'),
      'ProfilesDictionary.stack_table': l('maxSamples'),
      'ProfilesDictionary.link_table': l('maxSamples'),
      'Location.lines': l('maxLines'),
      'Stack.location_indices': l('maxFrames'),
      'Profile.samples': l('maxSamples'),
    },
    perParent: {
      'Location.lines': l('maxLinesPerLocation'),
      'Stack.location_indices': l('maxStackDepth'),
      'Sample.attribute_indices': l('maxLabelsPerSample'),
    },
  };
}

const keys = new WeakMap<protobuf.Field, string>();

/** `Message.field` with upstream's (snake_case) field name: what counts and messages name. */
function keyOf(type: protobuf.Type, field: protobuf.Field): string {
  let key = keys.get(field);
  if (key === undefined) keys.set(field, (key = `${type.name}.${field.name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`));
  return key;
}

/** Elements of a packed field of `type`, or -1 when the bytes do not divide. */
function packedCount(type: string, buf: Uint8Array, start: number, end: number): number {
  switch (type) {
    case 'double':
    case 'fixed64':
    case 'sfixed64':
      return (end - start) % 8 === 0 ? (end - start) / 8 : -1;
    case 'float':
    case 'fixed32':
    case 'sfixed32':
      return (end - start) % 4 === 0 ? (end - start) / 4 : -1;
    default: {
      let n = 0;
      for (let i = start; i < end; i++) if (buf[i]! < 0x80) n++;
      return end > start && buf[end - 1]! >= 0x80 ? -1 : n;
    }
  }
}

class Walk {
  nodes = 0;
  messages = 0;
  stringBytes = 0;
  readonly totals = new Map<string, number>();
  private readonly caps: ReturnType<typeof countLimits>;

  constructor(
    private readonly buf: Uint8Array,
    private readonly limits: Limits,
  ) {
    this.caps = countLimits(limits);
  }

  private varint(pos: number, end: number): [value: number, next: number] {
    let value = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw invalid('the body is truncated: a varint runs past its message');
      const b = this.buf[pos++]!;
      value += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) return [value, pos];
    }
    throw invalid('the body does not decode: a varint is longer than 10 bytes');
  }

  private add(key: string, n: number): void {
    const total = (this.totals.get(key) ?? 0) + n;
    this.totals.set(key, total);
    const cap = this.caps.total[key];
    if (cap && total > cap[0]) throw invalid(`the request's ${key} holds more than ${cap[0]} entries (limit ${cap[1]}, docs/security.md#ingest-limits)`);
    this.nodes += n;
    if (this.nodes > this.limits.maxFrames) {
      throw invalid(`the request holds more than ${this.limits.maxFrames} repeated values and strings (limit maxFrames, docs/security.md#ingest-limits)`);
    }
  }

  /** Walks one message of `type` in [pos, end). */
  message(type: protobuf.Type, pos: number, end: number, depth: number): void {
    if (depth > MAX_DEPTH) throw invalid(`the request nests messages more than ${MAX_DEPTH} deep`);
    if (++this.messages > this.limits.maxLines) {
      throw invalid(`the request holds more than ${this.limits.maxLines} messages (limit maxLines, docs/security.md#ingest-limits)`);
    }
    let local: Map<string, number> | undefined;
    const perParent = (key: string, n: number): void => {
      const cap = this.caps.perParent[key];
      if (!cap) return;
      local ??= new Map();
      const count = (local.get(key) ?? 0) + n;
      local.set(key, count);
      if (count > cap[0]) throw invalid(`a ${key.replace('.', "'s ")} holds more than ${cap[0]} entries (limit ${cap[1]}, docs/security.md#ingest-limits)`);
    };
    while (pos < end) {
      let tag: number;
      [tag, pos] = this.varint(pos, end);
      const wire = tag % 8;
      const field = type.fieldsById[Math.floor(tag / 8)];
      const key = field ? keyOf(type, field) : '';
      if (field?.repeated && wire !== 2) {
        this.add(key, 1);
        perParent(key, 1);
      }
      switch (wire) {
        case 0:
          [, pos] = this.varint(pos, end);
          break;
        case 1:
          pos += 8;
          break;
        case 5:
          pos += 4;
          break;
        case 2: {
          let len: number;
          [len, pos] = this.varint(pos, end);
          const next = pos + len;
          if (next > end) throw invalid(`the body is truncated: ${key || 'a field'} runs past its message`);
          if (field) {
            const child = field.resolvedType;
            if (child instanceof protobuf.Type) {
              if (field.repeated) {
                this.add(key, 1);
                perParent(key, 1);
              }
              this.message(child, pos, next, depth + 1);
            } else if (field.repeated && field.type !== 'string' && field.type !== 'bytes') {
              const n = packedCount(field.type, this.buf, pos, next);
              if (n < 0) throw invalid(`the body does not decode: ${key} is not a packed ${field.type} array`);
              this.add(key, n);
              perParent(key, n);
            } else {
              if (field.repeated) {
                this.add(key, 1);
                perParent(key, 1);
              }
              if (field.type === 'string') {
                this.stringBytes += len;
                if (this.stringBytes > this.limits.maxStringBytes) {
                  throw invalid(`the request's strings are over ${this.limits.maxStringBytes} bytes (limit maxStringBytes, docs/security.md#ingest-limits)`);
                }
              }
            }
          }
          pos = next;
          break;
        }
        default:
          throw invalid(`the body does not decode: wire type ${wire} (${key || `field ${Math.floor(tag / 8)}`}) is not proto3`);
      }
      if (pos > end) throw invalid(`the body is truncated: ${key || 'a field'} runs past its message`);
    }
  }
}

/** A decoded ExportProfilesServiceRequest, or INVALID_ARGUMENT saying why not. */
export function decodeExportRequest(bytes: Uint8Array, limits: Limits): protobuf.Message {
  const type = otlpProtos().lookupType(REQUEST_TYPE);
  new Walk(bytes, limits).message(type, 0, bytes.length, 0);
  try {
    return type.decode(bytes);
  } catch (err) {
    throw invalid(`the body does not decode as ${REQUEST_TYPE}: ${(err as Error).message}`);
  }
}

/**
 * The same from OTLP/JSON (lowerCamelCase keys, 64-bit integers as strings
 * or numbers): its values are counted in the text first (every `{`, `[` and
 * `,`, strings included, so the count is an upper bound), then it is parsed
 * and encoded, and decoded as a binary body is.
 */
export function decodeExportJson(text: string, limits: Limits): protobuf.Message {
  let values = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x5b || c === 0x2c) values++;
  }
  if (values > limits.maxFrames) throw invalid(`the JSON body holds more than ${limits.maxFrames} values (limit maxFrames, docs/security.md#ingest-limits)`);
  const type = otlpProtos().lookupType(REQUEST_TYPE);
  let bytes: Uint8Array;
  try {
    const json: unknown = text.trim() === '' ? {} : JSON.parse(text);
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('the body is not a JSON object');
    bytes = type.encode(type.fromObject(json as Record<string, unknown>)).finish();
  } catch (err) {
    throw invalid(`the body is not an ${REQUEST_TYPE} in JSON: ${(err as Error).message}`);
  }
  return decodeExportRequest(bytes, limits);
}

export interface ExportAnswer {
  /** Profiles of the request that were not stored (allocation profiles beside an in-use one). */
  rejected: number;
  /** Why, or ''. */
  message: string;
}

/** ExportProfilesServiceResponse, binary or JSON: partial_success only when something was left out. */
export function encodeExportResponse(answer: ExportAnswer, json: boolean): Uint8Array {
  const type = otlpProtos().lookupType(RESPONSE_TYPE);
  const body = answer.rejected > 0 || answer.message ? { partialSuccess: { rejectedProfiles: answer.rejected, errorMessage: answer.message } } : {};
  const msg = type.fromObject(body);
  if (!json) return type.encode(msg).finish();
  return Buffer.from(JSON.stringify(type.toObject(msg, { longs: String, json: true })));
}

/** google.rpc.Status, binary or JSON: the body of an OTLP/HTTP error. */
export function encodeStatus(code: number, message: string, json: boolean): Uint8Array {
  if (json) return Buffer.from(JSON.stringify({ code, message }));
  const type = otlpProtos().lookupType('google.rpc.Status');
  return type.encode(type.fromObject({ code, message })).finish();
}
