import * as fs from 'node:fs';
import * as path from 'node:path';
/** Unit tests of the collector's small parts: batching, caches, parsing. */
import { describe, expect, it } from 'vitest';
import { Batcher, OverloadedError } from '../../collector/src/store/batcher';
import { BoundedSet } from '../../collector/src/lru';
import { StoredProfiles } from '../../collector/src/ingest/stored-profiles';
import { Admission, isRefusal, type Ticket } from '../../collector/src/ingest/admission';
import { profileKeyString, type ProfileKey, type ProfileStore } from '../../collector/src/store/store';
import { combine, hashString, toDecimal } from '../../collector/src/hash';
import { parseTime } from '../../collector/src/http/server';
import { serveOptions } from '../../collector/src/cli';
import { profilesInsert } from '../../collector/src/store/profiles-insert';
import { schemaStatements } from '../../collector/src/store/schema';

describe('Batcher', () => {
  const opts = { maxBatchRows: 3, maxDelayMs: 10, maxPendingRows: 5, concurrency: 1 };

  it('groups rows from several callers into one insert and settles each caller with it', async () => {
    const inserts: number[][] = [];
    const b = new Batcher<number>(async (rows) => void inserts.push([...rows]), { ...opts, maxBatchRows: 100 });
    await Promise.all([b.add([1]), b.add([2, 3])]);
    expect(inserts).toEqual([[1, 2, 3]]);
    expect(b.insertedRows).toBe(3);
  });

  it('flushes at maxBatchRows without waiting for the delay', async () => {
    const inserts: number[][] = [];
    const b = new Batcher<number>(async (rows) => void inserts.push([...rows]), { ...opts, maxDelayMs: 60_000 });
    await b.add([1, 2, 3]);
    expect(inserts).toEqual([[1, 2, 3]]);
  });

  it('refuses past maxPendingRows, counts the refusal, and recovers once written', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = new Batcher<number>(() => gate, opts);
    const first = b.add([1, 2, 3]);
    await expect(b.add([4, 5, 6])).rejects.toBeInstanceOf(OverloadedError);
    expect(b.refusedRows).toBe(3);
    expect(b.pendingRows).toBe(3);
    release();
    await first;
    expect(b.pendingRows).toBe(0);
    await expect(b.add([7])).resolves.toBeUndefined();
  });

  it('while the inserts are busy, batches that ripen keep taking rows and go as one insert (group commit)', async () => {
    // Sealed at their delay, the 20 adds below were 20 inserts of one row
    // each behind the busy one; each insert has a fixed cost in the store.
    const inserts: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = new Batcher<number>(async (rows) => {
      inserts.push([...rows]);
      if (inserts.length === 1) await gate;
    }, { ...opts, maxBatchRows: 100, maxPendingRows: 100, maxDelayMs: 1 });
    const first = b.add([0]);
    while (inserts.length === 0) await new Promise((r) => setTimeout(r, 5));
    const later: Promise<void>[] = [];
    for (let i = 1; i <= 20; i++) {
      later.push(b.add([i]));
      await new Promise((r) => setTimeout(r, 3));
    }
    release();
    await Promise.all([first, ...later]);
    expect(inserts).toEqual([[0], Array.from({ length: 20 }, (_, i) => i + 1)]);
  });

  it('rejects every caller of a failed insert and keeps working', async () => {
    let fail = true;
    const b = new Batcher<number>(async () => {
      if (fail) throw new Error('store down');
    }, opts);
    await expect(Promise.all([b.add([1]), b.add([2])])).rejects.toThrow('store down');
    expect(b.failedInserts).toBe(1);
    fail = false;
    await expect(b.add([3])).resolves.toBeUndefined();
    expect(b.pendingRows).toBe(0);
  });
});

