/**
 * A flame graph (d3-flame-graph) of a FlameTree from the API, plain or as a
 * diff coloured by growth (red) and shrinkage (green).
 */
import flamegraph from 'd3-flame-graph';
import { select } from 'd3-selection';
import { bytes } from '../../src/leaks/report';
import type { FlameFrame, FlameNode, FlameTree } from '../../src/query/flamegraph';

export type SampleType = 'space' | 'objects';

interface Datum {
  name: string;
  label: string;
  value: number;
  /** Diff: new minus base. */
  delta?: number;
  base?: number;
  next?: number;
  children?: Datum[];
}

/** A d3 hierarchy node, as much of it as is used here. */
interface HNode {
  data: Datum;
  value: number;
  x0: number;
  x1: number;
}

/** "fn (file:line)": how the leak report writes a frame, and what focus= names. */
export function frameLabel(f: FlameFrame): string {
  return `${f.function || '(anonymous)'} (${f.file}:${f.line})`;
}

export function formatValue(v: number, type: SampleType): string {
  return type === 'space' ? bytes(v) : `${Math.round(v).toLocaleString('en')} objects`;
}

function toDatum(tree: FlameTree, n: FlameNode, type: SampleType, diff: boolean): Datum {
  const frame = n.f >= 0 ? tree.frames[n.f]! : undefined;
  const next = type === 'space' ? n.b : n.o;
  const base = (type === 'space' ? n.bb : n.bo) ?? 0;
  const d: Datum = {
    name: frame ? frame.function || '(anonymous)' : 'all',
    label: frame ? frameLabel(frame) : 'all',
    value: diff ? next + base : next,
  };
  if (diff) {
    d.delta = next - base;
    d.base = base;
    d.next = next;
  }
  if (n.c) d.children = n.c.map((c) => toDatum(tree, c, type, diff));
  return d;
}

/** Red for growth, green for shrinkage, grey for no change; stronger the larger the change against the frame's size. */
function diffColor(d: HNode): string {
  const delta = d.data.delta ?? 0;
  const size = Math.max(d.data.base ?? 0, d.data.next ?? 0);
  const r = size > 0 ? Math.min(1, Math.abs(delta) / size) : 0;
  const fade = Math.round(225 - 170 * r);
  if (Math.abs(delta) < 1 || r < 0.02) return 'rgb(215,215,215)';
  return delta > 0 ? `rgb(240,${fade},${fade})` : `rgb(${fade},225,${fade})`;
}

export class FlameView {
  private chart: ReturnType<typeof flamegraph> | undefined;
  private lastMatches: HNode[] = [];
  private type: SampleType = 'space';

  constructor(
    private readonly el: HTMLElement,
    private readonly details: HTMLElement,
    private readonly diff = false,
  ) {}

  render(tree: FlameTree, type: SampleType): void {
    this.type = type;
    this.chart?.destroy();
    this.el.replaceChildren();
    const total = (d: HNode): number => d.data.value;
    const chart = flamegraph()
      .width(Math.max(400, this.el.clientWidth))
      .cellHeight(18)
      .minFrameSize(1)
      // No animation for the first drawing (bars would be drawn a transition
      // late); zooms animate (set after the first drawing below).
      .transitionDuration(0)
      .sort(true)
      .setDetailsElement(this.details)
      .setSearchMatch((d: HNode, term: string) => !!term && d.data.label.toLowerCase().includes(term.toLowerCase()))
      .setSearchHandler((results: HNode[]) => {
        this.lastMatches = results;
      })
      .setLabelHandler((d: HNode) => {
        if (this.diff) {
          const base = formatValue(d.data.base ?? 0, this.type);
          const next = formatValue(d.data.next ?? 0, this.type);
          const delta = d.data.delta ?? 0;
          return `${d.data.label}: ${base} → ${next} (${delta >= 0 ? '+' : '-'}${formatValue(Math.abs(delta), this.type)})`;
        }
        return `${d.data.label}: ${formatValue(total(d), this.type)} (${(100 * (d.x1 - d.x0)).toFixed(2)} %)`;
      });
    if (this.diff) chart.setColorMapper((d: HNode) => (d.data.name === 'all' ? 'rgb(200,200,200)' : diffColor(d)));
    chart.onClick(() => this.hideNarrowLabels());
    this.chart = chart;
    select(this.el).datum(toDatum(tree, tree.root, type, this.diff)).call(chart);
    this.hideNarrowLabels();
    chart.transitionDuration(250);
  }

  /**
   * d3-flame-graph gives every frame an HTML label in a foreignObject and
   * hides the text of frames narrower than 35 px, but the browser still lays
   * out every foreignObject: with 5,000 stacks that was about half of a
   * drawing's CPU time. Hiding the foreignObjects of those frames, before
   * the browser lays them out and again after each zoom (d3 sets their final
   * width at once), keeps the labels that show and skips the rest.
   */
  private hideNarrowLabels(): void {
    for (const fo of Array.from(this.el.querySelectorAll<SVGForeignObjectElement>('g.frame > foreignObject'))) {
      fo.style.display = Number(fo.getAttribute('width')) < 35 ? 'none' : '';
    }
  }

  /** Resolves once every drawn frame has its width and label (d3 sets them on its next timer tick). */
  drawn(): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        const pending = this.el.querySelector('g.frame rect:not([width])') ?? this.el.querySelector('g.frame div:empty');
        if (pending) requestAnimationFrame(check);
        else requestAnimationFrame(() => resolve());
      };
      requestAnimationFrame(check);
    });
  }

  /** Highlights frames whose "fn (file:line)" contains `term`; returns how many. */
  search(term: string): number {
    if (!this.chart) return 0;
    if (!term) {
      this.lastMatches = [];
      this.chart.clear();
      return 0;
    }
    this.chart.search(term);
    return this.lastMatches.length;
  }

  /** Zooms to the largest frame labelled exactly `label`; false if there is none. */
  focus(label: string): boolean {
    if (!this.chart) return false;
    this.search(label);
    const exact = this.lastMatches.filter((d) => d.data.label === label);
    const best = exact.reduce<HNode | undefined>((a, d) => (!a || d.data.value > a.data.value ? d : a), undefined);
    if (!best) return false;
    this.chart.zoomTo(best);
    return true;
  }

  resetZoom(): void {
    this.chart?.resetZoom(); // zooms to the root, which calls onClick
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
