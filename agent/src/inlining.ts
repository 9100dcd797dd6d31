import * as v8 from 'node:v8';

/** Loaded on the first switch: the default mode never needs it. */
let inspectorModule: typeof import('node:inspector') | undefined;
function inspector(): typeof import('node:inspector') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  inspectorModule ??= require('node:inspector') as typeof import('node:inspector');
  return inspectorModule;
}

/**
 * Turns V8's inlining off or on for this isolate, and makes the change reach
 * code that is already optimized.
 *
 * Why: V8's sampler records physical frames, so a small function TurboFan
 * inlined into its caller vanishes and its allocations are charged to the
 * caller. `--no-turbo-inlining` stops that, but a flag set at run time only
 * changes what is compiled afterwards: the hot code of a worker that has run
 * for a while is optimized already, inlining included, and stays so.
 * Starting precise coverage (callCount + detailed, through an in-process
 * inspector session) makes V8 deoptimize every function so it can count
 * calls; stopping it at once leaves the code to be optimized again under
 * the new flag. Measured (Node 20, 16 KiB sampling, a small allocating leaf
 * called from a hot loop, warmed up first): flag alone, leaf 0 % and loop
 * 86 % of the bytes; flag plus the switch, leaf 87 %, loop 0 %; the switch
 * took 24-47 ms on that small program (bench/agent-cpu.mjs measures it on a
 * larger one, with the re-optimization after it).
 *
 * The way back is the same: code optimized while inlining was off keeps
 * its calls un-inlined until it is deoptimized, so turning inlining on
 * again deoptimizes too, or the worker would keep paying for precise mode
 * after it ended.
 *
 * The session is connected synchronously and closed before returning;
 * nothing stays attached. The deoptimization is skipped (the flag still
 * applies to code compiled from then on) when an inspector is open
 * (--inspect: the coverage mode is isolate-wide, and a debugger's coverage
 * must not be stopped by ours) or when the process collects coverage
 * (NODE_V8_COVERAGE, which runs precise coverage itself).
 */
export function setInlining(on: boolean): { deoptimized: boolean; reason?: string } {
  v8.setFlagsFromString(on ? '--turbo-inlining' : '--no-turbo-inlining');
  const why = deoptimizationBlocked();
  if (why) return { deoptimized: false, reason: why };
  const session = new (inspector().Session)();
  session.connect();
  try {
    // An in-process session answers synchronously, callbacks included.
    let error: Error | null = null;
    const post = (method: string, params?: object): void =>
      session.post(method, params ?? {}, (e) => {
        error ??= e;
      });
    post('Profiler.enable');
    post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
    post('Profiler.stopPreciseCoverage');
    post('Profiler.disable');
    if (error) return { deoptimized: false, reason: String(error) };
    return { deoptimized: true };
  } finally {
    session.disconnect();
  }
}

function deoptimizationBlocked(): string | undefined {
  if (process.env.NODE_V8_COVERAGE) return 'NODE_V8_COVERAGE is set (coverage already deoptimizes and must not be stopped)';
  try {
    if (inspector().url() !== undefined) return 'an inspector is open (--inspect)';
  } catch {
    // inspector().url() unavailable: go on
  }
  return undefined;
}
