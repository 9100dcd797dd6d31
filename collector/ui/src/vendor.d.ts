// The parts of d3-flame-graph and d3-selection this UI calls (neither ships types).
declare module 'd3-flame-graph' {
  interface FlameGraph {
    (selection: unknown): void;
    width(w: number): FlameGraph;
    cellHeight(h: number): FlameGraph;
    minFrameSize(px: number): FlameGraph;
    transitionDuration(ms: number): FlameGraph;
    sort(s: boolean): FlameGraph;
    setDetailsElement(el: HTMLElement): FlameGraph;
    setSearchMatch(f: (d: any, term: string) => boolean): FlameGraph;
    setSearchHandler(f: (results: any[], sum: number, total: number) => void): FlameGraph;
    setLabelHandler(f: (d: any) => string): FlameGraph;
    setColorMapper(f: (d: any, original: string) => string): FlameGraph;
    onClick(f: (d: any) => void): FlameGraph;
    search(term: string): void;
    clear(): void;
    zoomTo(d: unknown): void;
    resetZoom(): void;
    destroy(): void;
  }
  export default function flamegraph(): FlameGraph;
}
declare module 'd3-selection' {
  interface Selection {
    datum(d: unknown): Selection;
    call(f: (s: Selection) => void): Selection;
  }
  export function select(el: Element): Selection;
}
declare module '*.css';
