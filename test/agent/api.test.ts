import { afterEach, describe, expect, it, vi } from 'vitest';
// The compiled package, as a host would load it.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const agent = require('../../agent/dist/index.js') as typeof import('../../agent/src/index');

describe('public API never throws into the host', () => {
  afterEach(() => vi.restoreAllMocks());

  it('start() with a bad explicit option logs an error and returns false', () => {
    const writes: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: unknown) => {
      writes.push(String(chunk));
      return true;
    });
    expect(agent.start({ intervalMs: 5 })).toBe(false);
    expect(agent.start('nonsense' as never)).toBe(false);
    expect(agent.isRunning()).toBe(false);
    expect(writes.join('')).toMatch(/\[heapwatch\] error: not started: option intervalMs must be an integer/);
  });

  it('stop(), flush() and stats() are safe when not running', async () => {
    await expect(agent.stop()).resolves.toBeUndefined();
    await expect(agent.flush()).resolves.toBeUndefined();
    expect(agent.stats()).toBeUndefined();
  });
});
