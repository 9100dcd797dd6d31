/** The controls the flame graph and diff pages share: a form over the hash's parameters, and the download box. */
import { absolute, shellQuote } from './api';
import { h } from './dom';

/** A labelled text input bound to a hash parameter. */
export function field(params: URLSearchParams, name: string, label: string, fallback: string, size = 12): HTMLLabelElement {
  return h('label', {}, `${label} `, h('input', { name, value: params.get(name) ?? fallback, size }));
}

export function typeSelect(params: URLSearchParams): HTMLLabelElement {
  const type = params.get('type') ?? 'space';
  return h(
    'label',
    {},
    'values ',
    h('select', { name: 'type' }, h('option', { value: 'space', selected: type === 'space' }, 'space (bytes)'), h('option', { value: 'objects', selected: type === 'objects' }, 'objects')),
  );
}

/** A form whose submit rewrites the hash (route + its inputs), which re-renders the page. */
export function hashForm(route: string, keep: Record<string, string>, ...children: Node[]): HTMLFormElement {
  const form = h('form', { class: 'controls' }, ...children, h('button', { type: 'submit' }, 'show'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams(keep);
    for (const el of Array.from(form.elements)) {
      const input = el as HTMLInputElement;
      if (!input.name) continue;
      const v = input.type === 'checkbox' ? (input.checked ? 'true' : '') : input.value.trim();
      if (v) q.set(input.name, v);
    }
    location.hash = `#/${route}?${q}`;
  });
  return form;
}

/** The pprof download of a view and the go tool pprof commands that open it. */
export function downloads(items: Array<{ label: string; path: string }>, commands: string[]): HTMLElement {
  return h(
    'div',
    { class: 'downloads' },
    ...items.map((i) => h('a', { href: i.path, download: '', class: 'button' }, i.label)),
    h('pre', { class: 'command' }, commands.join('\n')),
  );
}

export function pprofCommand(path: string): string {
  return `go tool pprof -http=: ${shellQuote(absolute(path))}`;
}
