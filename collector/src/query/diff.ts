/**
 * Comparing two ranges of one service (the hour before a deploy and the hour
 * after): the scale applied to the base before it is subtracted.
 */
import type { MergedProfile } from '../store/store';

/**
 * [objects, bytes] factors for the base. Not normalised: 1, so the diff is
 * the change in averaged in-use memory (more instances after the deploy show
 * as growth). Normalised: new total / base total per sample type, as
 * `go tool pprof -normalize` does, so only a change in where memory sits
 * shows (a base with nothing in it keeps factor 1).
 */
export function diffScale(base: MergedProfile, next: MergedProfile, normalize: boolean): [number, number] {
  if (!normalize) return [1, 1];
  const total = (m: MergedProfile, k: 'objects' | 'bytes'): number => m.stacks.reduce((a, s) => a + s[k], 0);
  const ratio = (k: 'objects' | 'bytes'): number => {
    const b = total(base, k);
    return b > 0 ? total(next, k) / b : 1;
  };
  return [ratio('objects'), ratio('bytes')];
}
