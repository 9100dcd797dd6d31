/**
 * One service: its leak report as the API gives it, and for each flagged
 * site the evidence (the series per instance, the judged post-GC points, the
 * trend); process findings with each instance's heap floor.
 */
import { bytes, count, duration, FOLLOWS_TEXT, holderPlace, jobTypeLabel, ms, perJob, retainsSentence } from '../../src/leaks/report';
import { getJson, query, type LeakEvidence, type LeakReport } from './api';
import { h } from './dom';
import { frameLabel } from './flame';
import { color, seriesChart, type Line } from './series-chart';

type SiteEvidence = LeakEvidence['sites'][number];
type HeapEvidence = LeakEvidence['heap'][number];
type Trend = SiteEvidence['instances'][number]['trend'];

function trendLine(label: string, trend: Trend, c: string): Line[] {
  if (!trend) return [];
  return [{ label, color: c, style: 'dashed', points: [[trend.fromMs, trend.fromBytes], [trend.toMs, trend.toBytes]] }];
}

function siteLines(site: SiteEvidence): Line[] {
  return site.instances.flatMap((inst, i) => [
    { label: inst.instance, color: color(i), style: 'line' as const, points: inst.points.map((p) => [p.t, p.bytes] as [number, number]) },
    { label: `${inst.instance} judged`, color: color(i), style: 'markers' as const, points: inst.points.filter((p) => p.judged).map((p) => [p.t, p.bytes] as [number, number]) },
    ...trendLine(`${inst.instance} trend`, inst.trend, color(i)),
  ]);
}

function heapLines(heap: HeapEvidence): Line[] {
  return [
    { label: 'heap used', color: '#999999', style: 'line', points: heap.points.map((p) => [p.t, p.heapUsedBytes]) },
    { label: 'floor (judged)', color: color(0), style: 'line', points: heap.points.map((p) => [p.t, p.floorBytes]) },
    { label: 'post-GC', color: color(1), style: 'markers', points: heap.points.filter((p) => p.postGc).map((p) => [p.t, p.heapUsedBytes]) },
    ...trendLine('floor trend', heap.trend, color(0)),
  ];
}

/** Memory per completed job (report.jobs): which job type retains memory, and how much per job. */
/** The newest holder capture: who keeps the off-heap memory, and the collections holding the most heap (docs/detector.md#holders). */
function holdersSection(c: LeakReport['holders']): HTMLElement[] {
  if (!c) return [];
  const head = h('h2', {}, 'Holders');
  const when = `heap snapshot of ${c.instance} at ${c.capturedAt}`;
  if (c.skipped) return [head, h('p', { id: 'holders' }, `${when}: not taken: ${c.skipped}`)];
  return [
    head,
    h('p', {}, `${when}, ${c.pauseMs} ms pause, ${c.backingStores} backing stores of ${bytes(c.offHeapBytes)}`),
    h(
      'table',
      { class: 'grid', id: 'holders' },
      h('thead', {}, h('tr', {}, ...['off-heap', 'heap', 'objects', 'path (owner first)'].map((x) => h('th', {}, x)))),
      h(
        'tbody',
        {},
        ...c.holders.map((x) =>
          h(
            'tr',
            { 'data-kind': x.offHeapBytes > 0 ? 'off-heap' : 'heap' },
            h('td', { class: 'num' }, x.offHeapBytes > 0 ? bytes(x.offHeapBytes) : '-'),
            h('td', { class: 'num' }, bytes(x.heapBytes)),
            h('td', { class: 'num' }, `${count(x.objects)} ${x.offHeapBytes > 0 ? 'buffers' : 'objects'}`),
            h('td', {}, x.path),
          ),
        ),
      ),
    ),
  ];
}

