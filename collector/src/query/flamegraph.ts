/**
 * A merged profile as a flame graph tree (JSON for the web UI): stacks
 * folded root first, each node holding the totals of everything under it.
 * Frames are listed once and referenced by index, so 5,000 stacks of 30
 * frames are a few hundred KB, not a copy of every name per node.
 *
 * With a base profile (a diff), each node also holds the base's totals,
 * already scaled (normalised) by the caller.
 */
import type { MergedStack } from '../store/store';

export interface FlameFrame {
  function: string;
  file: string;
  line: number;
}

export interface FlameNode {
  /** Index into `frames`; -1 for the root. */
  f: number;
  /** In-use objects and bytes, totals of this node and everything under it (rounded). */
  o: number;
  b: number;
  /** The base profile's totals, in a diff. */
  bo?: number;
  bb?: number;
  c?: FlameNode[];
}

export interface FlameTree {
  frames: FlameFrame[];
  root: FlameNode;
}

interface Building {
  f: number;
  o: number;
  b: number;
  bo: number;
  bb: number;
  children: Map<number, Building> | undefined;
}

function node(f: number): Building {
  return { f, o: 0, b: 0, bo: 0, bb: 0, children: undefined };
}

/** Folds stacks (leaf first, as stored) into a tree; `base` stacks go into bo/bb scaled by `baseScale` [objects, bytes]. */
export function flameTree(stacks: readonly MergedStack[], base?: { stacks: readonly MergedStack[]; scale: readonly [number, number] }): FlameTree {
  const frames: FlameFrame[] = [];
  const frameIndex = new Map<string, number>();
  const root = node(-1);
  const add = (s: MergedStack, o: number, b: number, isBase: boolean): void => {
    let at = root;
    const bump = (n: Building): void => {
      if (isBase) {
        n.bo += o;
        n.bb += b;
      } else {
        n.o += o;
        n.b += b;
      }
    };
    bump(at);
    for (let i = s.functions.length - 1; i >= 0; i--) {
      const fn = s.functions[i]!;
      const file = s.files[i] ?? '';
      const line = s.lines[i] ?? 0;
      const key = `${fn}\0${file}\0${line}`;
      let f = frameIndex.get(key);
      if (f === undefined) {
        f = frames.length;
        frames.push({ function: fn, file, line });
        frameIndex.set(key, f);
      }
      at.children ??= new Map();
      let child = at.children.get(f);
      if (!child) at.children.set(f, (child = node(f)));
      at = child;
      bump(at);
    }
  };
  for (const s of stacks) add(s, s.objects, s.bytes, false);
  if (base) for (const s of base.stacks) add(s, s.objects * base.scale[0], s.bytes * base.scale[1], true);
  const finish = (n: Building): FlameNode => {
    const out: FlameNode = { f: n.f, o: Math.round(n.o), b: Math.round(n.b) };
    if (base) {
      out.bo = Math.round(n.bo);
      out.bb = Math.round(n.bb);
    }
    if (n.children) out.c = [...n.children.values()].map(finish);
    return out;
  };
  return { frames, root: finish(root) };
}
