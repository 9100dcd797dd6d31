// Types of runner.mjs, for the TypeScript tests that run scenarios.
export interface Scenario {
  name: string;
  file: string;
  kind: 'leak' | 'ok' | 'unknown';
  trueSite: string | null;
  bytesPerJob: number | null;
}

export interface ScenarioResult {
  scenario: string;
  kind: Scenario['kind'];
  mode: string;
  samplingBytes: number;
  gcAssistBudget: number;
  trueSite: string | null;
  flagged: boolean;
  /** Function of the first flagged site (or `(heap)`/`(external)` for a process finding), and its file:line. */
  reported: string | null;
  reportedAt: string | null;
  sites: string[];
  /** Profiles stored before the evaluation that first flagged it. */
  /** Profiles stored when the first finding came, and the site it named (perhaps an inlined callee's caller). */
  intervalsToFlag: number | null;
  firstReported: string | null;
  /** Profiles stored when a site was flagged from precise-mode profiles (attribution 'precise'), or a process finding; `reported` names it. */
  intervalsToPrecise: number | null;
  measuredRate: number | null;
  /** Profiles stored at the last evaluation. */
  profiles: number;
  error: string | null;
}

export interface ScenarioCollector {
  grpc: string;
  http: string;
  output(): string;
  stop(): Promise<void>;
}

export declare function readScenario(file: string): Scenario;
export declare function listScenarios(): Scenario[];
export declare function okEnv(name: string, intervalMs: number): Record<string, string>;
export declare function startCollector(dataDir: string, opts?: { suspectTtlMs?: number; minGrowthMs?: number }): Promise<ScenarioCollector>;
export declare function scaledMinGrowthMs(intervalMs: number): number;
export declare const SCENARIO_GC_ASSIST_BUDGET: number;
export declare const WALL_CLOCK_CEILING: number;
export declare function spawnScenario(
  collector: ScenarioCollector,
  sc: Scenario,
  o: { mode: string; samplingBytes: number; intervalMs: number; service: string; gcAssistBudget?: number; precise?: 'auto' | 'always' | 'never'; agent?: 'heapwatch' | 'pyroscope' },
): import('node:child_process').ChildProcess;
export declare function runScenario(
  collector: ScenarioCollector,
  sc: Scenario,
  o: { mode: string; samplingBytes: number; intervalMs: number; maxIntervals: number; service: string; gcAssistBudget?: number; precise?: 'auto' | 'always' | 'never'; agent?: 'heapwatch' | 'pyroscope' },
): Promise<ScenarioResult>;
