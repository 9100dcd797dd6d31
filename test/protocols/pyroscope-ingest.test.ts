/**
 * Pyroscope agents write to heapwatch. The real @pyroscope/nodejs SDK with
 * heap profiling, in a child process pointed at the collector's HTTP port,
 * sends profiles that are stored, listed, exported as pprof, and whose leak
 * is flagged. Pyroscope's /ingest (raw and multipart, Go's in-use sample
 * names) and push.v1.PusherService/Push map heap profiles onto the same
 * store; anything else is refused with 400 and nothing is stored.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Code, ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, getJson, startCollectorProcess, tempDir, waitFor, type RunningCollector } from '../helpers/collector';
import { exported, FOREIGN_STACKS as STACKS, services, type ServiceEntry } from '../helpers/exported';
import { buildProfile, gzipProfile } from '../helpers/pprof';
import { pyroscopeClient } from '../helpers/pyroscope-client';

describe('Pyroscope agents -> heapwatch', () => {
  let collector: RunningCollector;
  let worker: ChildProcess | undefined;
  let base: string;

  beforeAll(async () => {
    // 1 s flushes: the leak's minimum growth time (10 minutes at production's 60 s) scaled alike.
    collector = await startCollectorProcess({ args: ['--leak-interval-ms', '1000', '--leak-min-growth-ms', '10000'] });
    base = collector.httpUrl;
  });

  afterAll(async () => {
    worker?.kill('SIGKILL');
    await collector?.stop();
  });

  it('the real @pyroscope/nodejs SDK: stored, listed with its labels, exported with its functions named', async () => {
    const service = 'pyroscope-sdk-worker';
    let stderr = '';
    worker = spawn(process.execPath, [path.join(ROOT, 'test/fixtures/pyroscope-sdk-worker.js')], {
      env: { ...process.env, PYROSCOPE_SERVER_ADDRESS: base, PYROSCOPE_APP_NAME: service, PYROSCOPE_FLUSH_MS: '1000', DEBUG: 'pyroscope' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    worker.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    const entry = await waitFor(`${service} listed with 3 profiles`, async () => (await services(base)).find((s) => s.service === service && s.profiles >= 3), 90_000).catch(
      (err: Error) => {
        throw new Error(`${err.message}; the SDK said:\n${stderr}\ncollector:\n${collector.output()}`);
      },
    );
    expect(entry.instances).toBe(1);
    expect(stderr).not.toMatch(/rejected/i);

    const labelled = await fetch(`${base}/api/v1/profile?service=${service}&from=0&label.env=pyroscope-test`);
    expect(Number(labelled.headers.get('x-heapwatch-profiles'))).toBeGreaterThan(0);
    const { bytes, byFunction } = await exported(base, service);
    expect(bytes).toBeGreaterThan(0);
    // The SDK names a frame `file:function:line`; the collector splits it back.
    expect(byFunction.retainPayload ?? 0, Object.keys(byFunction).join('\n')).toBeGreaterThan(0);

    worker.kill('SIGKILL');
    worker = undefined;
  }, 400_000);

  // Its profiles carry no GC information (no major GC count, no heap used):
  // the detector judges such a series once its window spans 240 profiles
  // (docs/detector.md#profiles-without-gc-information), so a steady leak is
  // flagged at about the 242nd profile: a minute at 250 ms uploads.
  it('the real @pyroscope/nodejs SDK: its leak is flagged, at the 240-profile window', async () => {
    const service = 'pyroscope-sdk-leak';
    let stderr = '';
    // ~400 jobs a second keep ~0.8 MB/s: ~6 samples of 32 KiB a profile, ~100 MB by the flag.
    worker = spawn(process.execPath, [path.join(ROOT, 'test/fixtures/pyroscope-sdk-worker.js')], {
      env: { ...process.env, PYROSCOPE_SERVER_ADDRESS: base, PYROSCOPE_APP_NAME: service, PYROSCOPE_FLUSH_MS: '250', JOBS_PER_TICK: '20' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    worker.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    const leak = await waitFor(
      'the leak flagged',
      async () => {
        const { status, body } = await getJson<{ leaks: { function: string; file: string; line: number; intervals: number }[] }>(`${base}/api/v1/leaks?service=${service}`);
        return status === 200 ? body.leaks.find((l) => /retaining-worker\.js$/.test(l.file)) : undefined;
      },
      // Counted in profiles, not seconds: the wall-clock ceiling is for a
      // loaded machine (at load 38 the SDK sent 0.8 profiles a second, and
      // the flag came after 275 s).
      900_000,
      1000,
    ).catch(async (err: Error) => {
      const entry = (await services(base)).find((s) => s.service === service);
      throw new Error(`${err.message} (${entry?.profiles ?? 0} profiles stored); the SDK said:\n${stderr}`);
    });
    // retainPayload, or the function V8 inlined it into (the job loop's
    // timer callback, line 36): the SDK has no precise mode to turn inlining
    // off, so its sampler charges an inlined callee's allocations to the caller.
    expect(leak.function === 'retainPayload' || leak.line === 36, JSON.stringify(leak)).toBe(true);
    // Judged on the whole 240-profile window, never on fewer.
    expect(leak.intervals).toBe(239);
    const stored = (await services(base)).find((s) => s.service === service)!;
    expect(stored.profiles).toBeGreaterThanOrEqual(242);
    worker.kill('SIGKILL');
    worker = undefined;
  }, 1_000_000);

  it('/ingest: multipart with Go in-use sample names is stored; a retry is stored once', async () => {
    const go = gzipProfile(buildProfile(STACKS, [['inuse_objects', 'count'], ['inuse_space', 'bytes']]));
    const form = () => {
      const f = new FormData();
      f.append('profile', new Blob([go]), 'profile.pprof');
      f.append('sample_type_config', new Blob(['{}']), 'sample_type_config.json');
      return f;
    };
    const until = Math.floor(Date.now() / 1000);
    const url = `${base}/ingest?name=${encodeURIComponent('go-api.inuse_space{env=prod,pod=api-1}')}&from=${until - 10}&until=${until}&spyName=gospy`;
    for (let i = 0; i < 2; i++) {
      const res = await fetch(url, { method: 'POST', body: form() });
      expect(res.status, await res.text()).toBe(200);
    }
    const entry = await waitFor('go-api listed', async () => (await services(base)).find((s) => s.service === 'go-api'));
    expect(entry.profiles).toBe(1);
    const { bytes, byFunction } = await exported(base, 'go-api');
    expect(bytes).toBe(41_984);
    expect(byFunction.allocBuffer).toBe(40_960);
  });

  it('/ingest refuses what is not an in-use heap profile with 400, and stores nothing', async () => {
    const cpu = gzipProfile(buildProfile(STACKS, [['samples', 'count'], ['cpu', 'nanoseconds']]));
    const heap = gzipProfile(buildProfile(STACKS));
    const post = (query: string, body: BodyInit, type = 'application/octet-stream') =>
      fetch(`${base}/ingest?${query}`, { method: 'POST', body, headers: { 'content-type': type } });
    const cases: [Response, RegExp][] = [
      [await post('name=cpu-app.cpu', cpu), /in-use heap profiles only.*\[samples\/count, cpu\/nanoseconds\]/],
      [await post('name=bad-app', Buffer.from('not a profile')), /does not decode as pprof/],
      [await post('name=bad-app', Buffer.alloc(0)), /empty/],
      [await post('name=bad-app&format=jfr', heap), /format "jfr" is not supported/],
      [await post('from=1', heap), /name is required/],
      [await post('name=bad-app{env}', heap), /label "env" is not key=value/],
      [await post('name=bad-app', heap, 'multipart/form-data; boundary=x'), /truncated|no "profile" field/],
    ];
    for (const [res, message] of cases) {
      expect(res.status).toBe(400);
      expect((await res.json()) as { error: string }).toEqual({ error: expect.stringMatching(message) });
    }
    expect(await post('name=bad-app', heap).then((r) => r.status)).toBe(200); // the same app, a valid profile: the refusals left nothing behind
    const names = (await services(base)).map((s) => s.service);
    expect(names).not.toContain('cpu-app');
    const bad = (await services(base)).find((s) => s.service === 'bad-app');
    expect(bad?.profiles).toBe(1);
    expect((await fetch(`${base}/ingest?name=x`)).status).toBe(405);
  });

  it('push.v1.PusherService/Push: all or nothing', async () => {
    const push = pyroscopeClient(base, 'push.v1.PusherService');
    const heap = gzipProfile(buildProfile(STACKS));
    const cpu = gzipProfile(buildProfile(STACKS, [['samples', 'count'], ['cpu', 'nanoseconds']]));
    const series = (service: string, raw: Buffer, name = 'memory') => ({
      labels: [{ name: '__name__', value: name }, { name: 'service_name', value: service }, { name: 'region', value: 'eu' }],
      samples: [{ rawProfile: new Uint8Array(raw), ID: 'x' }],
    });
    const refused = async (req: unknown, message: RegExp) => {
      const err = await push.push(req).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.InvalidArgument);
      expect((err as ConnectError).rawMessage).toMatch(message);
    };
    await refused({ series: [series('pushed', heap), series('pushed', cpu)] }, /in-use heap profiles only/);
    await refused({ series: [series('pushed', heap), series('pushed-cpu', cpu, 'process_cpu')] }, /process_cpu profile/);
    await refused({ series: [{ labels: [], samples: [{ rawProfile: new Uint8Array(heap) }] }] }, /no service_name/);
    expect((await services(base)).map((s) => s.service)).not.toContain('pushed');

    await push.push({ series: [series('pushed', heap)] });
    const entry = await waitFor('pushed listed', async () => (await services(base)).find((s) => s.service === 'pushed'));
    expect(entry.profiles).toBe(1);
    expect((await exported(base, 'pushed')).bytes).toBe(41_984);
  });
});

describe('Pyroscope ingest with tokens', () => {
  it('/ingest and Push need a token with the write scope and store as its tenant', async () => {
    const dir = tempDir('pyroscope-tokens');
    const file = path.join(dir, 'tokens');
    fs.writeFileSync(file, ['team-a-write-token-0001 write team-a', 'team-a-read-token-00002 read team-a'].join('\n'));
    const c = await startCollectorProcess({ args: ['--token', 's3cret', '--tokens-file', file] });
    const list = async (token: string) => {
      const res = await fetch(`${c.httpUrl}/api/v1/services`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      return ((await res.json()) as ServiceEntry[]).map((s) => s.service);
    };
    try {
      const heap = gzipProfile(buildProfile(STACKS));
      const url = `${c.httpUrl}/ingest?name=tokened`;
      const without = await fetch(url, { method: 'POST', body: heap });
      expect(without.status).toBe(401);
      expect(await without.json()).toEqual({ error: 'a bearer token is required: send "authorization: Bearer TOKEN"' });
      expect((await fetch(url, { method: 'POST', body: heap, headers: { authorization: 'Bearer wrong!' } })).status).toBe(401);
      // A read token cannot write.
      expect((await fetch(url, { method: 'POST', body: heap, headers: { authorization: 'Bearer team-a-read-token-00002' } })).status).toBe(403);
      const push = await fetch(`${c.httpUrl}/push.v1.PusherService/Push`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(push.status).toBe(401);
      expect(await push.json()).toMatchObject({ code: 'unauthenticated' });
      expect(await list('s3cret')).not.toContain('tokened');

      expect((await fetch(url, { method: 'POST', body: heap, headers: { authorization: 'Bearer team-a-write-token-0001' } })).status).toBe(200);
      await waitFor('team-a lists tokened', async () => ((await list('team-a-read-token-00002')).includes('tokened') ? true : undefined));
      // Stored as team-a's: the default tenant does not see it.
      expect(await list('s3cret')).not.toContain('tokened');
      expect((await fetch(url, { method: 'POST', body: heap, headers: { authorization: 'Bearer s3cret' } })).status).toBe(200);
      await waitFor('the default tenant lists tokened', async () => ((await list('s3cret')).includes('tokened') ? true : undefined));
    } finally {
      await c.stop();
    }
  });
});
