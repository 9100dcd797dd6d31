/**
 * The readiness rules one by one, with the store's answers given as
 * functions: the store that does not answer and the store that is behind
 * are hard to make real on demand (the full disk is real, in
 * readiness.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { InsertHealth } from '../../collector/src/health/insert-health';
import { Readiness, type ReadinessDeps } from '../../collector/src/health/readiness';

function deps(over: Partial<ReadinessDeps> = {}): ReadinessDeps {
  return { ping: async () => {}, probeWrite: async () => {}, inserts: new InsertHealth(), pendingRows: () => 0, maxPendingRows: 1000, ...over };
}
const fresh = { cacheMs: 0 };

describe('Readiness', () => {
  it('is ready when the store answers, inserts succeed and nothing waits', async () => {
    expect(await new Readiness(deps(), fresh).check()).toEqual({ ready: true, reasons: [], codes: [] });
  });

  it('is not ready when the store does not answer in time', async () => {
    const r = await new Readiness(deps({ ping: () => new Promise(() => {}) }), { ...fresh, pingTimeoutMs: 50 }).check();
    expect(r.codes).toEqual(['store_unreachable']);
    expect(r.reasons[0]).toMatch(/does not answer: the store did not answer within 50 ms/);
  });

  it('is not ready when the store is behind', async () => {
    const r = await new Readiness(deps({ pendingRows: () => 900 }), fresh).check();
    expect(r.codes).toEqual(['store_behind']);
    expect(r.reasons[0]).toBe('the store is behind: 900 rows waiting, of at most 1000');
  });

  it('counts failed inserts, and a successful probe write clears them', async () => {
    const inserts = new InsertHealth();
    const failing = inserts.track(async () => {
      throw new Error('Cannot reserve space\nmore lines');
    });
    for (let i = 0; i < 3; i++) await expect(failing()).rejects.toThrow();
    expect(inserts.consecutiveFailures).toBe(3);
    let probeFails = true;
    const readiness = new Readiness(
      deps({
        inserts,
        probeWrite: async () => {
          if (probeFails) throw new Error('read-only');
        },
      }),
      fresh,
    );
    const down = await readiness.check();
    expect(down.codes).toEqual(['inserts_failing']);
    expect(down.reasons[0]).toBe('the last 3 inserts failed (Cannot reserve space), and a probe write too: read-only');
    probeFails = false;
    expect((await readiness.check()).ready).toBe(true);
    expect(inserts.consecutiveFailures).toBe(0);
  });

  it('reuses an answer for cacheMs', async () => {
    let pings = 0;
    const r = new Readiness(deps({ ping: async () => void pings++ }), { cacheMs: 60_000 });
    await Promise.all([r.check(), r.check(), r.check()]);
    expect(pings).toBe(1);
  });
});
