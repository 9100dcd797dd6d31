'use strict';
// Preloaded (node --require) in place of heapwatch's agent: the real
// @pyroscope/nodejs SDK, heap profiling only, uploading to
// PYROSCOPE_SERVER_ADDRESS (the collector's HTTP port) every
// PYROSCOPE_FLUSH_MS, sampling every PYROSCOPE_SAMPLING_BYTES (32 KiB by
// default), tagged with PYROSCOPE_TAGS ("k=v,k=v"). Its profiles carry no
// GC information (docs/detector.md#profiles-without-gc-information).
// Used by bench/scenarios/runner.mjs (--agent pyroscope) and the test fixture
// test/fixtures/pyroscope-sdk-worker.js.
const Pyroscope = require('@pyroscope/nodejs').default;

const tags = Object.fromEntries(
  (process.env.PYROSCOPE_TAGS || '')
    .split(',')
    .filter((kv) => kv.includes('='))
    .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
);
Pyroscope.init({
  serverAddress: process.env.PYROSCOPE_SERVER_ADDRESS,
  appName: process.env.PYROSCOPE_APP_NAME,
  flushIntervalMs: Number(process.env.PYROSCOPE_FLUSH_MS || 1000),
  heap: { samplingIntervalBytes: Number(process.env.PYROSCOPE_SAMPLING_BYTES || 32 * 1024) },
  tags,
});
Pyroscope.startHeapProfiling();
