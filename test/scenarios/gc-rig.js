// Test rig, not product: forces a major GC every SCENARIO_GC_EVERY_MS ms
// (needs node --expose-gc). The scenario workers allocate little, so V8 runs
// a major GC only every 15-40 s; a busy production worker runs them far more
// often. The detector judges memory after major GCs (rule.ts), so how fast it
// can decide is set by the GC period, not by the profile interval: this rig
// lets the scorecard and the integration test run the post-GC path at test
// speed. Runs with and without it are reported apart.
'use strict';
const everyMs = Number(process.env.SCENARIO_GC_EVERY_MS);
if (everyMs > 0 && typeof globalThis.gc === 'function') setInterval(() => globalThis.gc(), everyMs).unref();
