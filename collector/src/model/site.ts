/**
 * Which frame of a stack names the allocation site a user should look at: a
 * pure function of the stack's frames. The store applies it when reading
 * (store/stack-sites.ts), so a better rule also applies to stacks stored
 * before it; ingest and the leak detector both sit above this module.
 */
import { hashString, toDecimal } from '../hash';

export interface Frame {
  /** Function name as V8 reports it; '' for anonymous functions. */
  function: string;
  /** Script url or path; '' for builtins and V8 pseudo-frames. */
  file: string;
  /** Line where the function starts (V8's heap sampler has no allocation line). */
  line: number;
}

/**
 * Index in `frames` (leaf first) of the frame that stands for the site:
 * the deepest frame of the user's own code. Frames with an empty url,
 * `node:` internals and pseudo-frames such as `(V8 API)` are skipped; a
 * frame under node_modules stands for the site only when no application
 * frame is on the stack. Falls back to the leaf.
 */
export function siteIndex(frames: readonly Frame[]): number {
  let dependency = -1;
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i]!;
    if (f.file === '' || f.file.startsWith('node:') || f.function.startsWith('(')) continue;
    if (/[\\/]node_modules[\\/]/.test(f.file)) {
      if (dependency < 0) dependency = i;
      continue;
    }
    return i;
  }
  return dependency >= 0 ? dependency : 0;
}

/**
 * The site every allocation made by the heapwatch agent itself is charged
 * to. The profiler's own memory is not the user's leak: it is audited by
 * bench/agent-leak.mjs (bounded queue, flat heap), it still shows in flame
 * graphs under its real frames, and it counts in the process findings. But
 * a site of one to three samples that the agent holds and that grows while
 * its profiles grow (more stacks, larger encodings) is no answer to "which
 * of my code holds the memory?", and the detector flagged such sites in the
 * corpus's non-leak runs.
 */
export const AGENT_SITE: Frame = { function: '(heapwatch agent)', file: '', line: 0 };

// Installed: node_modules/@heapwatch/agent/...; in this repository (node
// resolves the workspace link to its real path): agent/dist/<module>.js.
const AGENT_FILE =
  /[\\/]@heapwatch[\\/]agent[\\/]|[\\/]agent[\\/]dist[\\/](?:agent|backoff|collector-address|config|gc-aligned-timer|gc-assist|grpc-status|grpc-wire|index|inlining|logger|major-gc-watch|precise-mode|queue|sampler|sender|transport|version)\.js$/;

/**
 * @datadog/pprof adds one sample whose only frame is `(external)`, carrying
 * process.memoryUsage().external: a gauge, not a sampled allocation, with no
 * code to point at. Off-heap growth is a process finding (leaks/detect.ts, kind
 * "external"); as a site it was flagged on a non-leak (lazy-require-jit).
 */
export const EXTERNAL_SITE: Frame = { function: '(external)', file: '', line: 0 };

/** Whether a stack is the agent's `(external)` gauge. */
export function isExternalStack(frames: readonly Frame[]): boolean {
  return frames.length === 1 && frames[0]!.function === EXTERNAL_SITE.function && frames[0]!.file === '';
}

/** Whether a frame is the heapwatch agent's own code. */
export function isAgentFrame(f: Frame): boolean {
  return AGENT_FILE.test(f.file);
}

/** A site's 64-bit id (decimal). */
export function siteId(f: Frame): string {
  return toDecimal(hashString(`${f.function}\0${f.file}\0${f.line}`));
}

export const AGENT_SITE_ID = siteId(AGENT_SITE);

/** Sites that are never leak candidates: the agent's own memory and the `(external)` gauge. */
export const NON_CANDIDATE_SITE_IDS: ReadonlySet<string> = new Set([AGENT_SITE_ID, siteId(EXTERNAL_SITE)]);

export interface Site {
  id: string;
  frame: Frame;
}

/** The site a stack (leaf first) is charged to. */
export function siteOf(frames: readonly Frame[]): Site {
  const frame = frames.some(isAgentFrame)
    ? AGENT_SITE
    : isExternalStack(frames)
      ? EXTERNAL_SITE
      : (frames[siteIndex(frames)] ?? { function: '(unknown)', file: '', line: 0 });
  return { id: siteId(frame), frame };
}
