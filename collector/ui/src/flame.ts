/**
 * A flame graph of a FlameTree from the API, drawn on a canvas: plain, or as
 * a diff coloured by growth (red) and shrinkage (green). Root on top (an
 * icicle, as Pyroscope and Grafana draw it), children sorted by name,
 * searchable (matches in magenta), zoom on click (the clicked frame spans
 * the width; its ancestors stay above it, faded), a tooltip and a details
 * line for the frame under the pointer.
 *
 * A canvas, not an SVG: an SVG flame graph (d3-flame-graph, which this
 * replaced) is one DOM node per frame, and the browser lays out and paints
 * each of them; 5,000 distinct stacks (~47,000 tree nodes) took 0.93 s of
 * renderer CPU to draw. Here the tree is flattened once into typed arrays
 * in depth-first order, and a drawing is one pass over them that skips
 * whole subtrees narrower than a pixel, a rectangle and at most one label
 * per frame. The element gets `data-*` attributes describing the last
 * drawing (see `state()`), which the browser test reads.
 */
import { bytes } from '../../src/leaks/report';
import type { FlameFrame, FlameNode, FlameTree } from '../../src/query/flamegraph';
import { h } from './dom';

export type SampleType = 'space' | 'objects';

/** "fn (file:line)": how the leak report writes a frame, and what focus= names. */
export function frameLabel(f: FlameFrame): string {
  return `${f.function || '(anonymous)'} (${f.file}:${f.line})`;
}

export function formatValue(v: number, type: SampleType): string {
  return type === 'space' ? bytes(v) : `${Math.round(v).toLocaleString('en')} objects`;
}

const CELL_HEIGHT = 18;
/** Frames narrower than this (CSS px) are not drawn, nor anything under them. */
const MIN_FRAME_PX = 0.5;
/** Rows drawn at most: a canvas taller than 32,767 px is not drawn at all (deeper frames are left out, and counted). */
const MAX_ROWS = 1500;
/** Frames narrower than this get no label. */
const MIN_LABEL_PX = 24;
const FONT = '11px ui-monospace, Menlo, Consolas, monospace';
export const HIGHLIGHT = '#E600E6';
const ROOT_COLOR = 'rgb(200,200,200)';
const UNCHANGED = 'rgb(215,215,215)';

/** The tree in depth-first order (children sorted by name), as parallel arrays indexed by node. */
export interface Flat {
  count: number;
  /** Index into the tree's frames; -1 for the root. */
  frame: Int32Array;
  depth: Int32Array;
  parent: Int32Array;
  /** Index just past the node's subtree: skipping to it skips every descendant. */
  end: Int32Array;
  /** Left edge and width, in value units (the root spans [0, value[0]]). */
  start: Float64Array;
  value: Float64Array;
  /** Diff only: the new and the (scaled) base totals. */
  next: Float64Array | undefined;
  base: Float64Array | undefined;
  maxDepth: number;
}

export function flatten(tree: FlameTree, type: SampleType, diff: boolean): Flat {
  let count = 0;
  for (const todo = [tree.root]; todo.length; ) {
    const n = todo.pop()!;
    count++;
    if (n.c) for (const c of n.c) todo.push(c);
  }
  const flat: Flat = {
    count,
    frame: new Int32Array(count),
    depth: new Int32Array(count),
    parent: new Int32Array(count),
    end: new Int32Array(count),
    start: new Float64Array(count),
    value: new Float64Array(count),
    next: diff ? new Float64Array(count) : undefined,
    base: diff ? new Float64Array(count) : undefined,
    maxDepth: 0,
  };
  const space = type === 'space';
  const nextOf = (n: FlameNode): number => (space ? n.b : n.o);
  const baseOf = (n: FlameNode): number => (space ? n.bb : n.bo) ?? 0;
  const valueOf = diff ? (n: FlameNode): number => nextOf(n) + baseOf(n) : nextOf;
  const names = tree.frames.map((f) => f.function);
  const byName = (a: FlameNode, b: FlameNode): number => {
    const x = a.f >= 0 ? names[a.f]! : '';
    const y = b.f >= 0 ? names[b.f]! : '';
    return x < y ? -1 : x > y ? 1 : a.f - b.f;
  };
  // Depth first, iteratively (a deep stack must not overflow the call
  // stack); a node's parent, depth and left edge travel with it.
  const nodes: FlameNode[] = [tree.root];
  const parents: number[] = [-1];
  const starts: number[] = [0];
  for (let i = 0; nodes.length; i++) {
    const n = nodes.pop()!;
    const parent = parents.pop()!;
    const start = starts.pop()!;
    const depth = parent < 0 ? 0 : flat.depth[parent]! + 1;
    flat.frame[i] = n.f;
    flat.depth[i] = depth;
    flat.parent[i] = parent;
    flat.start[i] = start;
    flat.value[i] = valueOf(n);
    if (flat.next && flat.base) {
      flat.next[i] = nextOf(n);
      flat.base[i] = baseOf(n);
    }
    if (depth > flat.maxDepth) flat.maxDepth = depth;
    const children = n.c;
    if (!children?.length) continue;
    children.sort(byName); // in place: the tree is this page's own copy
    let x = start;
    for (const c of children) x += valueOf(c);
    for (let k = children.length - 1; k >= 0; k--) {
      const c = children[k]!;
      x -= valueOf(c);
      nodes.push(c);
      parents.push(i);
      starts.push(x);
    }
  }
  // A subtree is its node and the nodes right after it: its size, summed from the leaves up.
  const size = new Int32Array(count).fill(1);
  for (let i = count - 1; i > 0; i--) size[flat.parent[i]!]! += size[i]!;
  for (let i = 0; i < count; i++) flat.end[i] = i + size[i]!;
  return flat;
}

