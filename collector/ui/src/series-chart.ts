/**
 * Time series (uPlot): one line per instance, the points the rule judged
 * marked, the fitted trend dashed.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { bytes } from '../../src/leaks/report';

export interface Line {
  label: string;
  /** Unix ms and value; null values leave a gap. */
  points: Array<[number, number | null]>;
  color: string;
  style: 'line' | 'markers' | 'dashed';
}

const COLORS = ['#3366cc', '#dc3912', '#ff9900', '#109618', '#990099', '#0099c6', '#dd4477', '#66aa00'];

export function color(i: number): string {
  return COLORS[i % COLORS.length]!;
}

/** Draws the lines into `el` (replacing what was there); returns the chart. */
export function seriesChart(el: HTMLElement, lines: readonly Line[], opts: { height?: number } = {}): uPlot {
  el.replaceChildren();
  // uPlot wants one x array: align every line on the union of their times.
  const tables = lines.map((l) => [l.points.map((p) => p[0] / 1000), l.points.map((p) => p[1])] as uPlot.AlignedData);
  const data = uPlot.join(tables);
  const series: uPlot.Series[] = [
    {},
    ...lines.map((l) => ({
      label: l.label,
      stroke: l.color,
      width: l.style === 'markers' ? 0 : l.style === 'dashed' ? 1.5 : 1.5,
      dash: l.style === 'dashed' ? [6, 4] : undefined,
      spanGaps: l.style !== 'line',
      points: l.style === 'markers' ? { show: true, size: 8, fill: l.color, stroke: l.color } : { show: l.style === 'line', size: 4 },
      paths: l.style === 'markers' ? () => null : undefined,
      value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? '-' : bytes(v)),
    })),
  ];
  return new uPlot(
    {
      width: Math.max(320, el.clientWidth),
      height: opts.height ?? 220,
      series,
      axes: [{}, { values: (_u, ticks) => ticks.map((t) => bytes(t)), size: 80 }],
      scales: { x: { time: true } },
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
    },
    data,
    el,
  );
}
