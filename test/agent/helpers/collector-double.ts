/**
 * A test double of the collector for the agent's own tests: a real grpc-js
 * server implementing heapwatch.v1.IngestService that records every request
 * and decodes its pprof. (End-to-end tests against the real collector live
 * elsewhere.)
 */
import { gunzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { ingestProto, type IngestRequest__Output } from '@heapwatch/proto';
import { Profile } from 'pprof-format';

export interface Received {
  request: IngestRequest__Output;
  authorization: string | undefined;
  profile: Profile;
  atMs: number;
}

export interface CollectorDouble {
  port: number;
  address: string;
  received: Received[];
  waitFor(pred: (all: Received[]) => boolean, timeoutMs: number, what: string): Promise<void>;
  close(): Promise<void>;
}

export interface Directive {
  precise: boolean;
  preciseForMs?: number;
  reason?: string;
}

/**
 * `directive(n)`: the AgentDirective to answer the n-th request (1-based)
 * with, or undefined for none (what a collector that predates directives
 * sends).
 */
export async function startCollectorDouble(port = 0, directive: (n: number) => Directive | undefined = () => undefined): Promise<CollectorDouble> {
  const received: Received[] = [];
  const server = new grpc.Server();
  server.addService(ingestProto().heapwatch.v1.IngestService.service, {
    ingest(call: grpc.ServerUnaryCall<IngestRequest__Output, unknown>, cb: grpc.sendUnaryData<unknown>) {
      try {
        const profile = Profile.decode(gunzipSync(call.request.pprofGzip));
        const auth = call.metadata.get('authorization')[0];
        received.push({ request: call.request, authorization: auth?.toString(), profile, atMs: Date.now() });
        const d = directive(received.length);
        cb(null, d ? { stored: true, directive: d } : { stored: true });
      } catch (e) {
        cb({ code: grpc.status.INVALID_ARGUMENT, details: String(e) });
      }
    },
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    port: bound,
    address: `127.0.0.1:${bound}`,
    received,
    async waitFor(pred, timeoutMs, what) {
      const until = Date.now() + timeoutMs;
      while (!pred(received)) {
        if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${received.length} profiles`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

/** Retained bytes by the leaf-most frame that has a script url (skips builtins such as push). */
export function bytesByTopUserFrame(profile: Profile): Map<string, number> {
  const str = (i: number | bigint): string => profile.stringTable.strings[Number(i)] ?? '';
  const spaceIdx = profile.sampleType.findIndex((t) => str(t.type) === 'space');
  const fns = new Map(profile.function.map((f) => [Number(f.id), f]));
  const locs = new Map(profile.location.map((l) => [Number(l.id), l]));
  const out = new Map<string, number>();
  for (const s of profile.sample) {
    let name: string | undefined;
    for (const locId of s.locationId) {
      const fn = fns.get(Number(locs.get(Number(locId))?.line[0]?.functionId ?? 0));
      if (fn && str(fn.filename) !== '') {
        name = str(fn.name);
        break;
      }
    }
    if (name === undefined) continue;
    out.set(name, (out.get(name) ?? 0) + Number(s.value[spaceIdx] ?? 0));
  }
  return out;
}

export function topOf(m: Map<string, number>): string | undefined {
  return [...m.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
}
