/**
 * Precise mode's schedule alone: when a period starts, how long it lasts and
 * the cool-down after it, on a fake clock and fake timers, with the inlining
 * switch replaced (the real switch is exercised in precise-mode.test.ts).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../agent/src/logger';
import { PreciseMode } from '../../agent/src/precise-mode';

const on = { precise: true, preciseForMs: 600_000, reason: 'suspect' };
const off = { precise: false, preciseForMs: 0, reason: 'cleared' };

function rig(opts: { minMs?: number; maxMs?: number; cooldownMs?: number } = {}) {
  const lines: string[] = [];
  const inlining: boolean[] = [];
  const mode = new PreciseMode({
    setting: 'auto',
    minMs: opts.minMs ?? 16_000,
    maxMs: opts.maxMs ?? 1_800_000,
    cooldownMs: opts.cooldownMs ?? 1_800_000,
    disableInlining: true,
    log: createLogger('debug', (l) => lines.push(l)),
    now: () => Date.now(),
    switchInlining: (v) => {
      inlining.push(v);
      return { deoptimized: true };
    },
  });
  const advance = (ms: number): void => {
    vi.advanceTimersByTime(ms);
  };
  return { mode, lines, inlining, advance };
}

describe('precise mode schedule', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a suspicion cleared early ends the period only once it has lasted its least length', () => {
    const { mode, advance, inlining, lines } = rig({ minMs: 16_000 });
    mode.direct(on);
    expect(mode.active).toBe(true);
    advance(3_000);
    mode.direct(off); // 3 profiles in: the collector could not have confirmed anything yet
    expect(mode.active).toBe(true);
    advance(12_999);
    expect(mode.active).toBe(true);
    advance(1);
    expect(mode.active).toBe(false);
    expect(inlining).toEqual([false, true]);
    expect(lines.some((l) => /precise mode off \(collector: cleared\) after 16 s/.test(l))).toBe(true);
    expect(mode.counters()).toMatchObject({ activations: 1, timeMs: 16_000 });
  });

  it('a renewal while an early clear waits cancels it; a clear after the least length ends it at once', () => {
    const { mode, advance } = rig({ minMs: 16_000 });
    mode.direct(on);
    advance(3_000);
    mode.direct(off);
    advance(2_000);
    mode.direct(on); // suspect again: the period goes on
    advance(60_000);
    expect(mode.active).toBe(true);
    mode.direct(off);
    expect(mode.active).toBe(false);
  });

  it('after a period the collector ended, the cool-down lasts as long as the period did', () => {
    const { mode, advance } = rig({ minMs: 16_000, cooldownMs: 1_800_000 });
    mode.direct(on);
    advance(40_000);
    mode.direct(off);
    advance(39_000);
    mode.direct(on);
    expect(mode.active).toBe(false);
    expect(mode.stats.refused).toBe(1);
    advance(1_000);
    mode.direct(on);
    expect(mode.active).toBe(true);
    expect(mode.counters().activations).toBe(2);
  });

  it('after a period that reached its bound, the whole cool-down', () => {
    const { mode, advance, lines } = rig({ minMs: 16_000, maxMs: 60_000, cooldownMs: 1_800_000 });
    mode.direct(on);
    for (let t = 0; t < 70_000; t += 5_000) {
      advance(5_000);
      mode.direct(on); // renewed every profile
    }
    expect(mode.active).toBe(false);
    expect(lines.some((l) => /bound of 60 s reached/.test(l))).toBe(true);
    advance(1_799_000 - 10_000);
    mode.direct(on);
    expect(mode.active).toBe(false);
    advance(11_000);
    mode.direct(on);
    expect(mode.active).toBe(true);
  });

  it('a least length of 0 ends the period at the first clear', () => {
    const { mode, advance } = rig({ minMs: 0 });
    mode.direct(on);
    advance(1_000);
    mode.direct(off);
    expect(mode.active).toBe(false);
  });
});