function jobsSection(jobs: LeakReport['jobs']): HTMLElement[] {
  if (!jobs) {
    return [h('p', { class: 'muted', id: 'no-jobs' }, 'No job counters: attach a queue integration of the agent to see memory per job (docs/integrations.md).')];
  }
  const retaining = jobs.types.filter((t) => t.verdict === 'retains');
  return [
    h(
      'p',
      { class: retaining.length ? 'bad' : 'muted', id: 'jobs-follows', 'data-follows': jobs.follows },
      `${FOLLOWS_TEXT[jobs.follows]}: heap ${bytes(jobs.heapGrowthBytesPerHour)}/h, judged on ${jobs.intervals} intervals between post-GC profiles of ${jobs.instances} instance(s).`,
    ),
    ...retaining.map((t) => h('p', { class: 'bad retains' }, retainsSentence(t))),
    h(
      'table',
      { class: 'grid', id: 'jobs' },
      h('thead', {}, h('tr', {}, ...['job type', 'jobs/h', 'failed/h', 'retained per job', 'retained/day', 'verdict', 'run', 'wait', 'depth', 'sites it grows'].map((c) => h('th', {}, c)))),
      h(
        'tbody',
        {},
        ...jobs.types.map((t) =>
          h(
            'tr',
            { 'data-queue': t.queue, 'data-name': t.name, 'data-verdict': t.verdict },
            h('td', {}, jobTypeLabel(t)),
            h('td', { class: 'num' }, count(t.completedPerHour)),
            h('td', { class: 'num' }, count(t.failedPerHour)),
            h('td', { class: 'num' }, perJob(t)),
            h('td', { class: 'num' }, t.verdict === 'retains' ? bytes((t.retainedBytesPerHour ?? 0) * 24) : '-'),
            h('td', { class: t.verdict === 'retains' ? 'bad' : t.verdict === 'flat' ? 'ok' : 'muted' }, t.verdict),
            h('td', { class: 'num' }, ms(t.avgRunMs)),
            h('td', { class: 'num' }, ms(t.avgWaitMs)),
            h('td', { class: 'num' }, t.queueDepth === null ? '-' : count(t.queueDepth)),
            h('td', {}, t.sites.map((x) => `${x.function || '(anonymous)'} ${bytes(x.retainedBytesPerJob)}/job`).join(', ') || '-'),
          ),
        ),
      ),
    ),
    ...(jobs.retainedBytesPerJob !== null ? [h('p', { class: 'muted' }, `All jobs together: ${bytes(jobs.retainedBytesPerJob)} retained per job.`)] : []),
    ...(jobs.droppedJobs > 0 ? [h('p', { class: 'muted' }, `${count(jobs.droppedJobs)} jobs were not counted by type: the agent's job type cap (maxJobTypes) was reached.`)] : []),
  ];
}

function fact(name: string, value: string): HTMLElement[] {
  return [h('dt', {}, name), h('dd', {}, value)];
}

/** Draws a chart once its box has a width (after it is in the document). */
function chartBox(lines: Line[], charts: Array<() => void>): HTMLElement {
  const el = h('div', { class: 'chart' });
  charts.push(() => seriesChart(el, lines));
  return el;
}

