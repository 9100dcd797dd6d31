import type { heap as HeapApi } from '@datadog/pprof';

/**
 * @datadog/pprof's heap profiler alone. The package's index also loads its
 * wall-time profiler, a source-map library and an OpenTelemetry context
 * writer: about 0.6 MB of heap that the host's every major GC would mark for
 * nothing (measured: the index 1.18 MB retained, out/src/heap-profiler
 * 0.59 MB). This module is what the index's `heap` object is made of, with
 * the same functions; a version that moved it falls back to the index.
 */
export const heap: typeof HeapApi = load();

function load(): typeof HeapApi {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const m = require('@datadog/pprof/out/src/heap-profiler') as Partial<typeof HeapApi>;
    if (typeof m.start === 'function' && typeof m.stop === 'function' && typeof m.profile === 'function') return m as typeof HeapApi;
  } catch {
    // moved or renamed: the index below
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('@datadog/pprof') as typeof import('@datadog/pprof')).heap;
}
