/**
 * The snapshot reader and the holder analysis on real heap snapshots: a
 * child process parks ~100 KB payload Buffers in a closure's retry list and
 * writes a snapshot; the analysis must name that list, the function that
 * declares it and its line. Another keeps parsed objects in a Map: the
 * on-heap holder named must be that Map. The capture itself, in this process: taken
 * within its budget, skipped (and saying so) above it.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/collector';
import { findHolders } from '../../agent/src/holders';
import { readSnapshot } from '../../agent/src/snapshot-reader';
import { HolderCapture } from '../../agent/dist/holder-capture';

const FIXTURE = path.resolve(__dirname, '../fixtures/parked-uploads-worker.js');
const ENRICHED = path.resolve(__dirname, '../fixtures/enriched-orders-worker.js');
const dir = tempDir('holders-test');
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

function lineOf(text: string): number {
  return fs.readFileSync(FIXTURE, 'utf8').split('\n').findIndex((l) => l.includes(text)) + 1;
}

function snapshotOf(parked: number): string {
  const file = path.join(dir, `parked-${parked}.heapsnapshot`);
  execFileSync(process.execPath, [FIXTURE], { env: { ...process.env, FIXTURE_SNAPSHOT_TO: file, FIXTURE_PARKED: String(parked) }, timeout: 60_000 });
  return file;
}

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('holders of off-heap memory in a real heap snapshot', () => {
  it('names the retry list, the function that declares it and its line', () => {
    const s = readSnapshot(snapshotOf(30));
    try {
      const a = findHolders(s, { maxHolders: 3 });
      expect(a.nodeCount).toBeGreaterThan(10_000);
      const top = a.holders[0]!;
      expect(top.owner).toBe('pendingRetries');
      expect(top.ownerKind).toBe('variable');
      expect(top.container).toBe('Array');
      expect(top.items).toBe(30);
      expect(top.objects).toBe(30);
      expect(top.offHeapBytes).toBe(30 * 100_000);
      expect(top.heapBytes).toBeGreaterThan(0);
      expect(top.function).toBe('createUploader');
      expect(top.file).toBe(FIXTURE);
      expect(top.line).toBe(lineOf('function createUploader('));
      expect(top.path).toMatch(/^pendingRetries \(Array, 30 items\) ← context of createUploader \(fixtures\/parked-uploads-worker\.js:\d+\), used by holdForRetry, replay$/);
      expect(a.holders.length).toBeLessThanOrEqual(3);
    } finally {
      s.close();
    }
  }, 60_000);

  it('counts what it reads: more parked uploads, more bytes and items under the same holder', () => {
    const s = readSnapshot(snapshotOf(55));
    try {
      const top = findHolders(s).holders[0]!;
      expect(top.owner).toBe('pendingRetries');
      expect(top.items).toBe(55);
      expect(top.offHeapBytes).toBe(55 * 100_000);
    } finally {
      s.close();
    }
  }, 60_000);

  it('names the on-heap holder of parsed objects, where the items are, and leaves small tables out', () => {
    const file = path.join(dir, 'enriched.heapsnapshot');
    execFileSync(process.execPath, [ENRICHED], { env: { ...process.env, FIXTURE_SNAPSHOT_TO: file, FIXTURE_ORDERS: '2000' }, timeout: 60_000 });
    const s = readSnapshot(file);
    try {
      const heap = findHolders(s).holders.filter((h) => Number(h.offHeapBytes) === 0);
      const top = heap[0]!;
      expect(top, JSON.stringify(heap, null, 1)).toMatchObject({ owner: 'enriched', ownerKind: 'variable', container: 'Map', items: 2000, function: 'createEnricher', file: ENRICHED });
      expect(top.line).toBe(fs.readFileSync(ENRICHED, 'utf8').split('\n').findIndex((l) => l.includes('function createEnricher(')) + 1);
      expect(top.path).toMatch(/^enriched \(Map, 2000 items\) ← context of createEnricher \(fixtures\/enriched-orders-worker\.js:\d+\), used by enrich$/);
      // ~1.4 KB of parsed profile per order, each object counted once.
      expect(Number(top.heapBytes)).toBeGreaterThan(2000 * 1000);
      expect(Number(top.heapBytes)).toBeLessThan(2000 * 3000);
      expect(Number(top.objects)).toBeGreaterThan(2000 * 20);
      // The export batch list holds one list of 10,000 rows: the inner list is the holder.
      expect(heap.map((h) => `${h.container} ${h.items}`)).toEqual(['Map 2000', 'Array 10000']);
    } finally {
      s.close();
    }
  }, 60_000);

  it('names a variable of a block scope, and of the functions there the one that uses it', () => {
    // 10,000 sessions and the last one; string keys made by concatenation (a cons string each).
    const fixture = path.resolve(__dirname, '../fixtures/block-scoped-cache.js');
    const file = path.join(dir, 'block.heapsnapshot');
    execFileSync(process.execPath, [fixture], { env: { ...process.env, FIXTURE_SNAPSHOT_TO: file }, timeout: 60_000 });
    const s = readSnapshot(file);
    try {
      const top = findHolders(s).holders.filter((h) => Number(h.offHeapBytes) === 0)[0]!;
      expect(top).toMatchObject({ owner: 'sessions', ownerKind: 'variable', container: 'Map', items: 10_001, function: '' });
      expect(top.path).toMatch(/^sessions \(Map, 10001 items\) ← module scope of fixtures\/block-scoped-cache\.js, used by remember$/);
    } finally {
      s.close();
    }
  }, 60_000);

  it('refuses a file that is not a heap snapshot', () => {
    const bad = path.join(dir, 'not-a-snapshot.json');
    fs.writeFileSync(bad, JSON.stringify({ hello: [1, 2, 3] }));
    expect(() => readSnapshot(bad)).toThrow(/not a heap snapshot/);
  });
});

describe('a holder capture in this process', () => {
  async function answerOf(c: HolderCapture, id: string): Promise<NonNullable<ReturnType<HolderCapture['take']>>> {
    c.request(id);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const a = c.take();
      if (a) return a;
      if (Date.now() > deadline) throw new Error('no answer');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('is skipped, and says why, when the heap is above the budget', async () => {
    const c = new HolderCapture({ maxHeapBytes: 1024 * 1024, cooldownMs: 0, maxHolders: 5, timeoutMs: 60_000, log: quiet, dir });
    const a = await answerOf(c, 'over-budget');
    expect(a.captureId).toBe('over-budget');
    expect(a.skipped).toMatch(/heap used \d+ MB is above the pause budget of 1 MB \(HEAPWATCH_HOLDER_MAX_HEAP_MB\)/);
    expect(a.heapUsedBytes).toBeGreaterThan(1024 * 1024);
    expect(a.holders ?? []).toHaveLength(0);
    expect(c.stats).toMatchObject({ taken: 0, skipped: 1 });
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('heapwatch-holders-'))).toHaveLength(0);
  });

  it('within the budget: finds this process holders, measures the pause, removes the file, and keeps its cool-down', async () => {
    const kept: Buffer[] = [];
    for (let i = 0; i < 20; i++) kept.push(Buffer.alloc(200_000, i));
    const c = new HolderCapture({ maxHeapBytes: 4096 * 1024 * 1024, cooldownMs: 60_000, maxHolders: 5, timeoutMs: 120_000, log: quiet, dir });
    const a = await answerOf(c, 'within-budget');
    expect(a.skipped ?? '').toBe('');
    expect(a.pauseMs).toBeGreaterThan(0);
    // The 20 Buffers are one group: one Array holds them all.
    const mine = (a.holders ?? []).find((h) => h.container === 'Array' && Number(h.objects) === 20);
    expect(mine, JSON.stringify(a.holders, null, 1)).toBeDefined();
    expect(Number(mine!.offHeapBytes)).toBe(20 * 200_000);
    expect(Number(a.offHeapBytes)).toBeGreaterThanOrEqual(20 * 200_000);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('heapwatch-holders-'))).toHaveLength(0);
    const again = await answerOf(c, 'too-soon');
    expect(again.skipped).toMatch(/cool-down/);
    expect(kept.length).toBe(20);
  }, 180_000);
});
