/**
 * Which holder of a holder capture is shown as holding a finding
 * (collector/src/leaks/held-by.ts), and how the table says it. Holders as
 * an agent sends them: off-heap ones first, then on-heap ones (off-heap
 * bytes 0).
 */
import { describe, expect, it } from 'vitest';
import { processHeldBy, siteHeldBy } from '../../collector/src/leaks/held-by';
import { formatLeakTable, type HolderEntry, type LeakReport, type LeakSite } from '../../collector/src/leaks/report';

function holder(over: Partial<HolderEntry>): HolderEntry {
  return { owner: '', ownerKind: 'variable', container: 'Array', items: 0, function: '', file: '/app/worker.js', line: 0, column: 0, offHeapBytes: 0, heapBytes: 0, objects: 0, path: '', ...over };
}

const parked = holder({ owner: 'parked', items: 160, function: '', offHeapBytes: 16_000_000, heapBytes: 20_000, objects: 160, path: 'parked (Array, 160 items) ← module scope of app/retry.js, kept by parkForRetry' });
const table = holder({ owner: 'countries', container: 'Map', items: 90_000, function: 'loadTables', line: 3, heapBytes: 40_000_000, objects: 500_000, path: 'countries (Map, 90000 items) ← context of loadTables (app/tables.js:3), kept by lookup' });
const orders = holder({ owner: 'enriched', container: 'Map', items: 2000, function: '', heapBytes: 9_000_000, objects: 270_000, path: 'enriched (Map, 2000 items) ← module scope of app/worker.js, kept by (anonymous), fetchCustomer, enrichOrder' });
const holders = [parked, table, orders];

const librarySite = { siteKind: 'library' as const, retainedBytes: 8_000_000, stack: ['parseJSONFromBytes (node:internal/deps/undici/undici:5776)', 'consumeBody (node:internal/deps/undici/undici:5700)'] };

describe('the holder of a flagged site', () => {
  it('is the on-heap holder whose kept-by closures are on the stack', () => {
    const site = { siteKind: 'application' as const, retainedBytes: 500_000, stack: ['decode (app/codec.js:4)', 'enrichOrder (/app/worker.js:40)', 'onMessage (/app/worker.js:60)'] };
    expect(siteHeldBy(site, holders)).toMatchObject({ siteKind: 'holder', owner: 'enriched', heapBytes: 9_000_000, offHeapBytes: 0, match: 'stack' });
  });

  it('names on the path: the functions that use the holder, when the agent found them in the source', () => {
    const sessions = holder({ owner: 'sessions', container: 'Map', heapBytes: 4_000_000, path: 'sessions (Map, 10001 items) ← module scope of app/sessions.js, used by remember' });
    const site = { siteKind: 'application' as const, retainedBytes: 3_000_000 };
    expect(siteHeldBy({ ...site, stack: ['remember (/app/sessions.js:4)', 'onLogin (/app/sessions.js:20)'] }, [sessions])).toMatchObject({ owner: 'sessions', match: 'stack' });
    expect(siteHeldBy({ ...site, stack: ['sweep (/app/sessions.js:9)'] }, [sessions])).toBeNull();
  });

  it('is the on-heap holder whose declaring function is on the stack', () => {
    const site = { siteKind: 'application' as const, retainedBytes: 500_000, stack: ['buildRow (/app/tables.js:9)', 'loadTables (/app/tables.js:3)'] };
    expect(siteHeldBy(site, holders)).toMatchObject({ owner: 'countries', match: 'stack' });
  });

  it('of two holders the stack names (one module scope keeps both), the one nearest in size to what the site retains', () => {
    const table = holder({ owner: 'zipCodes', container: 'Map', items: 40_000, heapBytes: 30_000_000, path: 'zipCodes (Map, 40000 items) ← module scope of app/worker.js, kept by lookupZip, enrichOrder' });
    const site = { siteKind: 'application' as const, stack: ['enrichOrder (/app/worker.js:40)'] };
    expect(siteHeldBy({ ...site, retainedBytes: 7_000_000 }, [table, orders])).toMatchObject({ owner: 'enriched', match: 'stack' });
    expect(siteHeldBy({ ...site, retainedBytes: 25_000_000 }, [table, orders])).toMatchObject({ owner: 'zipCodes', match: 'stack' });
  });

  it('for library code no frame names: the holder nearest in size to what the site retains, said to be only a lead', () => {
    expect(siteHeldBy(librarySite, holders)).toMatchObject({ owner: 'enriched', match: 'size' });
    expect(siteHeldBy({ ...librarySite, retainedBytes: 60_000_000 }, holders)).toMatchObject({ owner: 'countries', match: 'size' });
  });

  it('for application code no holder names: none, rather than a guess', () => {
    const site = { siteKind: 'application' as const, retainedBytes: 9_000_000, stack: ['renderInvoice (/app/pdf.js:12)'] };
    expect(siteHeldBy(site, holders)).toBeNull();
  });

  it('is never an off-heap holder, and none without a capture', () => {
    expect(siteHeldBy({ siteKind: 'application', retainedBytes: 16_000_000, stack: ['parkForRetry (/app/retry.js:8)'] }, holders)).toBeNull();
    expect(siteHeldBy(librarySite, [parked])).toBeNull();
    expect(siteHeldBy(librarySite, [])).toBeNull();
  });
});

describe('the holder of a process finding', () => {
  it('external: the largest off-heap holder; heap: the largest on-heap holder', () => {
    expect(processHeldBy('external', holders)).toMatchObject({ owner: 'parked', offHeapBytes: 16_000_000, match: 'largest' });
    expect(processHeldBy('heap', holders)).toMatchObject({ owner: 'countries', match: 'largest' });
    expect(processHeldBy('external', [table, orders])).toBeNull();
    expect(processHeldBy('heap', [parked])).toBeNull();
  });
});

describe('the table', () => {
  const leak: LeakSite = {
    function: 'parseJSONFromBytes', file: 'node:internal/deps/undici/undici', line: 5776, siteKind: 'library', allocatedIn: null,
    stack: librarySite.stack, growthBytesPerHour: 70e6, growthBytesPerInterval: 1e5, retainedBytes: 9e6, instances: 1, intervals: 150,
    confidence: 1, firstFlaggedAt: '2026-12-02T10:00:00.000Z', attribution: 'precise', heldBy: siteHeldBy(librarySite, [parked, orders]),
  };
  const report: LeakReport = {
    service: 'orders', evaluatedAt: '2026-12-02T10:05:00.000Z', leaks: [leak], process: [], jobs: null,
    holders: { instance: 'i-1', capturedAt: '2026-12-02T10:04:00.000Z', skipped: null, heapUsedBytes: 30e6, maxHeapBytes: 32 * 2 ** 20, pauseMs: 310, backingStores: 40, offHeapBytes: 16e6, unreachable: 0, holders: [parked, orders] },
  };

  it('says who holds a library site and how sure that is, and lists both kinds of holder', () => {
    const text = formatLeakTable(report);
    expect(text).toContain('held by enriched in the module scope of /app/worker.js (no frame of the stack names a holder: the one nearest in size to the retained bytes):');
    expect(text).toContain('  enriched (Map, 2000 items) ← module scope of app/worker.js, kept by (anonymous), fetchCustomer, enrichOrder');
    expect(text).toContain('  15.3 MiB off-heap, 19.5 KiB heap, 160 buffers: parked (Array, 160 items)');
    expect(text).toContain('  8.6 MiB heap, 270.0k objects: enriched (Map, 2000 items)');
  });
});