/** The hash of d3-flame-graph's warm palette: the first characters of the name, weighted. */
function nameHash(name: string): number {
  let hash = 0;
  let max = 0;
  let weight = 1;
  for (let i = 0; i < Math.min(name.length, 7); i++) {
    hash += weight * (name.charCodeAt(i) % 10);
    max += weight * 9;
    weight *= 0.7;
  }
  return max > 0 ? hash / max : 0;
}

function warmColor(name: string): string {
  const v = nameHash(name);
  return `rgb(${200 + Math.round(55 * v)},${Math.round(230 * (1 - v))},${Math.round(55 * (1 - v))})`;
}

/** Red for growth, green for shrinkage, grey for no change; stronger the larger the change against the frame's size. */
export function diffColor(base: number, next: number): string {
  const delta = next - base;
  const size = Math.max(base, next);
  const r = size > 0 ? Math.min(1, Math.abs(delta) / size) : 0;
  if (Math.abs(delta) < 1 || r < 0.02) return UNCHANGED;
  const fade = Math.round(225 - 170 * r);
  return delta > 0 ? `rgb(240,${fade},${fade})` : `rgb(${fade},225,${fade})`;
}

/** A frame as last drawn, in CSS pixels of the canvas. */
export interface DrawnFrame {
  label: string;
  depth: number;
  x: number;
  y: number;
  width: number;
  height: number;
  color: string;
  highlighted: boolean;
  /** Diff: "grew", "shrank" or "same". */
  change?: 'grew' | 'shrank' | 'same';
}

/** What the last drawing shows; also written to the element's data-* attributes. */
export interface FlameState {
  /** The label of the frame zoomed to ("all" when not zoomed). */
  root: string;
  /** Frames drawn (wide enough to see), of `nodes` in the tree. */
  drawn: number;
  nodes: number;
  /** Nodes (in the whole tree) whose label contains the search term, and how many of them are drawn. */
  matches: number;
  highlighted: number;
  /** Diff: drawn frames coloured as grown / shrunk. */
  grew: number;
  shrank: number;
  /** Frames wide enough to draw but deeper than the rows drawn (1,500), left out. */
  cut: number;
  /** The frame under the pointer, if any. */
  hovered: string;
}

export class FlameView {
  private flat: Flat | undefined;
  private tree: FlameTree | undefined;
  private type: SampleType = 'space';
  private labels: string[] = [];
  private colors: string[] = [];
  private zoom = 0;
  private term = '';
  private matched: Uint8Array = new Uint8Array(0);
  private matches = 0;
  private hovered = -1;
  /** Per depth, the drawn nodes left to right, and each drawn node's pixel edges. */
  private rows: number[][] = [];
  private x0 = new Float32Array(0);
  private x1 = new Float32Array(0);
  private canvas: HTMLCanvasElement | undefined;
  private tooltip: HTMLElement | undefined;
  private resize: ResizeObserver | undefined;
  private width = 0;
  private charWidth = 7;
  private last: FlameState | undefined;

  constructor(
    private readonly el: HTMLElement,
    private readonly details: HTMLElement,
    private readonly diff = false,
  ) {}