export async function servicePage(params: URLSearchParams): Promise<(root: HTMLElement) => void> {
  const service = params.get('service');
  if (!service) throw new Error('no service given');
  const q = query({ service });
  const [report, evidence] = await Promise.all([getJson<LeakReport>(`/api/v1/leaks?${q}`), getJson<LeakEvidence>(`/api/v1/leaks/evidence?${q}`)]);
  const charts: Array<() => void> = [];
  const siteOf = (l: LeakReport['leaks'][number]): SiteEvidence | undefined =>
    evidence.sites.find((s) => s.function === l.function && s.file === l.file && s.line === l.line);

  const leakSections = report.leaks.map((l) => {
    const site = siteOf(l);
    const times = site?.instances.flatMap((i) => i.points.map((p) => p.t)) ?? [];
    const label = frameLabel(l);
    const focus = `#/flame?${query({
      service,
      from: times.length ? Math.min(...times) : 'now-1h',
      to: times.length ? Math.max(...times) : 'now',
      focus: label,
    })}`;
    return h(
      'section',
      { class: 'leak', 'data-function': l.function },
      h('h3', {}, h('a', { href: focus, class: 'site', title: 'open the flame graph focused on this site' }, label)),
      h(
        'dl',
        { class: 'facts' },
        ...fact('growth', `${bytes(l.growthBytesPerHour)}/h (${bytes(l.growthBytesPerInterval)} a profile interval)`),
        ...fact('retained now', bytes(l.retainedBytes)),
        ...fact('instances rising', String(l.instances)),
        ...fact('rising over', `${l.intervals} intervals`),
        ...fact('confidence', l.confidence.toFixed(3)),
        ...fact('first flagged', l.firstFlaggedAt),
      ),
      site
        ? h(
            'div',
            {},
            chartBox(siteLines(site), charts),
            h(
              'ul',
              { class: 'series' },
              ...site.instances.map((i) =>
                h(
                  'li',
                  { 'data-instance': i.instance, 'data-points': i.points.length, 'data-judged': i.points.filter((p) => p.judged).length },
                  `${i.instance}: ${i.points.length} profiles, ${i.points.filter((p) => p.judged).length} judged (${i.judgedOn === 'post-gc' ? 'post-GC points' : 'the whole series'}), `,
                  `trend ${i.trend ? `${bytes(i.trend.bytesPerHour)}/h` : '-'}, ${i.rising ? 'rising now' : 'not rising now'}`,
                ),
              ),
            ),
          )
        : h('p', { class: 'muted' }, 'No series for this site in the current window.'),
      h('details', { open: true }, h('summary', {}, 'stack'), h('ol', { class: 'stack' }, ...l.stack.map((f) => h('li', {}, f)))),
      ...(l.heldBy
        ? [
            h(
              'p',
              { class: 'held-by', 'data-match': l.heldBy.match },
              `held by ${holderPlace(l.heldBy)}, ${bytes(l.heldBy.heapBytes)} of heap below it (${l.heldBy.match === 'stack' ? 'its code is on the stack' : 'no frame of the stack names a holder: the one nearest in size to the retained bytes'}): ${l.heldBy.path}`,
            ),
          ]
        : []),
    );
  });

  const heapSections = evidence.heap.map((heap) => {
    const finding = report.process.find((p) => p.kind === 'heap' && p.instance === heap.instance);
    return h(
      'section',
      { class: 'heap', 'data-instance': heap.instance },
      h('h3', {}, `heap of ${heap.instance}`),
      h(
        'p',
        { class: finding ? 'bad' : 'muted' },
        finding
          ? `flagged: floor rising ${bytes(finding.growthBytesPerHour)}/h; heap limit ${bytes(heap.heapSizeLimitBytes)} reached in ${duration(finding.timeToLimitSeconds)} at this trend`
          : `not flagged; heap limit ${bytes(heap.heapSizeLimitBytes)}; floor trend ${heap.trend ? `${bytes(heap.trend.bytesPerHour)}/h` : '-'}`,
      ),
      chartBox(heapLines(heap), charts),
    );
  });

  return (root) => {
    root.replaceChildren(
      h('h1', {}, service),
      h(
        'p',
        { class: 'links' },
        h('a', { href: `#/flame?${q}` }, 'flame graph, last hour'),
        ' · ',
        h('a', { href: `#/diff?${q}` }, 'diff: previous hour against the last hour'),
      ),
      h('h2', {}, `Leaks (report of ${report.evaluatedAt})`),
      ...(leakSections.length ? leakSections : [h('p', { class: 'ok', id: 'no-leaks' }, 'No allocation site is flagged.')]),
      h('h2', {}, 'Memory per job'),
      ...jobsSection(report.jobs),
      h('h2', {}, 'Process'),
      report.process.length
        ? h(
            'table',
            { class: 'grid', id: 'process' },
            h('thead', {}, h('tr', {}, ...['kind', 'instance', 'growth/h', 'time to heap limit', 'held by (a holder, not an allocation site)'].map((c) => h('th', {}, c)))),
            h(
              'tbody',
              {},
              ...report.process.map((p) =>
                h(
                  'tr',
                  {},
                  h('td', {}, p.kind),
                  h('td', {}, p.instance),
                  h('td', { class: 'num' }, bytes(p.growthBytesPerHour)),
                  h('td', { class: 'num' }, duration(p.timeToLimitSeconds)),
                  h('td', {}, p.site ? holderPlace(p.site) : '-'),
                ),
              ),
            ),
          )
        : h('p', { class: 'ok' }, 'No process finding is flagged.'),
      ...holdersSection(report.holders ?? null),
      ...heapSections,
      h('details', {}, h('summary', {}, 'the report as GET /api/v1/leaks gives it'), h('pre', { id: 'report-json' }, JSON.stringify(report, null, 2))),
    );
    for (const draw of charts) draw();
  };
}
