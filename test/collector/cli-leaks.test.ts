import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { leaksBaseUrl, leaksExitStatus } from '../../collector/src/cli';

const CLI = path.resolve(__dirname, '../../collector/dist/cli.js');

describe('heapwatch leaks', () => {
  it('exits 3 when a site or a process finding is flagged, 0 when nothing is', () => {
    const site = { function: 'f' } as never;
    const heap = { kind: 'heap', instance: 'i', growthBytesPerHour: 1, timeToLimitSeconds: 162_000 } as const;
    expect(leaksExitStatus({ leaks: [], process: [] })).toBe(0);
    expect(leaksExitStatus({ leaks: [site], process: [] })).toBe(3);
    // A heap finding alone (45 h to the heap limit) is a finding.
    expect(leaksExitStatus({ leaks: [], process: [heap] })).toBe(3);
  });

  it('takes --url, else HEAPWATCH_URL unless empty, else the default', () => {
    expect(leaksBaseUrl(undefined, {})).toBe('http://127.0.0.1:7800');
    expect(leaksBaseUrl(undefined, { HEAPWATCH_URL: '' })).toBe('http://127.0.0.1:7800');
    expect(leaksBaseUrl(undefined, { HEAPWATCH_URL: 'http://h:1/' })).toBe('http://h:1');
    expect(leaksBaseUrl('http://f:2', { HEAPWATCH_URL: 'http://h:1' })).toBe('http://f:2');
    expect(() => leaksBaseUrl('ftp://h', {})).toThrow('--url "ftp://h" must be an http(s):// URL');
  });

  it('names the bad URL and exits 2 (usage), before any request', () => {
    const r = spawnSync(process.execPath, [CLI, 'leaks', '--service', 's', '--url', 'http://127.0.0.1:99999'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--url "http://127.0.0.1:99999" is not a valid URL');
    const e = spawnSync(process.execPath, [CLI, 'leaks', '--service', 's'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, HEAPWATCH_URL: 'http://127.0.0.1:99999' } });
    expect(e.stderr).toContain('HEAPWATCH_URL "http://127.0.0.1:99999" is not a valid URL');
  });
});
