/** Every service, trouble first: flagged leaks, then process findings, then the most recently seen. */
import { getJson, query, type ServiceRow } from './api';
import { ago, h } from './dom';

export function troubleFirst(a: ServiceRow, b: ServiceRow): number {
  return (
    (b.flaggedLeaks ?? 0) - (a.flaggedLeaks ?? 0) ||
    (b.flaggedProcess ?? 0) - (a.flaggedProcess ?? 0) ||
    Date.parse(b.lastSeen) - Date.parse(a.lastSeen) ||
    a.service.localeCompare(b.service)
  );
}

function count(n: number | null, what: string): HTMLElement {
  if (n === null) return h('td', { class: 'num muted', title: 'not evaluated yet' }, '-');
  return h('td', { class: n > 0 ? 'num bad' : 'num ok', 'data-count': what }, n);
}

export async function servicesPage(): Promise<(root: HTMLElement) => void> {
  const rows = (await getJson<ServiceRow[]>('/api/v1/services')).sort(troubleFirst);
  return (root) => {
    root.replaceChildren(
      h('h1', {}, 'Services'),
      rows.length === 0
        ? h('p', { class: 'muted' }, 'No profiles yet. Start a worker with the agent: HEAPWATCH_SERVICE=my-worker node --require @heapwatch/agent/register worker.js')
        : h(
            'table',
            { class: 'grid', id: 'services' },
            h('thead', {}, h('tr', {}, ...['service', 'instances', 'profiles', 'last seen', 'leaks flagged', 'process findings'].map((c) => h('th', {}, c)))),
            h(
              'tbody',
              {},
              ...rows.map((s) =>
                h(
                  'tr',
                  { 'data-service': s.service },
                  h('td', {}, h('a', { href: `#/service?${query({ service: s.service })}` }, s.service)),
                  h('td', { class: 'num' }, s.instances),
                  h('td', { class: 'num' }, s.profiles.toLocaleString('en')),
                  h('td', { title: s.lastSeen }, ago(s.lastSeen)),
                  count(s.flaggedLeaks, 'leaks'),
                  count(s.flaggedProcess, 'process'),
                ),
              ),
            ),
          ),
    );
  };
}
