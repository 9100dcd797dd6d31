/**
 * The agent's static codec (@heapwatch/proto/messages) against the contract:
 * its field tables must say exactly what ingest.proto says, and what it
 * encodes must decode, field for field, with protobufjs loaded from the
 * .proto (the reading grpc-js servers use).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { decodeIngestResponse, encodeIngestRequest, INGEST_REQUEST, INGEST_RESPONSE, type MessageSpec } from '../../proto/src/messages';
import { ROOT } from '../helpers/collector';

const root = new protobuf.Root();
root.loadSync(path.join(ROOT, 'proto/heapwatch/v1/ingest.proto'), { keepCase: false });
root.resolveAll();

function fieldsOf(type: protobuf.Type): unknown[] {
  return type.fieldsArray
    .map((f) => ({
      name: f.name,
      id: f.id,
      type: f instanceof protobuf.MapField ? `map<${f.keyType},${f.type}>` : f.resolvedType ? 'message' : f.type,
      message: f.resolvedType ? (f.resolvedType as protobuf.Type).fullName.replace(/^\./, '') : undefined,
      repeated: f.repeated || undefined,
    }))
    .sort((a, b) => a.id - b.id);
}

function specFields(spec: MessageSpec): unknown[] {
  return spec.fields.map((f) => ({ name: f.name, id: f.id, type: f.type, message: f.message?.fullName, repeated: f.repeated }));
}

function nestedSpecs(spec: MessageSpec): MessageSpec[] {
  return [spec, ...spec.fields.flatMap((f) => (f.message ? nestedSpecs(f.message) : []))];
}

describe('the static codec and ingest.proto', () => {
  it.each([...nestedSpecs(INGEST_REQUEST), INGEST_RESPONSE].map((s) => [s.fullName, s] as const))('%s has the same fields', (name, spec) => {
    expect(specFields(spec)).toEqual(fieldsOf(root.lookupType(name)));
  });

  it('encodes every field so that protobufjs reads it back', () => {
    const request = {
      profileId: '3f2c9a4e-0000-4000-8000-000000000001',
      service: 'payments-worker ✓',
      labels: { env: 'prod', region: 'eu-west-1' },
      instance: { hostname: 'worker-7', pid: 4_000_000_000, processStartTimeMs: 1_764_000_000_123, threadId: 3, runtimeVersion: 'v20.20.2', agentVersion: '0.1.0' },
      startTimeMs: 1_764_000_060_000,
      endTimeMs: 2 ** 53 - 1,
      pprofGzip: Buffer.from([0x1f, 0x8b, 0, 1, 2, 255]),
      memory: { rssBytes: 5 * 2 ** 32, heapUsedBytes: 1, heapTotalBytes: 2 ** 31, externalBytes: 127, arrayBuffersBytes: 128, heapSizeLimitBytes: 4_345_298_944 },
      agent: { profilesSent: 10, profilesDropped: 0, samplingTimeUs: 1234, queueLength: 2, queueBytes: 300_000, sendFailures: 1, forcedGcs: 40, forcedGcTimeUs: 123_456, preciseActivations: 2, preciseTimeMs: 3_600_000, preciseSwitchTimeUs: 45_678 },
      gc: { majorGcs: 17, lastMajorGcEndMs: 1_764_000_059_321, afterMajorGc: true },
      inliningDisabled: true,
      jobs: {
        types: [
          { queue: 'email', name: 'send-welcome ✓', completed: 2 ** 40, failed: 3, runTimeUs: 123_456_789, waitTimeMs: 4567, waited: 2 ** 40 },
          // A type with nothing but its queue: every default, still one entry on the wire.
          { queue: 'thumbnails', name: '', completed: 0, failed: 0, runTimeUs: 0, waitTimeMs: 0, waited: 0 },
        ],
        droppedJobs: 17,
        queues: [{ queue: 'email', waiting: 12_000, readAtMs: 1_764_000_059_000 }],
      },
      holders: {
        captureId: 'c0ffee',
        takenAtMs: 1_764_000_058_000,
        skipped: '',
        heapUsedBytes: 2 ** 33,
        maxHeapBytes: 256 * 2 ** 20,
        pauseMs: 1234,
        parseMs: 5678,
        leaves: 20_000,
        offHeapBytes: 2 ** 36,
        unreachable: 3,
        holders: [
          { owner: 'pendingRetries ✓', ownerKind: 'variable', container: 'Array', items: 212, function: 'createUploader', file: '/app/worker.js', line: 42, column: 10, offHeapBytes: 21_200_000, heapBytes: 40_000, objects: 212, path: 'pendingRetries (Array, 212 items) ← context of createUploader (app/worker.js:42)' },
          { owner: '', ownerKind: '', container: '', items: 0, function: '', file: '', line: 0, column: 0, offHeapBytes: 0, heapBytes: 0, objects: 0, path: '' },
        ],
      },
    };
    const Msg = root.lookupType('heapwatch.v1.IngestRequest');
    const decoded = Msg.toObject(Msg.decode(encodeIngestRequest(request)), { longs: Number, bytes: Buffer, defaults: true });
    expect(decoded).toEqual({ ...request, memory: request.memory, agent: request.agent });
  });

  it('a collector that predates job counters reads a request that carries them, and skips them', () => {
    // The contract as it was before `jobs = 12`: what an older collector decodes with.
    const text = fs.readFileSync(path.join(ROOT, 'proto/heapwatch/v1/ingest.proto'), 'utf8');
    const older = text.replace(/^\s*JobCounters jobs = 12;$/m, '');
    expect(older).not.toBe(text);
    const Old = protobuf.parse(older, { keepCase: false }).root.lookupType('heapwatch.v1.IngestRequest');
    const request = {
      profileId: 'p-1',
      service: 'jobs-worker',
      endTimeMs: 1_764_000_060_000,
      jobs: { types: [{ queue: 'email', name: 'send', completed: 5, failed: 1, runTimeUs: 10, waitTimeMs: 2, waited: 5 }], droppedJobs: 0, queues: [] },
    };
    const decoded = Old.toObject(Old.decode(encodeIngestRequest(request)), { longs: Number });
    expect(decoded).toEqual({ profileId: 'p-1', service: 'jobs-worker', endTimeMs: 1_764_000_060_000 });
  });

  it('writes nothing for proto3 defaults, and negative int64 as ten-byte varints', () => {
    expect(encodeIngestRequest({ profileId: '', labels: {}, startTimeMs: 0, pprofGzip: Buffer.alloc(0) })).toHaveLength(0);
    const Msg = root.lookupType('heapwatch.v1.IngestRequest');
    expect(Number(Msg.decode(encodeIngestRequest({ startTimeMs: -5 })).toJSON().startTimeMs)).toBe(-5);
  });

  it('refuses a non-integer where the contract has an integer', () => {
    expect(() => encodeIngestRequest({ endTimeMs: 1.5 })).toThrow(/endTimeMs must be an integer/);
  });

  it('decodes IngestResponse, skipping fields it does not know', () => {
    const Msg = root.lookupType('heapwatch.v1.IngestResponse');
    expect(decodeIngestResponse(Msg.encode({ stored: true }).finish())).toEqual({ stored: true });
    expect(decodeIngestResponse(new Uint8Array())).toEqual({ stored: false });
    // field 4 (length-delimited "hi"), field 3 (fixed32), then stored = true
    expect(decodeIngestResponse(Uint8Array.from([0x22, 2, 0x68, 0x69, 0x1d, 1, 2, 3, 4, 0x08, 1]))).toEqual({ stored: true });
    expect(() => decodeIngestResponse(Uint8Array.from([0x22, 5, 1]))).toThrow(/truncated/);
  });

  it('decodes the directive as protobufjs encodes it, and its absence as no directive', () => {
    const Msg = root.lookupType('heapwatch.v1.IngestResponse');
    const on = { stored: true, directive: { precise: true, preciseForMs: 4_000_000_000, reason: 'site recordFailure rising ✓' } };
    expect(decodeIngestResponse(Msg.encode(Msg.fromObject(on)).finish())).toEqual(on);
    // An all-defaults directive is present but empty on the wire: "turn precise mode off".
    expect(decodeIngestResponse(Msg.encode(Msg.fromObject({ directive: {} })).finish())).toEqual({
      stored: false,
      directive: { precise: false, preciseForMs: 0, reason: '' },
    });
    // A holder capture asked of this instance.
    const ask = { stored: true, directive: { precise: false, preciseForMs: 0, reason: 'off-heap memory rising', holders: { captureId: 'c0ffee-1' } } };
    expect(decodeIngestResponse(Msg.encode(Msg.fromObject(ask)).finish())).toEqual(ask);
    // What an old collector sends: no directive at all.
    expect(decodeIngestResponse(Msg.encode({ stored: true }).finish()).directive).toBeUndefined();
  });
});
