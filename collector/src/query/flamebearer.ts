/**
 * Merged stacks (store/store.ts) as Pyroscope's flame graph: a call tree by
 * function name, root first, laid out as levels of
 * `[x offset, total, self, name index]` where the x offset is relative to
 * the end of the previous node on the same level (Pyroscope's
 * "flamebearer" encoding, which Grafana's flame graph panel decodes). The
 * diff form carries one such triple per side: `[left offset, left total,
 * left self, right offset, right total, right self, name index]`.
 *
 * `maxNodes` keeps the nodes with the largest totals (a node's total is at
 * least each child's, so what is kept is a tree); what a kept node loses to
 * the cut becomes one child named `other`, so every total still adds up.
 */
import type { MergedStack } from '../store/store';

export const DEFAULT_MAX_NODES = 8192;
export const MAX_MAX_NODES = 65_536;
export const OTHER = 'other';

export type Measure = 'bytes' | 'objects';

interface Node {
  name: string;
  /** One value per side (one side for a flame graph, two for a diff). */
  total: number[];
  self: number[];
  children: Map<string, Node>;
  depth: number;
}

function newNode(name: string, sides: number, depth: number): Node {
  return { name, total: new Array<number>(sides).fill(0), self: new Array<number>(sides).fill(0), children: new Map(), depth };
}

/** Adds one side's stacks into the tree; values are rounded per stack, as the pprof export rounds them. */
function addStacks(root: Node, side: number, stacks: readonly MergedStack[], measure: Measure): void {
  for (const s of stacks) {
    const v = Math.round(measure === 'bytes' ? s.bytes : s.objects);
    if (v === 0) continue;
    root.total[side]! += v;
    let node = root;
    for (let i = s.functions.length - 1; i >= 0; i--) {
      const name = s.functions[i] || '(anonymous)';
      let child = node.children.get(name);
      if (!child) {
        child = newNode(name, root.total.length, node.depth + 1);
        node.children.set(name, child);
      }
      child.total[side]! += v;
      node = child;
    }
    node.self[side]! += v;
  }
}

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

/** Cuts the tree to the `maxNodes` heaviest nodes below the root, folding the rest into `other`. */
function prune(root: Node, maxNodes: number): void {
  const all: Node[] = [];
  const walk = (n: Node): void => {
    for (const c of n.children.values()) {
      all.push(c);
      walk(c);
    }
  };
  walk(root);
  if (all.length <= maxNodes) return;
  all.sort((a, b) => sum(b.total) - sum(a.total) || a.depth - b.depth);
  const kept = new Set(all.slice(0, maxNodes));
  const cut = (n: Node): void => {
    const other = newNode(OTHER, n.total.length, n.depth + 1);
    for (const [name, c] of n.children) {
      if (kept.has(c)) {
        cut(c);
        continue;
      }
      n.children.delete(name);
      c.total.forEach((v, i) => (other.total[i]! += v));
    }
    if (sum(other.total) === 0) return;
    const existing = n.children.get(OTHER); // a kept function that is called `other`
    if (existing) {
      other.total.forEach((v, i) => {
        existing.total[i]! += v;
        existing.self[i]! += v;
      });
    } else {
      other.self = [...other.total];
      n.children.set(OTHER, other);
    }
  };
  cut(root);
}

interface Levels {
  names: string[];
  levels: { values: number[] }[];
  maxSelf: number;
}

/** Depth first, children by name: nodes on a level come left to right, so offsets are deltas. */
function layout(root: Node): Levels {
  const sides = root.total.length;
  const names: string[] = [];
  const nameIndex = new Map<string, number>();
  const levels: { values: number[] }[] = [];
  const lastEnd: number[][] = [];
  let maxSelf = 0;
  const visit = (n: Node, level: number, start: number[]): void => {
    let idx = nameIndex.get(n.name);
    if (idx === undefined) {
      idx = names.length;
      names.push(n.name);
      nameIndex.set(n.name, idx);
    }
    if (!levels[level]) {
      levels[level] = { values: [] };
      lastEnd[level] = new Array<number>(sides).fill(0);
    }
    const ends = lastEnd[level]!;
    const values = levels[level]!.values;
    for (let s = 0; s < sides; s++) {
      values.push(start[s]! - ends[s]!, n.total[s]!, n.self[s]!);
      ends[s] = start[s]! + n.total[s]!;
      maxSelf = Math.max(maxSelf, n.self[s]!);
    }
    values.push(idx);
    const next = [...start];
    for (const c of [...n.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      visit(c, level + 1, next);
      for (let s = 0; s < sides; s++) next[s]! += c.total[s]!;
    }
  };
  visit(root, 0, new Array<number>(sides).fill(0));
  return { names, levels, maxSelf };
}

export interface FlameGraph extends Levels {
  total: number;
}

export function flameGraph(stacks: readonly MergedStack[], measure: Measure, maxNodes: number): FlameGraph {
  const root = newNode('total', 1, 0);
  addStacks(root, 0, stacks, measure);
  prune(root, maxNodes);
  return { ...layout(root), total: root.total[0]! };
}

export interface FlameGraphDiff extends Levels {
  total: number;
  leftTicks: number;
  rightTicks: number;
}

export function flameGraphDiff(
  left: readonly MergedStack[],
  right: readonly MergedStack[],
  measure: Measure,
  maxNodes: number,
): FlameGraphDiff {
  const root = newNode('total', 2, 0);
  addStacks(root, 0, left, measure);
  addStacks(root, 1, right, measure);
  prune(root, maxNodes);
  const leftTicks = root.total[0]!;
  const rightTicks = root.total[1]!;
  return { ...layout(root), total: leftTicks + rightTicks, leftTicks, rightTicks };
}
