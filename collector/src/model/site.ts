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

/** Frames that name no code a user wrote or installed: empty url, `node:` internals, pseudo-frames such as `(V8 API)`. */
function isInternalFrame(f: Frame): boolean {
  return f.file === '' || f.file.startsWith('node:') || f.function.startsWith('(');
}

function isDependencyFrame(f: Frame): boolean {
  return /[\\/]node_modules[\\/]/.test(f.file);
}

/** Whether a frame is the user's own code: not internal, not under node_modules. */
export function isApplicationFrame(f: Frame): boolean {
  return !isInternalFrame(f) && !isDependencyFrame(f);
}

/**
 * Index in `frames` (leaf first) of the frame that stands for the site:
 * the deepest frame of the user's own code, which is the nearest
 * application frame above library code that allocated on its behalf (a
 * parser its code called, a client it awaits in the same tick). Frames with
 * an empty url, `node:` internals and pseudo-frames such as `(V8 API)` are
 * skipped; a frame under node_modules stands for the site only when no
 * application frame is on the stack. Falls back to the leaf.
 */
export function siteIndex(frames: readonly Frame[]): number {
  let dependency = -1;
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i]!;
    if (isInternalFrame(f)) continue;
    if (isDependencyFrame(f)) {
      if (dependency < 0) dependency = i;
      continue;
    }
    return i;
  }
  return dependency >= 0 ? dependency : 0;
}

/**
 * What a report says about a site besides its frame. `siteKind`:
 * "application" when the site is the user's own code; "library" when no
 * application frame is on the stack at all, so the site is a dependency's
 * or Node's frame. That happens to data that arrives after an `await`
 * (a `fetch()` body, a socket, a stream): the allocation runs in a later
 * tick, and V8's sampler records the synchronous stack only, without the
 * function that awaits (docs/detector.md#which-frame-is-the-site). `allocatedIn`: the frame
 * that made the allocation (the deepest frame that names code) when it is
 * not the site itself, e.g. the parser inside a library the site called:
 * the deepest frame with a script (a builtin names no code to open).
 */
export function siteContext(frames: readonly Frame[], site: Frame): { siteKind: 'application' | 'library'; allocatedIn: Frame | null } {
  const siteKind = isApplicationFrame(site) ? 'application' : 'library';
  // Builtins (no script: Array.from, JSON.parse) name no code to open.
  const leaf = frames.find((f) => f.file !== '') ?? null;
  const same = leaf !== null && leaf.function === site.function && leaf.file === site.file && leaf.line === site.line;
  return { siteKind, allocatedIn: same ? null : leaf };
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
  /[\\/]@heapwatch[\\/]agent[\\/]|[\\/]agent[\\/]dist[\\/](?:agent|backoff|collector-address|config|gc-aligned-timer|gc-assist|grpc-status|grpc-wire|holder-capture|holder-worker|holders|index|inlining|logger|major-gc-watch|pprof-heap|precise-mode|queue|sampler|sender|snapshot-reader|source-maps|transport|version)\.js$/;

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

/**
 * The agent's queue integrations (agent/src/jobs) wrap the host's job
 * handlers: their frames sit under the host's own code on every stack a job
 * allocates on, so they are not the agent's: a job's leak would be charged
 * to the agent.
 */
const AGENT_JOBS_DIR = /[\\/]dist[\\/]jobs[\\/][^\\/]+\.js$/;

/** Whether a frame is the heapwatch agent's own code. */
export function isAgentFrame(f: Frame): boolean {
  return AGENT_FILE.test(f.file) && !AGENT_JOBS_DIR.test(f.file);
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
