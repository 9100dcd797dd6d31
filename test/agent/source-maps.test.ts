import * as fs from 'node:fs';
import * as path from 'node:path';
import { heap } from '@datadog/pprof';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/collector';
import { SourceMaps, DEFAULT_SOURCE_MAP_LIMITS, type GeneratedLocation } from '../../agent/src/source-maps';

// tsc's output (external .map files and inline maps) of a real TypeScript
// file, read back through the agent's mapper; then V8's own sampler through
// @datadog/pprof with the mapper plugged in.
const SRC = path.join(__dirname, 'fixtures/ts-map/ledger.ts');
const srcLines = fs.readFileSync(SRC, 'utf8').split('\n');
const lineOf = (needle: string): number => srcLines.findIndex((l) => l.includes(needle)) + 1;

let dir: string;
/**
 * tsc's output for the fixture (transpileModule: the compiler's own emit,
 * without the type check that makes `tsc` take tens of seconds here),
 * written to `dir/name` with the source beside it, as `outDir` builds ship.
 * Returns the .js path; the original is `dir/name/ledger.ts`.
 */
function compile(name: string, mapFlag: '--sourceMap' | '--inlineSourceMap'): string {
  const out = path.join(dir, name);
  fs.mkdirSync(out, { recursive: true });
  const r = ts.transpileModule(fs.readFileSync(SRC, 'utf8'), {
    fileName: 'ledger.ts',
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, sourceMap: mapFlag === '--sourceMap', inlineSourceMap: mapFlag === '--inlineSourceMap' },
  });
  fs.writeFileSync(path.join(out, 'ledger.js'), r.outputText);
  if (r.sourceMapText) fs.writeFileSync(path.join(out, 'ledger.js.map'), r.sourceMapText);
  fs.copyFileSync(SRC, path.join(out, 'ledger.ts'));
  return path.join(out, 'ledger.js');
}
const original = (js: string): string => path.join(path.dirname(js), 'ledger.ts');

/** Where V8 says a function starts in a compiled file: its line, and the column of its `(` (1-based). */
function generated(file: string, fn: string): GeneratedLocation {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes(`function ${fn}(`));
  return { file, name: fn, line: i + 1, column: lines[i]!.indexOf(`${fn}(`) + fn.length + 1 };
}

beforeAll(() => {
  dir = tempDir('srcmap');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('SourceMaps', () => {
  it.each(['--sourceMap', '--inlineSourceMap'] as const)('maps a compiled function to its .ts file and line (%s)', (flag) => {
    const js = compile(flag.slice(2), flag);
    const maps = new SourceMaps();
    maps.startProfile();
    const at = generated(js, 'buildLedgerEntry');
    const m = maps.mappingInfo(at);
    expect(m.file).toBe(original(js));
    expect(m.line).toBe(lineOf('export function buildLedgerEntry'));
    expect(m.name).toBe('buildLedgerEntry');
    expect(maps.stats).toMatchObject({ mapped: 1, unmapped: 0 });
  });

  it('leaves unmapped files, internals and dependencies as they are, and remembers a missing map', () => {
    const maps = new SourceMaps();
    maps.startProfile();
    const plain = path.join(dir, 'plain.js');
    fs.writeFileSync(plain, 'function f() { return 1; }\n');
    for (const loc of [
      { file: plain, name: 'f', line: 1, column: 11 },
      { file: 'node:internal/encoding', name: 'decode', line: 440, column: 3 },
      { file: path.join(dir, 'node_modules/x/index.js'), name: 'g', line: 1, column: 1 },
      { file: '', name: '(V8 API)', line: 0, column: 0 },
    ]) {
      expect(maps.mappingInfo(loc)).toEqual(loc);
    }
    maps.mappingInfo({ file: plain, name: 'f', line: 1, column: 11 });
    expect(maps.stats).toMatchObject({ mapped: 0, unmapped: 1 });
  });

  it("leaves the agent's own scripts as compiled: the collector knows them by those paths", () => {
    // The compiled agent (agent/dist ships with its .map files).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const compiled = require('../../agent/dist/source-maps.js') as { SourceMaps: typeof SourceMaps };
    const agentJs = path.resolve(__dirname, '../../agent/dist/agent.js');
    expect(fs.existsSync(`${agentJs}.map`)).toBe(true);
    const maps = new compiled.SourceMaps();
    maps.startProfile();
    const loc = { file: agentJs, name: 'tick', line: 10, column: 5 };
    expect(maps.mappingInfo(loc)).toEqual(loc);
  });

  it('reads at most maxLoadsPerProfile scripts per profile, the rest at the next one', () => {
    const a = compile('budget-a', '--sourceMap');
    const b = compile('budget-b', '--sourceMap');
    const maps = new SourceMaps({ ...DEFAULT_SOURCE_MAP_LIMITS, maxLoadsPerProfile: 1 });
    maps.startProfile();
    expect(maps.mappingInfo(generated(a, 'keep')).file).toBe(original(a));
    const deferred = generated(b, 'keep');
    expect(maps.mappingInfo(deferred)).toEqual(deferred);
    expect(maps.stats.deferred).toBe(1);
    maps.startProfile();
    expect(maps.mappingInfo(generated(b, 'keep')).file).toBe(original(b));
  });

  it('keeps at most maxScripts scripts and maxBytes of maps, evicting the least recently used', () => {
    const files = ['lru-a', 'lru-b', 'lru-c'].map((d) => compile(d, '--sourceMap'));
    const maps = new SourceMaps({ ...DEFAULT_SOURCE_MAP_LIMITS, maxScripts: 2 });
    maps.startProfile();
    for (const f of files) maps.mappingInfo(generated(f, 'keep'));
    expect(maps.stats).toMatchObject({ mapped: 3, evicted: 1 });
    const tiny = new SourceMaps({ ...DEFAULT_SOURCE_MAP_LIMITS, maxBytes: 10 });
    tiny.startProfile();
    tiny.mappingInfo(generated(files[0]!, 'keep'));
    expect(tiny.stats.evicted).toBe(1);
  });

  it("maps V8's own heap samples of compiled code (the agent's path)", () => {
    const js = compile('sampled', '--sourceMap');
    heap.start(1024, 64);
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const mod = require(js) as { keep(n: number): void };
      mod.keep(3000);
      // The test runner's own scripts are in this profile too: no per-profile
      // budget, so which scripts are read first does not decide the outcome.
      const maps = new SourceMaps({ ...DEFAULT_SOURCE_MAP_LIMITS, maxLoadsPerProfile: 10_000, maxLoadMsPerProfile: 60_000 });
      maps.startProfile();
      const profile = heap.profile(undefined, maps as never);
      const str = (i: number | bigint): string => profile.stringTable.strings[Number(i)] ?? '';
      const fns = profile.function.filter((f) => str(f.name) === 'buildLedgerEntry');
      expect(fns.length).toBeGreaterThan(0);
      expect(fns.map((f) => str(f.filename))).toContain(original(js));
      const ids = new Set(fns.map((f) => Number(f.id)));
      const lines = profile.location.flatMap((l) => l.line).filter((l) => ids.has(Number(l.functionId))).map((l) => Number(l.line));
      expect(lines).toContain(lineOf('export function buildLedgerEntry'));
    } finally {
      heap.stop();
    }
  });
});