  render(tree: FlameTree, type: SampleType): void {
    this.resize?.disconnect();
    this.tree = tree;
    this.type = type;
    this.flat = flatten(tree, type, this.diff);
    this.labels = tree.frames.map(frameLabel);
    this.colors = tree.frames.map((f) => warmColor(f.function));
    this.zoom = 0;
    this.hovered = -1;
    this.setTerm(this.term);
    const canvas = h('canvas', { class: 'flame-canvas', tabindex: 0, 'aria-label': 'flame graph: click a frame to zoom, Escape to reset' });
    const tooltip = h('div', { class: 'flame-tooltip', hidden: true });
    canvas.addEventListener('mousemove', (e) => this.onMove(e));
    canvas.addEventListener('mouseleave', () => this.hover(-1));
    canvas.addEventListener('click', (e) => this.onClick(e));
    canvas.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') this.resetZoom();
    });
    this.el.replaceChildren(canvas, tooltip);
    this.el.flame = this;
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.draw();
    // Redrawn at the new width when the page's width changes.
    this.resize = new ResizeObserver(() => {
      if (this.el.isConnected && this.el.clientWidth !== this.width) this.draw();
    });
    this.resize.observe(this.el);
  }

  /** Resolves after the browser painted the last drawing. */
  drawn(): Promise<void> {
    return new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve())));
  }

  /** Highlights frames whose "fn (file:line)" contains `term` (case-insensitive); returns how many nodes match. */
  search(term: string): number {
    this.setTerm(term);
    this.draw();
    return this.matches;
  }

  /** Zooms to the largest node labelled exactly `label` (and highlights it); false if there is none. */
  focus(label: string): boolean {
    const flat = this.flat;
    if (!flat) return false;
    this.setTerm(label);
    let best = -1;
    for (let i = 0; i < flat.count; i++) {
      const f = flat.frame[i]!;
      if (f >= 0 && this.labels[f] === label && (best < 0 || flat.value[i]! > flat.value[best]!)) best = i;
    }
    if (best < 0) {
      this.draw();
      return false;
    }
    this.zoomTo(best);
    return true;
  }

  resetZoom(): void {
    this.zoomTo(0);
  }

  /** The last drawing: what the test reads (the same is on the element's data-* attributes). */
  state(): FlameState {
    return this.last ?? { root: 'all', drawn: 0, nodes: 0, matches: 0, highlighted: 0, grew: 0, shrank: 0, cut: 0, hovered: '' };
  }

  /** Every frame of the last drawing, with its box and colour (for tests; a few thousand at most). */
  frames(): DrawnFrame[] {
    const flat = this.flat;
    if (!flat) return [];
    const out: DrawnFrame[] = [];
    for (const row of this.rows) {
      for (const i of row) {
        const x = this.x0[i]!;
        out.push({
          label: this.label(i),
          depth: flat.depth[i]!,
          x,
          y: flat.depth[i]! * CELL_HEIGHT,
          width: this.x1[i]! - x,
          height: CELL_HEIGHT - 1,
          color: this.color(i),
          highlighted: this.isHighlighted(i),
          ...(this.diff ? { change: this.change(i) } : {}),
        });
      }
    }
    return out;
  }

  private zoomTo(i: number): void {
    this.zoom = i;
    this.hover(-1, false);
    this.draw();
  }

  private setTerm(term: string): void {
    this.term = term;
    const tree = this.tree;
    const flat = this.flat;
    this.matched = new Uint8Array(tree?.frames.length ?? 0);
    this.matches = 0;
    if (!term || !tree || !flat) return;
    const needle = term.toLowerCase();
    this.labels.forEach((l, f) => (this.matched[f] = l.toLowerCase().includes(needle) ? 1 : 0));
    for (let i = 0; i < flat.count; i++) if (flat.frame[i]! >= 0 && this.matched[flat.frame[i]!]) this.matches++;
  }

  private label(i: number): string {
    const f = this.flat!.frame[i]!;
    return f >= 0 ? this.labels[f]! : 'all';
  }

  private isHighlighted(i: number): boolean {
    const f = this.flat!.frame[i]!;
    return f >= 0 && this.matched[f] === 1;
  }

  /** Diff: how the frame is coloured for its change (whether or not a search highlights it). */
  private change(i: number): 'grew' | 'shrank' | 'same' {
    const flat = this.flat!;
    if (flat.frame[i]! < 0 || !flat.next || !flat.base) return 'same';
    if (diffColor(flat.base[i]!, flat.next[i]!) === UNCHANGED) return 'same';
    return flat.next[i]! > flat.base[i]! ? 'grew' : 'shrank';
  }

  private color(i: number): string {
    const flat = this.flat!;
    const f = flat.frame[i]!;
    if (f < 0) return ROOT_COLOR;
    if (this.matched[f]) return HIGHLIGHT;
    if (flat.next && flat.base) return diffColor(flat.base[i]!, flat.next[i]!);
    return this.colors[f]!;
  }

  private draw(): void {
    const flat = this.flat;
    const canvas = this.canvas;
    if (!flat || !canvas) return;
    const width = Math.max(400, this.el.clientWidth);
    this.width = this.el.clientWidth;
    const z = this.zoom;
    const v0 = flat.start[z]!;
    const span = flat.value[z]! || 1;
    const k = width / span;
    // One pass in depth-first order: a node outside the zoomed range or
    // narrower than MIN_FRAME_PX is skipped with its whole subtree.
    const rows: number[][] = [];
    const x0 = new Float32Array(flat.count);
    const x1 = new Float32Array(flat.count);
    let maxDepth = 0;
    let cut = 0;
    for (let i = 0; i < flat.count; ) {
      const a = flat.start[i]!;
      const b = a + flat.value[i]!;
      const left = Math.max(a, v0);
      const right = Math.min(b, v0 + span);
      if ((right - left) * k < MIN_FRAME_PX) {
        i = flat.end[i]!;
        continue;
      }
      if (flat.depth[i]! >= MAX_ROWS) {
        cut++;
        i = flat.end[i]!;
        continue;
      }
      x0[i] = (left - v0) * k;
      x1[i] = (right - v0) * k;
      const d = flat.depth[i]!;
      (rows[d] ??= []).push(i);
      if (d > maxDepth) maxDepth = d;
      i++;
    }
    const height = (maxDepth + 1) * CELL_HEIGHT;
    const dpr = window.devicePixelRatio || 1;
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('no 2d canvas context');
    if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
      canvas.style.width = `${width}px`;
      canvas.style.height = `${height}px`;
      canvas.width = Math.round(width * dpr); // clears it, and resets the context's state
      canvas.height = Math.round(height * dpr);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.font = FONT;
      ctx.textBaseline = 'middle';
      this.charWidth = ctx.measureText('M').width || 7;
    } else {
      ctx.clearRect(0, 0, width, height);
    }
    const zoomDepth = flat.depth[z]!;
    let drawn = 0;
    let highlighted = 0;
    let grew = 0;
    let shrank = 0;
    let fill = '';
    for (const row of rows) {
      if (!row) continue;
      for (const i of row) {
        drawn++;
        const color = this.color(i);
        if (color === HIGHLIGHT) highlighted++;
        if (this.diff) {
          const c = this.change(i);
          if (c === 'grew') grew++;
          else if (c === 'shrank') shrank++;
        }
        const y = flat.depth[i]! * CELL_HEIGHT;
        const x = x0[i]!;
        const w = x1[i]! - x;
        // Above the zoomed frame: its ancestors, context rather than content.
        ctx.globalAlpha = flat.depth[i]! < zoomDepth ? 0.55 : 1;
        if (color !== fill) ctx.fillStyle = fill = color;
        ctx.fillRect(x, y, Math.max(w - (w > 2 ? 1 : 0), MIN_FRAME_PX), CELL_HEIGHT - 1);
        if (w >= MIN_LABEL_PX) {
          this.drawLabel(ctx, i, x, y, w, color === HIGHLIGHT);
          fill = ''; // the label set its own
        }
      }
    }
    ctx.globalAlpha = 1;
    if (this.hovered >= 0 && x1[this.hovered]! > x0[this.hovered]!) {
      ctx.strokeStyle = '#1d2330';
      ctx.lineWidth = 1.5;
      ctx.strokeRect(x0[this.hovered]! + 0.75, flat.depth[this.hovered]! * CELL_HEIGHT + 0.75, x1[this.hovered]! - x0[this.hovered]! - 2, CELL_HEIGHT - 2.5);
    }
    this.rows = rows;
    this.x0 = x0;
    this.x1 = x1;
    this.last = {
      root: this.label(z),
      drawn,
      nodes: flat.count,
      matches: this.matches,
      highlighted,
      grew,
      shrank,
      cut,
      hovered: this.hovered >= 0 ? this.label(this.hovered) : '',
    };
    const ds = this.el.dataset;
    ds.root = this.last.root;
    ds.framesDrawn = String(drawn);
    ds.matches = String(this.matches);
    ds.highlighted = String(highlighted);
    if (cut) ds.cut = String(cut);
    else delete ds.cut;
    if (this.diff) {
      ds.grew = String(grew);
      ds.shrank = String(shrank);
    }
  }

  /** The full label if it fits, else the function name cut to fit (with an ellipsis). */
  private drawLabel(ctx: CanvasRenderingContext2D, i: number, x: number, y: number, w: number, light: boolean): void {
    const fit = Math.floor((w - 6) / this.charWidth);
    if (fit < 2) return;
    const f = this.flat!.frame[i]!;
    const full = f >= 0 ? this.labels[f]! : `all (${formatValue(this.flat!.value[0]!, this.type)})`;
    const fn = f >= 0 ? this.tree!.frames[f]!.function || '(anonymous)' : full;
    const text = full.length <= fit ? full : fn.length <= fit ? fn : `${fn.slice(0, fit - 1)}…`;
    ctx.fillStyle = light ? '#ffffff' : '#1d2330';
    ctx.fillText(text, x + 3, y + CELL_HEIGHT / 2);
  }

  /** The drawn node at a point of the canvas (CSS px), or -1. */
  private nodeAt(px: number, py: number): number {
    const row = this.rows[Math.floor(py / CELL_HEIGHT)];
    if (!row || py % CELL_HEIGHT >= CELL_HEIGHT - 1) return -1;
    let lo = 0;
    let hi = row.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const i = row[mid]!;
      if (px < this.x0[i]!) hi = mid - 1;
      else if (px >= this.x1[i]!) lo = mid + 1;
      else return i;
    }
    return -1;
  }

  private point(e: MouseEvent): [number, number] {
    const r = this.canvas!.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  private onMove(e: MouseEvent): void {
    const [x, y] = this.point(e);
    this.hover(this.nodeAt(x, y));
    const tip = this.tooltip;
    if (tip && !tip.hidden) {
      // Beside the pointer, kept inside the graph's box.
      const box = this.el.getBoundingClientRect();
      const left = Math.min(e.clientX - box.left + 14, Math.max(0, box.width - tip.offsetWidth - 4));
      tip.style.left = `${left}px`;
      tip.style.top = `${e.clientY - box.top + 16}px`;
    }
  }

  private onClick(e: MouseEvent): void {
    const [x, y] = this.point(e);
    const i = this.nodeAt(x, y);
    // An ancestor above the zoomed frame (the root too) zooms out to it.
    if (i >= 0 && i !== this.zoom) this.zoomTo(i);
  }

  private hover(i: number, redraw = true): void {
    if (i === this.hovered) return;
    this.hovered = i;
    const text = i >= 0 ? this.describe(i) : '';
    this.details.textContent = text;
    if (this.tooltip) {
      this.tooltip.textContent = text;
      this.tooltip.hidden = i < 0;
    }
    if (this.canvas) this.canvas.style.cursor = i >= 0 ? 'pointer' : '';
    this.el.dataset.hovered = i >= 0 ? this.label(i) : '';
    if (redraw) this.draw(); // the outline moves
  }

  /** What the tooltip and the details line say about a node. */
  private describe(i: number): string {
    const flat = this.flat!;
    const label = this.label(i);
    if (flat.next && flat.base) {
      const delta = flat.next[i]! - flat.base[i]!;
      return `${label}: ${formatValue(flat.base[i]!, this.type)} → ${formatValue(flat.next[i]!, this.type)} (${delta >= 0 ? '+' : '-'}${formatValue(Math.abs(delta), this.type)})`;
    }
    const share = flat.value[0]! > 0 ? (100 * flat.value[i]!) / flat.value[0]! : 0;
    return `${label}: ${formatValue(flat.value[i]!, this.type)} (${share.toFixed(2)} % of all)`;
  }
}

