/**
 * The canvas flame graph's layout (collector/ui/src/flame.ts): the tree
 * flattened depth first, children sorted by name, each node's left edge
 * and width in value units, and `end` skipping exactly its subtree. The
 * drawing itself is tested in a real browser (browser.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { diffColor, flatten } from '../../collector/ui/src/flame';
import type { FlameTree } from '../../collector/src/query/flamegraph';

// all(100) -> main(90) -> { zeta(50) -> leaf(30), alpha(30) }; all -> idle(10)
const tree: FlameTree = {
  frames: [
    { function: 'main', file: 'a.js', line: 1 },
    { function: 'zeta', file: 'a.js', line: 2 },
    { function: 'alpha', file: 'a.js', line: 3 },
    { function: 'leaf', file: 'b.js', line: 4 },
    { function: 'idle', file: 'c.js', line: 5 },
  ],
  root: {
    f: -1, o: 10, b: 100, bb: 40,
    c: [
      { f: 0, o: 9, b: 90, bb: 20, c: [{ f: 1, o: 5, b: 50, bb: 20, c: [{ f: 3, o: 3, b: 30 }] }, { f: 2, o: 3, b: 30 }] },
      { f: 4, o: 1, b: 10, bb: 20 },
    ],
  },
};

describe('flame graph layout', () => {
  it('flattens depth first with children sorted by name, edges in value units, and end past each subtree', () => {
    const flat = flatten(structuredClone(tree), 'space', false);
    const names = Array.from(flat.frame, (f) => (f < 0 ? 'all' : tree.frames[f]!.function));
    expect(names).toEqual(['all', 'idle', 'main', 'alpha', 'zeta', 'leaf']);
    expect(Array.from(flat.depth)).toEqual([0, 1, 1, 2, 2, 3]);
    expect(Array.from(flat.parent)).toEqual([-1, 0, 0, 2, 2, 4]);
    expect(Array.from(flat.start)).toEqual([0, 0, 10, 10, 40, 40]);
    expect(Array.from(flat.value)).toEqual([100, 10, 90, 30, 50, 30]);
    expect(Array.from(flat.end)).toEqual([6, 2, 6, 4, 6, 6]);
    expect(flat.maxDepth).toBe(3);
    expect(flat.next).toBeUndefined();
  });

  it('takes objects for the objects view', () => {
    const flat = flatten(structuredClone(tree), 'objects', false);
    expect(Array.from(flat.value)).toEqual([10, 1, 9, 3, 5, 3]);
    expect(Array.from(flat.start)).toEqual([0, 0, 1, 1, 4, 4]);
  });

  it('in a diff, a width is base + new, and each node keeps both', () => {
    const flat = flatten(structuredClone(tree), 'space', true);
    expect(Array.from(flat.value)).toEqual([140, 30, 110, 30, 70, 30]);
    expect(Array.from(flat.start)).toEqual([0, 0, 30, 30, 60, 60]);
    expect(Array.from(flat.next!)).toEqual([100, 10, 90, 30, 50, 30]);
    expect(Array.from(flat.base!)).toEqual([40, 20, 20, 0, 20, 0]);
  });

  it('flattens a stack deeper than the call stack allows recursion', () => {
    const deep: FlameTree = { frames: [{ function: 'f', file: 'x.js', line: 1 }], root: { f: -1, o: 1, b: 1 } };
    let at = deep.root;
    for (let i = 0; i < 20_000; i++) at = (at.c = [{ f: 0, o: 1, b: 1 }])[0]!;
    const flat = flatten(deep, 'space', false);
    expect(flat.count).toBe(20_001);
    expect(flat.maxDepth).toBe(20_000);
    expect(flat.end[0]).toBe(20_001);
  });

  it('colours growth red, shrinkage green, and a change under 2 % of the frame grey', () => {
    expect(diffColor(0, 100)).toBe('rgb(240,55,55)');
    expect(diffColor(100, 0)).toBe('rgb(55,225,55)');
    expect(diffColor(100, 101)).toBe('rgb(215,215,215)');
    expect(diffColor(100, 150)).toBe('rgb(240,168,168)');
  });
});
