/**
 * Pyroscope's ingest APIs, so Pyroscope SDKs (and Grafana Alloy) write to
 * heapwatch: `POST /ingest?name=app{k=v}&from=&until=` with a pprof body
 * (raw, as @pyroscope/nodejs sends it, or the multipart field `profile`,
 * as the Go and other SDKs do), and Connect's `push.v1.PusherService/Push`.
 * Heap profiles are mapped onto the ingester (foreign-heap.ts); anything
 * else is refused with 400 and nothing is stored.
 *
 * A Pyroscope profile names no process: its instance is its series, the
 * service and its labels. The instance's hostname is the `hostname` (or
 * `host`, `pod`, `instance`) label, if any, with a hash of the series, so
 * two series never share an instance; the profile id is a hash of the
 * series, the window and the bytes, so a retried upload is stored once.
 *
 * Both routes need a token with the write scope (the HTTP dispatcher
 * checks it, http/server.ts) and store as that token's tenant.
 */
import { status } from '@grpc/grpc-js';
import type * as http from 'node:http';
import type { IngestRequest__Output } from '@heapwatch/proto';
import { IngestError } from '../ingest/errors';
import { foreignHeapProfile, foreignRequest, type Series } from '../ingest/foreign-heap';
import type { Ingester } from '../ingest/ingester';
import { SERVICE_LABEL } from '../store/store';
import { SECOND_MS } from '../units';
import { readBody } from './body';
import { ConnectError, type CallContext, type ConnectService, type PostHandler } from './connect';
import { HttpError } from './errors';
import { multipartField } from './multipart';

/** Old Pyroscope names carry the profile type after the application name. */
const TYPE_SUFFIX = /\.(cpu|itimer|wall|alloc_objects|alloc_space|inuse_objects|inuse_space|goroutines|mutex_count|mutex_duration|block_count|block_duration|exceptions|lock_count|lock_duration)$/;

/** `app.inuse_space{env=prod,region=eu}` -> service and labels. */
export function parseAppName(name: string): Series {
  const brace = name.indexOf('{');
  const app = (brace < 0 ? name : name.slice(0, brace)).trim().replace(TYPE_SUFFIX, '');
  const labels: Record<string, string> = {};
  if (brace >= 0) {
    if (!name.endsWith('}')) throw new IngestError(status.INVALID_ARGUMENT, `name ${JSON.stringify(name)}: labels must be {key=value,...}`);
    for (const pair of name.slice(brace + 1, -1).split(',')) {
      if (!pair.trim()) continue;
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new IngestError(status.INVALID_ARGUMENT, `name ${JSON.stringify(name)}: label ${JSON.stringify(pair)} is not key=value`);
      labels[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
    }
  }
  return { service: app, labels };
}

function httpStatus(err: IngestError): number {
  if (err.code === status.INVALID_ARGUMENT) return 400;
  if (err.code === status.RESOURCE_EXHAUSTED) return 429;
  return 503;
}

/** Pyroscope sends Unix seconds (or ms, ns, µs); anything past 1e11 is not seconds. */
function unixMs(name: string, value: string | null, fallback: number): number {
  if (value === null || value === '') return fallback;
  if (!/^\d+$/.test(value)) throw new HttpError(400, `${name}=${JSON.stringify(value)} is not a Unix time`);
  let n = Number(value);
  while (n > 1e14) n /= 1000; // ns or µs -> ms
  return n < 1e11 ? n * 1000 : n;
}

export function pyroscopeIngestRoute(ingester: Ingester, maxBodyBytes: number): PostHandler {
  return async (req: http.IncomingMessage, res: http.ServerResponse, { tenant }: CallContext) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const q = url.searchParams;
    const name = q.get('name');
    if (!name) throw new HttpError(400, 'name is required: ?name=app{key=value,...}');
    const format = q.get('format') ?? 'pprof';
    if (format !== 'pprof') throw new HttpError(400, `format ${JSON.stringify(format)} is not supported; heapwatch stores pprof heap profiles`);
    const now = Date.now();
    const untilMs = unixMs('until', q.get('until'), now);
    const fromMs = unixMs('from', q.get('from'), untilMs);
    const body = await readBody(req, maxBodyBytes);
    const type = req.headers['content-type'] ?? '';
    let pprof: Buffer = body;
    if (/^multipart\/form-data/i.test(type)) {
      const field = multipartField(body, type, 'profile');
      if (!field) throw new HttpError(400, 'the multipart body has no "profile" field');
      pprof = field;
    }
    try {
      const series = parseAppName(name);
      const spyName = q.get('spyName') ?? '';
      const heap = await foreignHeapProfile(pprof, ingester.limits, { nodeNames: spyName === 'nodespy' });
      // from and until are whole seconds; the profile's own time (in ms, as
      // @datadog/pprof sets it) refines the end where it falls within them,
      // so that snapshots less than a second apart stay apart.
      const own = heap.timeMs + heap.durationMs;
      const endMs = heap.timeMs > 0 && own >= untilMs - SECOND_MS && own <= untilMs + SECOND_MS ? own : untilMs;
      const request = foreignRequest(series, heap.pprof, Math.min(fromMs, endMs), endMs, { runtime: spyName, agent: 'pyroscope' });
      await ingester.ingest(request, tenant);
    } catch (err) {
      if (err instanceof IngestError) throw new HttpError(httpStatus(err), err.message);
      throw err;
    }
    res.writeHead(200, { 'content-length': 0 });
    res.end();
  };
}

const CONNECT_CODE = { [status.INVALID_ARGUMENT]: 'invalid_argument', [status.RESOURCE_EXHAUSTED]: 'resource_exhausted' } as const;

export function pusherService(ingester: Ingester): ConnectService {
  return {
    name: 'push.v1.PusherService',
    methods: {
      Push: async (req, { tenant }) => {
        const requests: IngestRequest__Output[] = [];
        const series = (req.series as { labels: { name: string; value: string }[]; samples: { rawProfile: Uint8Array; ID: string }[] }[]) ?? [];
        if (series.length === 0) throw new ConnectError('invalid_argument', 'series is empty');
        try {
          for (const [i, s] of series.entries()) {
            const labels = Object.fromEntries(s.labels.map((l) => [l.name, l.value]));
            const service = labels[SERVICE_LABEL];
            if (!service) throw new ConnectError('invalid_argument', `series[${i}] has no service_name label`);
            if (labels.__name__ && labels.__name__ !== 'memory') {
              throw new ConnectError('invalid_argument', `series[${i}] is a ${labels.__name__} profile; heapwatch stores in-use heap profiles (__name__="memory") only`);
            }
            for (const sample of s.samples) {
              const heap = await foreignHeapProfile(Buffer.from(sample.rawProfile), ingester.limits);
              // The profile's own time, so that a retried push has the same id.
              const end = heap.timeMs > 0 ? heap.timeMs + heap.durationMs : Date.now();
              requests.push(foreignRequest({ service, labels }, heap.pprof, end - heap.durationMs, end, { runtime: 'push', agent: 'pyroscope' }));
            }
          }
          await ingester.ingestAll(requests, tenant);
        } catch (err) {
          if (err instanceof IngestError) {
            throw new ConnectError(CONNECT_CODE[err.code as keyof typeof CONNECT_CODE] ?? 'unavailable', err.message);
          }
          throw err;
        }
        return {};
      },
    },
  };
}
