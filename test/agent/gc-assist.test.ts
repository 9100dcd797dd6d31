import * as vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { GcAssist, INITIAL_MS_PER_MB } from '../../agent/src/gc-assist';

const MB = 1024 * 1024;

/** A GcAssist on a fake clock and heap, whose "gc" burns `pauseMs` of real time. */
function rig(budget: number, maxPauseMs: number, heapMb: number) {
  const state = { now: 1_000_000, heapMb, pauseMs: 2, calls: 0 };
  const a = new GcAssist(budget, maxPauseMs, () => state.now, () => state.heapMb * MB);
  a.enable(() => {
    state.calls++;
    const end = performance.now() + state.pauseMs;
    while (performance.now() < end) {
      // busy: a GC pause
    }
  });
  return { a, state };
}

describe('GcAssist', () => {
  it('forces when the predicted pause fits the cap, and counts the time', () => {
    const { a, state } = rig(0.01, 50, 10);
    expect(a.tryForce()).toBe(true);
    expect(state.calls).toBe(1);
    expect(a.stats.forced).toBe(1);
    expect(a.stats.timeUs).toBeGreaterThanOrEqual(2000);
  });

  it('waits pause / budget before the next one, and counts the skip', () => {
    const { a, state } = rig(0.01, 50, 10);
    a.tryForce();
    const pauseMs = a.stats.timeUs / 1000;
    state.now += pauseMs / 0.01 - 20; // just short of the budget
    expect(a.tryForce()).toBe(false);
    expect(a.stats.skippedBudget).toBe(1);
    state.now += 40;
    expect(a.tryForce()).toBe(true);
    expect(state.calls).toBe(2);
  });

  it('leaves a heap whose predicted pause is over the cap to V8', () => {
    const heapMb = Math.ceil(50 / INITIAL_MS_PER_MB) + 1;
    const { a, state } = rig(0.01, 50, heapMb);
    expect(a.tryForce()).toBe(false);
    expect(a.stats.skippedPause).toBe(1);
    expect(state.calls).toBe(0);
  });

  it('learns the cost per MB: a slow GC makes the next prediction larger', () => {
    // 20 MB at the initial 0.5 ms/MB predicts 10 ms, under a 15 ms cap; the
    // GC takes 20 ms (1 ms/MB), so the next prediction, 20 ms, is over it.
    const { a, state } = rig(0.5, 15, 20);
    state.pauseMs = 20;
    expect(a.tryForce()).toBe(true);
    state.now += 1_000_000;
    expect(a.tryForce()).toBe(false);
    expect(a.stats.skippedPause).toBe(1);
  });

  it('forgets one slow GC: skips move the learned cost back toward the initial one, so GC assist resumes', () => {
    // A 40 ms GC of 20 MB (a starved host) predicts 40 ms, over a 15 ms cap.
    const { a, state } = rig(0.5, 15, 20);
    state.pauseMs = 40;
    expect(a.tryForce()).toBe(true);
    state.pauseMs = 10;
    let skips = 0;
    for (;;) {
      state.now += 1_000_000;
      if (a.tryForce()) break;
      skips++;
      expect(skips).toBeLessThan(100);
    }
    // 2 ms/MB back under 0.75 ms/MB takes ceil(log(0.375) / log(0.9)) = 10
    // skips; more where the busy pause measured longer on a loaded machine.
    expect(skips).toBeGreaterThanOrEqual(10);
    expect(a.stats.skippedPause).toBe(skips);
    expect(state.calls).toBe(2);
  });

  it('obtains V8 gc() without leaving it exposed to the host or to new contexts', () => {
    const a = new GcAssist(0.01, 1000);
    expect(typeof (globalThis as { gc?: unknown }).gc).toBe('undefined');
    expect(a.enable()).toBe(true);
    expect(a.tryForce()).toBe(true);
    expect(typeof (globalThis as { gc?: unknown }).gc).toBe('undefined');
    expect(vm.runInNewContext('typeof gc')).toBe('undefined');
  });

  it('does nothing before enable()', () => {
    const a = new GcAssist(0.01, 50);
    expect(a.tryForce()).toBe(false);
    expect(a.stats).toEqual({ forced: 0, timeUs: 0, skippedPause: 0, skippedBudget: 0 });
  });
});