declare global {
  interface HTMLElement {
    /** The flame graph drawn into this element, for tests and the benchmark to read (`state()`, `frames()`). */
    flame?: FlameView;
  }
}

/** The frames that changed most by their own (self) value, growth first. */
export function topChanges(tree: FlameTree, type: SampleType, n: number): Array<{ frame: FlameFrame; delta: number; base: number; next: number }> {
  const self = new Map<number, { delta: number; base: number; next: number }>();
  const walk = (node: FlameNode): void => {
    let next = type === 'space' ? node.b : node.o;
    let base = (type === 'space' ? node.bb : node.bo) ?? 0;
    for (const c of node.c ?? []) {
      next -= type === 'space' ? c.b : c.o;
      base -= (type === 'space' ? c.bb : c.bo) ?? 0;
      walk(c);
    }
    if (node.f < 0) return;
    const acc = self.get(node.f) ?? { delta: 0, base: 0, next: 0 };
    acc.base += base;
    acc.next += next;
    acc.delta += next - base;
    self.set(node.f, acc);
  };
  walk(tree.root);
  return [...self.entries()]
    .map(([f, v]) => ({ frame: tree.frames[f]!, ...v }))
    .filter((x) => Math.round(x.delta) !== 0)
    .sort((a, b) => b.delta - a.delta)
    .slice(0, n);
}
