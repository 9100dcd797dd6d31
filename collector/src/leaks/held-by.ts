/**
 * Which holder of the newest holder capture keeps a finding's memory
 * (docs/detector.md#holders). A capture lists two kinds of holder:
 * off-heap holders (off_heap_bytes > 0: who keeps the largest Buffer and
 * ArrayBuffer contents) and on-heap holders (off_heap_bytes 0: the Arrays,
 * Maps and Sets that hold the most heap below them). A heap snapshot does
 * not say which code allocated an object, so a holder is tied to a finding
 * by name:
 * - a site finding is held by an on-heap holder whose declaring function,
 *   or the functions that use it (else keep its scope), name a function on
 *   the site's stack (`match: 'stack'`); when none does and the site is
 *   library code (no
 *   application frame on its stack: data that arrived after an await),
 *   by any on-heap holder (`match: 'size'`), the best lead there is, and
 *   said to be only that. Among several, the one whose heap is nearest the
 *   site's retained bytes (by ratio): a module's top-level variables are
 *   all kept by every function of the module, so a large table loaded at
 *   start is "named" by a leaking function beside it, and it is the size
 *   that tells them apart;
 * - an `external` process finding by the largest off-heap holder, a `heap`
 *   process finding by the largest on-heap holder (`match: 'largest'`).
 */
import type { HolderEntry, HolderSite, LeakSite } from './report';

/**
 * The functions a holder's path names: those whose source uses the
 * holder's variable ("..., used by a, b"), else the closures that keep
 * its scope ("..., kept by a, b, ...").
 */
function keptBy(path: string): string[] {
  const m = /(?:used|kept) by ([^←]*)/.exec(path);
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
export function siteHeldBy(site: Pick<LeakSite, 'stack' | 'siteKind' | 'retainedBytes'>, holders: readonly HolderEntry[]): HolderSite | null {
  const heap = holders.filter(isHeapHolder);
  const onStack = new Set(site.stack.map(frameFunction).filter((f) => f !== '' && f !== '(anonymous)'));
  const named = heap.filter((h) => onStack.has(h.function) || keptBy(h.path).some((f) => onStack.has(f)));
  const distance = (h: HolderEntry): number => Math.abs(Math.log(h.heapBytes / Math.max(1, site.retainedBytes)));
  const nearest = (hs: HolderEntry[]): HolderEntry | undefined => hs.reduce<HolderEntry | undefined>((best, h) => (!best || distance(h) < distance(best) ? h : best), undefined);
  const byName = nearest(named);
  if (byName) return siteOf(byName, 'stack');
  const bySize = site.siteKind === 'library' ? nearest(heap) : undefined;
  return bySize ? siteOf(bySize, 'size') : null;
}

/** The holder of a process finding: the largest of its kind (`match: 'largest'`), or null. */
export function processHeldBy(kind: 'heap' | 'external', holders: readonly HolderEntry[]): HolderSite | null {
  const top =
    kind === 'external'
      ? holders.filter((h) => h.offHeapBytes > 0).sort((a, b) => b.offHeapBytes - a.offHeapBytes)[0]
      : holders.filter(isHeapHolder).sort((a, b) => b.heapBytes - a.heapBytes)[0];
  return top ? siteOf(top, 'largest') : null;
}
