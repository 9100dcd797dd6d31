import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { Backoff } from '../../agent/src/backoff';
import { createLogger } from '../../agent/src/logger';
import { Sender, type PendingProfile } from '../../agent/src/sender';
import type { SendResult, Transport } from '../../agent/src/transport';

/** A transport that answers from a script of results and records what it was sent. */
function fakeTransport(results: SendResult[]): Transport & { sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    send(req) {
      sent.push(String(req.profileId));
      return Promise.resolve(results.shift() ?? { ok: true });
    },
    close() {},
  };
}
const profile = (id: string, bytes = 100): PendingProfile => ({ bytes, request: { profileId: id } });
const quiet = createLogger('silent');

describe('Sender', () => {
  it('removes a profile only when acknowledged, in order', async () => {
    const t = fakeTransport([{ ok: false, code: status.UNAVAILABLE }, { ok: true }, { ok: true }]);
    const s = new Sender(t, new Backoff(1_000, () => 0), { maxItems: 10, maxBytes: 10_000 }, 1_000, quiet);
    s.queue.push(profile('a'));
    s.queue.push(profile('b'));
    await s.drain(Date.now() + 1_000); // stops at the first retryable failure
    expect(t.sent).toEqual(['a']);
    expect(s.queue.length).toBe(2);
    await s.drain(Date.now() + 1_000);
    expect(t.sent).toEqual(['a', 'a', 'b']);
    expect(s.counters()).toMatchObject({ profilesSent: 2, sendFailures: 1, queueLength: 0, queueBytes: 0, profilesDropped: 0 });
    s.close();
  });

  it.each([status.INVALID_ARGUMENT, status.UNAUTHENTICATED, status.PERMISSION_DENIED])(
    'code %i drops the profile (retrying cannot help) and counts it',
    async (code) => {
      const t = fakeTransport([{ ok: false, code }, { ok: true }]);
      const s = new Sender(t, new Backoff(1_000, () => 0), { maxItems: 10, maxBytes: 10_000 }, 1_000, quiet);
      s.queue.push(profile('bad'));
      s.queue.push(profile('good'));
      await s.drain(Date.now() + 1_000);
      expect(t.sent).toEqual(['bad', 'good']);
      expect(s.counters()).toMatchObject({ profilesSent: 1, profilesDropped: 1, sendFailures: 0, queueLength: 0 });
      s.close();
    },
  );

  it('background sending retries after a jittered backoff', async () => {
    const t = fakeTransport([{ ok: false, code: status.UNAVAILABLE }, { ok: false, code: status.DEADLINE_EXCEEDED }]);
    // random() = 0 makes every delay 0 ms, so the retries happen at once.
    const s = new Sender(t, new Backoff(1_000, () => 0), { maxItems: 10, maxBytes: 10_000 }, 1_000, quiet);
    s.enqueue(profile('x'));
    // Zero-delay timers still need the event loop: on a loaded machine a
    // fixed 100 ms sleep was not always enough (seen in CI), so wait for the
    // third attempt with a generous bound instead.
    for (const deadline = Date.now() + 5_000; t.sent.length < 3 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(t.sent).toEqual(['x', 'x', 'x']);
    expect(s.counters()).toMatchObject({ profilesSent: 1, sendFailures: 2, queueLength: 0 });
    s.close();
  });

  it("waits the collector's retry hint (grpc-retry-pushback-ms) instead of its own backoff", async () => {
    const at: number[] = [];
    const results: SendResult[] = [{ ok: false, code: status.RESOURCE_EXHAUSTED, retryAfterMs: 400 }, { ok: true }];
    const t: Transport = {
      send() {
        at.push(performance.now());
        return Promise.resolve(results.shift() ?? { ok: true });
      },
      close() {},
    };
    // The backoff alone would retry at once (random() = 0).
    const s = new Sender(t, new Backoff(1_000, () => 0), { maxItems: 10, maxBytes: 10_000 }, 1_000, quiet);
    s.enqueue(profile('x'));
    for (const deadline = Date.now() + 5_000; at.length < 2 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
    expect(at.length).toBe(2);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(390);
    expect(s.counters()).toMatchObject({ profilesSent: 1, sendFailures: 1, queueLength: 0 });
    s.close();
  });

  it('reports stats as they are at send time', async () => {
    const seen: unknown[] = [];
    const t: Transport = {
      send(req) {
        seen.push(req.agent);
        return Promise.resolve({ ok: true });
      },
      close() {},
    };
    const s = new Sender(t, new Backoff(1_000, () => 0), { maxItems: 10, maxBytes: 10_000 }, 1_000, quiet);
    s.samplingTimeUs = 1234;
    s.queue.push(profile('a', 10));
    s.queue.push(profile('b', 20));
    await s.drain(Date.now() + 1_000);
    expect(seen).toEqual([
      { profilesSent: 0, profilesDropped: 0, samplingTimeUs: 1234, queueLength: 2, queueBytes: 30, sendFailures: 0, forcedGcs: 0, forcedGcTimeUs: 0, preciseActivations: 0, preciseTimeMs: 0, preciseSwitchTimeUs: 0 },
      { profilesSent: 1, profilesDropped: 0, samplingTimeUs: 1234, queueLength: 1, queueBytes: 20, sendFailures: 0, forcedGcs: 0, forcedGcTimeUs: 0, preciseActivations: 0, preciseTimeMs: 0, preciseSwitchTimeUs: 0 },
    ]);
    s.close();
  });
});
