/**
 * heapwatch's web UI: a single page served by the collector, routed by the
 * address's hash (#/, #/service?service=S, #/flame?..., #/diff?...), so every
 * view is a link. It talks only to the collector that served it.
 */
import { diffPage } from './diff-page';
import { errorBox } from './dom';
import { flamePage } from './flame-page';
import { servicePage } from './service-page';
import { servicesPage } from './services-page';
import './style.css';

/** Each page fetches what it shows, then draws it into the live document in one go (charts need their width). */
const PAGES: Record<string, (params: URLSearchParams) => Promise<(root: HTMLElement) => void>> = {
  '': servicesPage,
  service: servicePage,
  flame: flamePage,
  diff: diffPage,
};

let generation = 0;

async function route(): Promise<void> {
  const root = document.getElementById('app')!;
  const hash = location.hash.replace(/^#\/?/, '');
  const [name = '', search = ''] = hash.split('?', 2);
  const page = PAGES[name];
  const mine = ++generation;
  root.dataset.loading = 'true';
  let render: (root: HTMLElement) => void;
  try {
    if (!page) throw new Error(`no such page: #/${name}`);
    render = await page(new URLSearchParams(search));
  } catch (err) {
    console.warn(err);
    render = (r) => r.replaceChildren(errorBox(err));
  }
  if (mine !== generation) return; // a newer navigation won
  try {
    render(root);
  } catch (err) {
    console.warn(err);
    root.replaceChildren(errorBox(err));
  }
  delete root.dataset.loading;
  root.dispatchEvent(new Event('rendered'));
}

window.addEventListener('hashchange', () => void route());
void route();
