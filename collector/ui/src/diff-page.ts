/**
 * Two ranges of one service as one flame graph coloured by growth (red) and
 * shrinkage (green), with the frames that changed most.
 */
import { absolute, getJson, labelParams, query, shellQuote, type DiffData } from './api';
import { downloads, field, hashForm, pprofCommand, typeSelect } from './controls';
import { h } from './dom';
import { FlameView, formatValue, frameLabel, topChanges, type SampleType } from './flame';
import { resolve } from './time';

export async function diffPage(params: URLSearchParams): Promise<(root: HTMLElement) => void> {
  const service = params.get('service');
  if (!service) throw new Error('no service given');
  const type = (params.get('type') === 'objects' ? 'objects' : 'space') as SampleType;
  const now = Date.now();
  const base = resolve({ from: params.get('base_from') ?? 'now-2h', to: params.get('base_to') ?? 'now-1h' }, now);
  const next = resolve({ from: params.get('from') ?? 'now-1h', to: params.get('to') ?? 'now' }, now);
  const normalize = params.get('normalize') === 'true';
  const labels = labelParams(params.get('labels') ?? '');
  const diffQuery = query({ service, base_from: base.fromMs, base_to: base.toMs, from: next.fromMs, to: next.toMs, normalize: normalize || undefined, ...labels });
  const data = await getJson<DiffData>(`/api/v1/diff?${diffQuery}&format=json`);

  const chartEl = h('div', { class: 'flame', id: 'flame' });
  const details = h('div', { class: 'details' });
  const view = new FlameView(chartEl, details, true);
  const changes = topChanges(data, type, Infinity);
  const row = (c: (typeof changes)[number]): HTMLElement =>
    h(
      'tr',
      { 'data-function': c.frame.function },
      h('td', {}, frameLabel(c.frame)),
      h('td', { class: 'num' }, formatValue(c.base, type)),
      h('td', { class: 'num' }, formatValue(c.next, type)),
      h('td', { class: c.delta > 0 ? 'num bad' : 'num ok' }, `${c.delta > 0 ? '+' : '-'}${formatValue(Math.abs(c.delta), type)}`),
    );
  const table = (id: string, rows: typeof changes): HTMLElement =>
    h('table', { class: 'grid', id }, h('thead', {}, h('tr', {}, ...['frame (self)', 'base', 'new', 'change'].map((c) => h('th', {}, c)))), h('tbody', {}, ...rows.map(row)));
  const baseProfile = `/api/v1/profile?${query({ service, from: base.fromMs, to: base.toMs, ...labels })}`;
  const nextProfile = `/api/v1/profile?${query({ service, from: next.fromMs, to: next.toMs, ...labels })}`;
  const diffPath = `/api/v1/diff?${diffQuery}`;
  return (root) => {
    root.replaceChildren(
      h('h1', {}, h('a', { href: `#/service?${query({ service })}` }, service), ': diff'),
      hashForm(
        'diff',
        { service },
        field(params, 'base_from', 'base from', 'now-2h'),
        field(params, 'base_to', 'base to', 'now-1h'),
        field(params, 'from', 'new from', 'now-1h'),
        field(params, 'to', 'new to', 'now'),
        field(params, 'labels', 'labels', '', 16),
        typeSelect(params),
        h('label', {}, h('input', { type: 'checkbox', name: 'normalize', checked: normalize }), ' normalise (scale the base to the new total)'),
      ),
      h(
        'p',
        { class: 'muted', id: 'diff-summary' },
        `base: ${data.base.profiles} profiles of ${data.base.instances} instances, ${formatValue(type === 'space' ? data.root.bb ?? 0 : data.root.bo ?? 0, type)}; `,
        `new: ${data.profiles} profiles of ${data.instances} instances, ${formatValue(type === 'space' ? data.root.b : data.root.o, type)}`,
        normalize ? `; base scaled by ${data.scale[type === 'space' ? 1 : 0].toPrecision(4)}` : '',
        '. Width: base + new; red grew, green shrank.',
      ),
      details,
      chartEl,
      h('h2', {}, 'Grew most'),
      table('growth', changes.filter((c) => c.delta > 0).slice(0, 15)),
      h('h2', {}, 'Shrank most'),
      table('shrinkage', changes.filter((c) => c.delta < 0).reverse().slice(0, 15)),
      downloads(
        [
          { label: 'download diff pprof', path: diffPath },
          { label: 'base pprof', path: baseProfile },
          { label: 'new pprof', path: nextProfile },
        ],
        [pprofCommand(diffPath), `go tool pprof -http=:${normalize ? " -normalize" : ""} -diff_base ${shellQuote(absolute(baseProfile))} ${shellQuote(absolute(nextProfile))}`],
      ),
    );
    if (data.profiles === 0 && data.base.profiles === 0) {
      chartEl.append(h('p', { class: 'muted' }, 'No profiles in either range.'));
      return;
    }
    view.render(data, type);
    chartEl.dataset.ready = 'true';
  };
}
