/**
 * Which holder of the newest holder capture keeps a finding's memory
 * (docs/detector.md#holders). A capture lists two kinds of holder:
 * off-heap holders (off_heap_bytes > 0: who keeps the largest Buffer and
 * ArrayBuffer contents) and on-heap holders (off_heap_bytes 0: the Arrays,
 * Maps and Sets that hold the most heap below them). A heap snapshot does
 * not say which code allocated an object, so a holder is tied to a finding
 * by name:
 * - a site finding is held by the on-heap holder whose declaring function
 *   or kept-by closures name a function on the site's stack (`match:
 *   'stack'`); when none does and the site is library code (no
 *   application frame on its stack: data that arrived after an await),
 *   by the largest on-heap holder (`match: 'largest'`), the best lead there
 *   is, and said to be only that;
 * - an `external` process finding by the largest off-heap holder, a `heap`
 *   process finding by the largest on-heap holder (`match: 'largest'`).
 */
import type { HolderEntry, HolderSite, LeakSite } from './report';

/** The closures a holder's path says keep its scope ("..., kept by a, b, ..."). */
function keptBy(path: string): string[] {
  const m = /kept by ([^←]*)/.exec(path);
  if (!m) return [];
  return m[1]!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '' && s !== '...' && s !== '(anonymous)');
}

/** The function of a stack frame "fn (file:line)". */
function frameFunction(frame: string): string {
  const at = frame.lastIndexOf(' (');
  return at < 0 ? frame : frame.slice(0, at);
}

function siteOf(h: HolderEntry, match: HolderSite['match']): HolderSite {
  return {
    siteKind: 'holder',
    function: h.function,
    file: h.file,
    line: h.line,
    owner: h.owner,
    path: h.path,
    offHeapBytes: h.offHeapBytes,
    heapBytes: h.heapBytes,
    match,
  };
}

const isHeapHolder = (h: HolderEntry): boolean => h.offHeapBytes === 0 && h.heapBytes > 0;

/** The on-heap holder of a flagged site, or null (see the file's comment). */
export function siteHeldBy(site: Pick<LeakSite, 'stack' | 'siteKind'>, holders: readonly HolderEntry[]): HolderSite | null {
  const heap = holders.filter(isHeapHolder).sort((a, b) => b.heapBytes - a.heapBytes);
  const onStack = new Set(site.stack.map(frameFunction).filter((f) => f !== '' && f !== '(anonymous)'));
  const named = heap.find((h) => onStack.has(h.function) || keptBy(h.path).some((f) => onStack.has(f)));
  if (named) return siteOf(named, 'stack');
  if (site.siteKind === 'library' && heap[0]) return siteOf(heap[0], 'largest');
  return null;
}

/** The holder of a process finding: the largest of its kind, or null. */
export function processHeldBy(kind: 'heap' | 'external', holders: readonly HolderEntry[]): HolderSite | null {
  const top =
    kind === 'external'
      ? holders.filter((h) => h.offHeapBytes > 0).sort((a, b) => b.offHeapBytes - a.offHeapBytes)[0]
      : holders.filter(isHeapHolder).sort((a, b) => b.heapBytes - a.heapBytes)[0];
  return top ? siteOf(top, 'largest') : null;
}
