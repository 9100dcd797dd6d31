/** The merged profile of a time range and label filter as a flame graph, searchable, with zoom and focus. */
import { absolute, getJson, labelParams, query, shellQuote, type FlameGraphData } from './api';
import { downloads, field, hashForm, pprofCommand, typeSelect } from './controls';
import { h } from './dom';
import { FlameView, formatValue, type SampleType } from './flame';
import { resolve } from './time';

export async function flamePage(params: URLSearchParams): Promise<(root: HTMLElement) => void> {
  const service = params.get('service');
  if (!service) throw new Error('no service given');
  const type = (params.get('type') === 'objects' ? 'objects' : 'space') as SampleType;
  const { fromMs, toMs } = resolve({ from: params.get('from') ?? 'now-1h', to: params.get('to') ?? 'now' }, Date.now());
  const apiQuery = query({ service, from: fromMs, to: toMs, ...labelParams(params.get('labels') ?? '') });
  const data = await getJson<FlameGraphData>(`/api/v1/flamegraph?${apiQuery}`);

  const chartEl = h('div', { class: 'flame', id: 'flame' });
  const details = h('div', { class: 'details' });
  const search = h('input', { type: 'search', placeholder: 'search frames', id: 'search', value: params.get('focus') ?? '' });
  const matches = h('span', { class: 'muted' });
  const view = new FlameView(chartEl, details);
  search.addEventListener('input', () => {
    const n = view.search(search.value);
    matches.textContent = search.value ? `${n} frames match` : '';
  });
  const profilePath = `/api/v1/profile?${apiQuery}`;
  return (root) => {
    root.replaceChildren(
      h('h1', {}, h('a', { href: `#/service?${query({ service })}` }, service), ': flame graph'),
      hashForm(
        'flame',
        { service },
        field(params, 'from', 'from', 'now-1h'),
        field(params, 'to', 'to', 'now'),
        field(params, 'labels', 'labels', '', 20),
        typeSelect(params),
      ),
      h(
        'p',
        { class: 'muted', id: 'flame-summary' },
        `${new Date(fromMs).toISOString()} to ${new Date(toMs).toISOString()}: ${data.profiles} profiles of ${data.instances} instances, ${data.stacks} stacks, `,
        `${formatValue(type === 'space' ? data.root.b : data.root.o, type)} in use on average (summed over instances)`,
      ),
      h('div', { class: 'toolbar' }, search, h('button', { type: 'button', id: 'reset-zoom', onclick: () => view.resetZoom() }, 'reset zoom'), matches),
      details,
      chartEl,
      downloads(
        [{ label: 'download pprof', path: profilePath }],
        [pprofCommand(profilePath), `curl -o heap.pb.gz ${shellQuote(absolute(profilePath))} && go tool pprof -top -sample_index=${type} heap.pb.gz`],
      ),
    );
    if (data.profiles === 0) {
      chartEl.append(h('p', { class: 'muted' }, 'No profiles in this range.'));
      return;
    }
    // Timings for bench/ui.mjs: flattening and drawing on the canvas, and until the browser painted it.
    const t0 = performance.now();
    view.render(data, type);
    chartEl.dataset.renderMs = (performance.now() - t0).toFixed(1);
    void view.drawn().then(() => (chartEl.dataset.paintMs = (performance.now() - t0).toFixed(1)));
    const focus = params.get('focus');
    if (focus) chartEl.dataset.focused = String(view.focus(focus));
    chartEl.dataset.ready = 'true';
  };
}