describe('Admission', () => {
  const opts = { maxInFlightRequests: 128, maxInFlightBytes: 1000, maxHoldMs: 60_000, minInFlight: 16 };

  it('with no completion to go by admits 16, not 128; one completion opens the rest up to the deadline estimate', () => {
    const a = new Admission(opts, () => 0.5);
    const tickets = Array.from({ length: 16 }, () => a.enter(10_000));
    expect(tickets.every((t) => !isRefusal(t))).toBe(true);
    const refused = a.enter(10_000);
    expect(isRefusal(refused) && refused.refused).toMatch(/warming up/);
    expect(isRefusal(refused) && refused.retryAfterMs).toBeGreaterThanOrEqual(250);
    (tickets[0] as Ticket).leave(true);
    // One completion within the window: the 16 in flight drain well within 10 s.
    expect(isRefusal(a.enter(10_000))).toBe(false);
    expect(a.inFlightRequests).toBe(16);
  });

  it('gives a ticket back once however often it leaves, with its bytes', () => {
    const a = new Admission(opts);
    const t = a.enter() as Ticket;
    const u = a.enter() as Ticket;
    expect(t.addBytes(600)).toBeUndefined();
    expect(u.addBytes(600)).toMatchObject({ refused: expect.stringMatching(/bytes in flight/) });
    t.leave(true);
    t.leave(false);
    expect([a.inFlightRequests, a.inFlightBytes]).toEqual([1, 0]);
    u.leave(false);
    expect(a.metrics()).toMatchObject({ requests_in_flight: 0, request_bytes_in_flight: 0, requests_admitted_total: 2, requests_abandoned_total: 1, requests_shed_total: 1 });
  });
});

describe('StoredProfiles', () => {
  it('asks the store one query at a time, each for every question asked while the previous was out', async () => {
    // Only storedProfiles is called; the store's answer is beside the point (the count of queries is).
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const asked: number[] = [];
    const store = {
      storedProfiles: async (keys: readonly ProfileKey[]) => {
        asked.push(keys.length);
        if (asked.length === 1) await gate;
        return new Set([profileKeyString(keys[0]!)]);
      },
    } as unknown as ProfileStore;
    const sp = new StoredProfiles(store);
    const key = (i: number): ProfileKey => ({ tenant: '', service: 's', instance: 'i', profileId: `p${i}` });
    const first = sp.has(key(0));
    while (asked.length === 0) await new Promise((r) => setTimeout(r, 1));
    const later: Promise<boolean>[] = [];
    for (let i = 1; i <= 20; i++) {
      later.push(sp.has(key(i)));
      await new Promise((r) => setImmediate(r));
    }
    release();
    const answers = await Promise.all([first, ...later]);
    expect(asked).toEqual([1, 20]);
    expect(answers.filter(Boolean)).toHaveLength(2);
  });
});

describe('BoundedSet', () => {
  it('forgets the oldest keys beyond its capacity and counts them', () => {
    const s = new BoundedSet(2);
    for (const k of ['a', 'b', 'c']) s.add(k);
    expect([s.has('a'), s.has('b'), s.has('c'), s.size, s.evicted]).toEqual([false, true, true, 2, 1]);
  });
});

describe('hash', () => {
  it('is deterministic, order-sensitive and 64-bit', () => {
    const a = hashString('recordFailure\0/app/retry.js\x0012');
    const b = hashString('tick\0/app/loop.js\x003');
    expect(toDecimal(combine([a, b]))).toBe(toDecimal(combine([a, b])));
    expect(toDecimal(combine([a, b]))).not.toBe(toDecimal(combine([b, a])));
    expect(BigInt(toDecimal(combine([a, b])))).toBeLessThan(2n ** 64n);
  });
});

describe('parseTime', () => {
  it('takes ISO 8601 and Unix milliseconds, and says what is wrong otherwise', () => {
    expect(parseTime('from', '2026-11-27T10:00:00Z', 0)).toBe(Date.UTC(2026, 10, 27, 10));
    expect(parseTime('from', '1700000000000', 0)).toBe(1_700_000_000_000);
    expect(parseTime('from', null, 42)).toBe(42);
    expect(() => parseTime('from', 'last tuesday', 0)).toThrow(/from="last tuesday" is neither/);
  });
});

describe('heapwatch serve options', () => {
  it('lets flags win over the environment', () => {
    expect(serveOptions(['--grpc-port', '9000'], { HEAPWATCH_GRPC_PORT: '8000', HEAPWATCH_HTTP_PORT: '8001' })).toMatchObject({ grpcPort: 9000, httpPort: 8001 });
    expect(serveOptions(['--suspect-ttl-ms', '250'], {})).toMatchObject({ suspectTtlMs: 250 });
    expect(serveOptions([], { HEAPWATCH_SUSPECT_TTL_MS: '0' })).toMatchObject({ suspectTtlMs: 0 });
    expect(serveOptions([], {})).not.toHaveProperty('suspectTtlMs');
  });

  it.each([
    [['--grpc-port', 'abc'], {}, /--grpc-port must be a whole number/],
    [['--http-port', '70000'], {}, /--http-port must be a whole number from 0 to 65535/],
    [[], { HEAPWATCH_LOG_LEVEL: 'loud' }, /--log-level must be/],
    [['--clickhouse-url', 'clickhouse:9000'], {}, /must be an http\(s\):\/\/ URL/],
    [['--bogus'], {}, /Unknown option/],
  ])('fails fast on %j %j', (argv, env, message) => {
    expect(() => serveOptions(argv as string[], env as NodeJS.ProcessEnv)).toThrow(message);
  });
});

