import { defineConfig } from 'vitest/config';

// Unit tests: pure code (no chDB, no child process, no socket);
// `npm run test:unit` runs them alone. Every other test file is an
// integration test: the compiled agent and collector in child processes,
// embedded ClickHouse, real gRPC. A new test file is an integration test
// unless it is listed here.
const UNIT = [
  'test/agent/backoff.test.ts',
  'test/agent/config.test.ts',
  'test/agent/gc-assist.test.ts',
  'test/agent/precise-schedule.test.ts',
  'test/agent/queue.test.ts',
  'test/agent/sender.test.ts',
  'test/collector/limiter.test.ts',
  'test/collector/readiness-rules.test.ts',
  'test/collector/tokens.test.ts',
  'test/collector/otlp-decode.test.ts',
  'test/collector/pprof-reader.test.ts',
  'test/collector/units.test.ts',
  'test/docs/links.test.ts',
  'test/leaks/alert.test.ts',
  'test/leaks/detect.test.ts',
  'test/leaks/detection-time.test.ts',
  'test/leaks/flicker.test.ts',
  'test/leaks/held-by.test.ts',
  'test/leaks/jobs.test.ts',
  'test/leaks/rule.test.ts',
  'test/leaks/stats.test.ts',
  'test/leaks/suspects.test.ts',
  'test/proto/messages.test.ts',
  'test/ui/flame-layout.test.ts',
];

// Per project, not inherited from the root: a project that extends the root
// would run the root's global set-up once more.
const shared = {
  // chDB binds one data directory per process: every test file gets a
  // process of its own.
  pool: 'forks',
  testTimeout: 120_000,
  hookTimeout: 120_000,
} as const;

export default defineConfig({
  test: {
    maxWorkers: 2,
    // One build (tsc -b, incremental) before either project runs:
    // integration tests run the compiled code, and the workspace packages
    // (such as @heapwatch/proto) resolve to their dist/ for unit tests too.
    globalSetup: ['test/helpers/global-setup.ts'],
    projects: [
      { test: { ...shared, name: 'unit', include: UNIT } },
      { test: { ...shared, name: 'integration', include: ['test/**/*.test.ts'], exclude: UNIT } },
    ],
  },
});
