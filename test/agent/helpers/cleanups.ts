/**
 * Children and collector doubles a test starts, killed and closed after each
 * test whatever its outcome. Call once at the top of a test file.
 */
import { afterEach } from 'vitest';
import { startCollectorDouble, type CollectorDouble, type Directive } from './collector-double';
import type { Run } from './run-agent';

export function trackedResources(): {
  track(run: Run): Run;
  /** Runs `fn` after the test. */
  defer(fn: () => unknown): void;
  collector(port?: number, directive?: (n: number) => Directive | undefined): Promise<CollectorDouble>;
} {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });
  return {
    defer(fn) {
      cleanups.push(fn);
    },
    track(run) {
      cleanups.push(() => run.child.exitCode === null && run.child.kill('SIGKILL'));
      return run;
    },
    async collector(port = 0, directive) {
      const c = await startCollectorDouble(port, directive);
      cleanups.push(() => c.close());
      return c;
    },
  };
}