describe('schema', () => {
  it('uses plain MergeTree engines alone, Replicated + Distributed in a cluster', () => {
    const single = schemaStatements({ retentionDays: 30 }).join('\n');
    expect(single).not.toMatch(/Replicated|Distributed|ON CLUSTER/);
    expect(single).toMatch(/TTL toDateTime\(time\) \+ INTERVAL 30 DAY/);
    const cluster = schemaStatements({ retentionDays: 0, cluster: 'heapwatch' }).join('\n');
    // Schema 2: stack values live in the profiles row; there is no samples table or view.
    expect(cluster).toMatch(/CREATE TABLE IF NOT EXISTS profiles_local ON CLUSTER heapwatch/);
    expect(cluster).toMatch(/ReplicatedReplacingMergeTree\('\/clickhouse\/tables\/\{shard\}\/\{database\}\/profiles', '\{replica\}'\)/);
    expect(cluster).toMatch(/ENGINE = Distributed\(heapwatch, currentDatabase\(\), profiles_local, cityHash64\(tenant, service, instance\)\)/);
    // The tenant leads every data table's sort key (docs/security.md#tenants).
    for (const t of ['profiles', 'stacks', 'findings', 'profiles_hourly']) expect(cluster).toMatch(new RegExp(`CREATE TABLE IF NOT EXISTS ${t}_local [^]*?ORDER BY \\(tenant, service`));
    expect(cluster).toMatch(/CREATE TABLE IF NOT EXISTS profiles_local ON CLUSTER heapwatch \(.*stack_ids Array\(UInt64\).*stack_bytes Array\(Int64\)/s);
    expect(cluster).not.toMatch(/\bsamples\b|CREATE VIEW|MATERIALIZED/);
    // The hourly rollup is sharded as profiles are, and expires with them.
    expect(cluster).toMatch(/ENGINE = Distributed\(heapwatch, currentDatabase\(\), profiles_hourly_local, cityHash64\(tenant, service, instance\)\)/);
    expect(single).toMatch(/TTL toDateTime\(hour\) \+ INTERVAL 30 DAY/);
    // retentionDays 0 keeps data forever; only expired lease claims go.
    expect(cluster.match(/^TTL .*$/gm)).toEqual(['TTL toDateTime(expires_at) + INTERVAL 1 DAY']);
    expect(() => schemaStatements({ retentionDays: 1, cluster: 'x; DROP TABLE' })).toThrow(/invalid identifier/);
  });

  it('creates profiles with the columns the insert writes, in the same order, and stacks without a stored site', () => {
    const [profiles, stacks] = schemaStatements({ retentionDays: 0 });
    const ddlColumns = [...profiles!.slice(profiles!.indexOf('(') + 1).matchAll(/^\s+(\w+) /gm)].map((m) => m[1]);
    const insert = profilesInsert('profiles', []);
    const insertColumns = insert.slice(insert.indexOf('(') + 1, insert.indexOf(')')).split(', ');
    expect(ddlColumns).toEqual(insertColumns);
    expect(ddlColumns).toEqual(expect.arrayContaining(['gc_major_gcs', 'gc_after_major_gc', 'agent_forced_gcs', 'stack_ids', 'stack_bytes']));
    expect(stacks).toMatch(/stack_id UInt64/);
    expect(stacks).not.toMatch(/site_/);
  });
});

describe('allocation sites', () => {
  it("charges the agent's own allocations to one pseudo-site, wherever the agent is installed", async () => {
    const { siteOf } = await import('../../collector/src/model/site');
    const { AGENT_SITE, AGENT_SITE_ID } = await import('../../collector/src/model/site');
    const app = { function: 'recordFailure', file: '/app/retry.js', line: 12 };
    const lib = { function: 'convertProfile', file: '/app/node_modules/@datadog/pprof/out/src/heap-profiler.js', line: 40 };
    for (const agentFile of ['/app/node_modules/@heapwatch/agent/dist/sampler.js', '/src/heapwatch/agent/dist/sampler.js']) {
      const site = siteOf([lib, { function: 'capture', file: agentFile, line: 55 }, { function: 'tick', file: '/app/loop.js', line: 3 }]);
      expect(site).toEqual({ id: AGENT_SITE_ID, frame: AGENT_SITE });
    }
    expect(siteOf([app, { function: 'tick', file: '/app/loop.js', line: 3 }]).frame).toEqual(app);
    // A user's own agent/dist folder is not heapwatch's.
    expect(siteOf([{ function: 'handle', file: '/app/agent/dist/jobs.js', line: 7 }]).frame.function).toBe('handle');
  });

  it("does not charge a job's allocations to the agent because the queue integration's wrapper is on the stack", async () => {
    const { siteOf, isAgentFrame } = await import('../../collector/src/model/site');
    const leak = { function: 'renderThumbnail', file: '/app/jobs/thumbnail.js', line: 9 };
    for (const dist of ['/app/node_modules/@heapwatch/agent/dist', path.resolve(__dirname, '../../agent/dist')]) {
      const wrapper = { function: 'tracked', file: `${dist}/jobs/integrations.js`, line: 120 };
      expect(isAgentFrame(wrapper)).toBe(false);
      expect(siteOf([leak, wrapper, { function: 'processJob', file: '/app/node_modules/bullmq/dist/cjs/classes/worker.js', line: 500 }]).frame).toEqual(leak);
      // The agent's own modules still are.
      expect(isAgentFrame({ function: 'capture', file: `${dist}/sampler.js`, line: 1 })).toBe(true);
    }
  });

  it("knows every module of this repository's agent build as the agent's", async () => {
    const { isAgentFrame } = await import('../../collector/src/model/site');
    const dist = path.resolve(__dirname, '../../agent/dist');
    const modules = fs.readdirSync(dist).filter((f) => f.endsWith('.js'));
    expect(modules.length).toBeGreaterThan(10);
    for (const m of modules) expect(isAgentFrame({ function: 'f', file: path.join(dist, m), line: 1 }), m).toBe(true);
  });

  it('says whether a site is application or library code, and where the bytes were allocated', async () => {
    const { siteOf, siteContext } = await import('../../collector/src/model/site');
    const frame = (fn: string, file: string, line: number) => ({ function: fn, file, line });
    // Library code under the application's frame: the application frame is the site.
    const parse = frame('parse', '/app/node_modules/csv/lib/parse.js', 10);
    const app = [parse, frame('importRows', '/app/src/import.js', 4), frame('processTicksAndRejections', 'node:internal/process/task_queues', 95)];
    expect(siteOf(app).frame.function).toBe('importRows');
    expect(siteContext(app, siteOf(app).frame)).toEqual({ siteKind: 'application', allocatedIn: parse });
    const own = [frame('from', '', 0), frame('recordFailure', '/app/retry.js', 30), frame('runJob', '/app/retry.js', 35)];
    expect(siteContext(own, siteOf(own).frame)).toEqual({ siteKind: 'application', allocatedIn: null });
    // A response body parsed after \`await fetch()\`, as V8's sampler recorded it
    // (bench/scenarios/real/fetch-enricher.js): no application frame at all.
    const fetched = [
      frame('parseJSONFromBytes', 'node:internal/deps/undici/undici', 5879),
      frame('', 'node:internal/deps/undici/undici', 5859),
      frame('fullyReadBody', 'node:internal/deps/undici/undici', 4742),
      frame('(anonymous)', '', 0),
      frame('processTicksAndRejections', 'node:internal/process/task_queues', 67),
    ];
    expect(siteContext(fetched, siteOf(fetched).frame)).toEqual({ siteKind: 'library', allocatedIn: null });
    const dependency = [frame('decode', 'node:internal/encoding', 440), frame('onData', '/app/node_modules/amqplib/lib/connection.js', 300)];
    expect(siteOf(dependency).frame.function).toBe('onData');
    expect(siteContext(dependency, siteOf(dependency).frame)).toEqual({ siteKind: 'library', allocatedIn: dependency[0] });
  });

  it('the (external) gauge is a site of its own and never a leak candidate', async () => {
    const { siteOf } = await import('../../collector/src/model/site');
    const { EXTERNAL_SITE, NON_CANDIDATE_SITE_IDS } = await import('../../collector/src/model/site');
    const site = siteOf([{ function: '(external)', file: '', line: 0 }]);
    expect(site.frame).toEqual(EXTERNAL_SITE);
    expect(NON_CANDIDATE_SITE_IDS.has(site.id)).toBe(true);
    // A V8 pseudo-frame on top of real code still resolves to the code.
    expect(siteOf([{ function: '(V8 API)', file: '', line: 0 }, { function: 'run', file: '/app/a.js', line: 2 }]).frame.function).toBe('run');
  });
});
