/**
 * Which frame of a stack names the allocation site a user should look at.
 */

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
