import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Holder__Output } from '@heapwatch/proto/messages';
import type { SnapshotArrays } from './snapshot-reader';

/**
 * Who holds the off-heap memory in a heap snapshot: for the largest
 * ArrayBuffer backing stores (a Buffer's bytes; the snapshot has them as
 * native `system / JSArrayBufferData` nodes whose self size is the byte
 * length), the shortest retaining path from the GC roots, grouped by the
 * OWNER on that path: the nearest collection (an Array, Map or Set, or the
 * elements store of one) below the roots, else the nearest closure variable
 * or property. A group is reported with the binding that keeps the owner
 * (the variable or property name), the function whose closure holds it
 * (JSFunction nodes carry their script position in `locations`), and the
 * bytes: off-heap (backing stores) and heap (the shallow sizes of the
 * objects between the owner and them, counted once).
 *
 * Then the on-heap holders, for leaks of plain objects and strings: the
 * Arrays, Maps and Sets with the most heap below them on the same
 * shortest-path tree (each object counted once, under the path that
 * reached it first: retained size without the dominator tree's cost), of
 * at least `minHeapHolderBytes`. They are sent after the off-heap ones with
 * off-heap bytes 0.
 *
 * Bounded: at most `maxLeaves` backing stores (the largest), paths of at
 * most `maxPathLength` edges, `maxHolders` holders of each kind reported.
 * Memory: the snapshot's arrays plus nine 4-byte words per node.
 */
/**
 * One holder, as it goes on the wire: the fields of heapwatch.v1.Holder
 * (proto/heapwatch/v1/ingest.proto documents each one).
 */
export type Holder = Holder__Output;

export interface HolderOptions {
  /** Off-heap holders reported, at most; as many on-heap holders again. */
  maxHolders: number;
  maxLeaves: number;
  maxPathLength: number;
  /** An on-heap holder holds at least this much heap. */
  minHeapHolderBytes: number;
}

export const DEFAULT_HOLDER_OPTIONS: HolderOptions = { maxHolders: 5, maxLeaves: 20_000, maxPathLength: 64, minHeapHolderBytes: 1024 * 1024 };

export interface HolderAnalysis {
  holders: Holder[];
  /** Backing stores examined (the largest, up to maxLeaves) and their bytes. */
  leaves: number;
  offHeapBytes: number;
  /** Of those, how many had no path from a root (unreachable, waiting for a GC). */
  unreachable: number;
  nodeCount: number;
  edgeCount: number;
}

const BACKING_STORE = 'system / JSArrayBufferData';
const CONTEXT = 'system / Context';
const COLLECTIONS = new Set(['Array', 'Map', 'Set', 'WeakMap', 'WeakSet']);
/** Weak collections hold nothing strongly: they are no on-heap holder. */
const HEAP_COLLECTIONS = new Set(['Array', 'Map', 'Set']);
/** The largest collections compared for nesting, before the top maxHolders are kept. */
const HEAP_CANDIDATES = 256;
/** An outer collection gives way to an inner one holding this share of its heap. */
const INNER_SHARE = 0.8;
const NO_EDGE = 0xffffffff;

export function findHolders(s: SnapshotArrays, opts: Partial<HolderOptions> = {}): HolderAnalysis {
  const o = { ...DEFAULT_HOLDER_OPTIONS, ...opts };
  const NF = s.nodeFields.length;
  const EF = s.edgeFields.length;
  const fType = s.nodeFields.indexOf('type');
  const fName = s.nodeFields.indexOf('name');
  const fSize = s.nodeFields.indexOf('self_size');
  const fEdges = s.nodeFields.indexOf('edge_count');
  const eType = s.edgeFields.indexOf('type');
  const eName = s.edgeFields.indexOf('name_or_index');
  const eTo = s.edgeFields.indexOf('to_node');
  if ([fType, fName, fSize, fEdges, eType, eName, eTo].includes(-1)) throw new Error('unexpected heap snapshot layout');
  const n = s.nodes.length / NF;
  const edgeCount = s.edges.length / EF;
  const T_NATIVE = s.nodeTypes.indexOf('native');
  const T_CLOSURE = s.nodeTypes.indexOf('closure');
  const T_ARRAY = s.nodeTypes.indexOf('array');
  const T_OBJECT = s.nodeTypes.indexOf('object');
  const T_SYNTHETIC = s.nodeTypes.indexOf('synthetic');
  const T_STRING = s.nodeTypes.indexOf('string');
  const E_CONTEXT = s.edgeTypes.indexOf('context');
  const E_ELEMENT = s.edgeTypes.indexOf('element');
  const E_PROPERTY = s.edgeTypes.indexOf('property');
  const E_INTERNAL = s.edgeTypes.indexOf('internal');
  const E_HIDDEN = s.edgeTypes.indexOf('hidden');
  const E_WEAK = s.edgeTypes.indexOf('weak');
  const E_SHORTCUT = s.edgeTypes.indexOf('shortcut');

  const firstEdge = new Uint32Array(n + 1);
  for (let i = 0, e = 0; i < n; i++) {
    firstEdge[i] = e;
    e += s.nodes[i * NF + fEdges]!;
    firstEdge[i + 1] = e;
  }
  const nameCache = new Map<number, string>();
  const str = (i: number): string => {
    let v = nameCache.get(i);
    if (v === undefined) {
      v = s.string(i);
      if (nameCache.size < 10_000) nameCache.set(i, v);
    }
    return v;
  };
  const typeOf = (node: number): number => s.nodes[node * NF + fType]!;
  const nameOf = (node: number): string => str(s.nodes[node * NF + fName]!);
  const sizeOf = (node: number): number => s.nodes[node * NF + fSize]!;
  const edgeName = (e: number): string => {
    const t = s.edges[e * EF + eType]!;
    const v = s.edges[e * EF + eName]!;
    return t === E_ELEMENT || t === E_HIDDEN ? `[${v}]` : str(v);
  };
  /**
   * The closure variable edge `e` (from node `from`) may bind: none when it
   * is no variable edge, one when known, several when V8 left it open.
   * V8 names a function context's variables on `context` edges. A block
   * context's (`{ const cache = new Map(); ... }`) come as `hidden` edges
   * numbered in slot order but only for slots that hold a heap object (a
   * number in a slot gets no edge), while its ScopeInfo lists every
   * slot's name. So the i-th edge is the name of slot i..i+skipped; an
   * edge to a function declared there pins its slot (the closure has the
   * slot's name), which narrows its neighbours.
   */
  const slotNames = new Map<number, Map<number, string[]>>();
  const variableOf = (e: number, from: number): string[] => {
    const t = s.edges[e * EF + eType]!;
    if (t === E_CONTEXT) return [str(s.edges[e * EF + eName]!)];
    if (t !== E_HIDDEN || typeOf(from) !== T_OBJECT || nameOf(from) !== CONTEXT) return [];
    let slots = slotNames.get(from);
    if (!slots) {
      slots = blockSlots(from);
      if (slotNames.size < 10_000) slotNames.set(from, slots);
    }
    return slots.get(s.edges[e * EF + eName]!) ?? [];
  };
  const blockSlots = (context: number): Map<number, string[]> => {
    const out = new Map<number, string[]>();
    const names: string[] = [];
    const info = internalTo(context, 'scope_info');
    if (info < 0) return out;
    for (let f = firstEdge[info]!; f < firstEdge[info + 1]!; f++) {
      const to = s.edges[f * EF + eTo]! / NF;
      if (s.edges[f * EF + eType] === E_HIDDEN && typeOf(to) === T_STRING) names.push(nameOf(to));
    }
    const edges: { index: number; to: number }[] = [];
    for (let f = firstEdge[context]!; f < firstEdge[context + 1]!; f++) {
      if (s.edges[f * EF + eType] === E_HIDDEN) edges.push({ index: s.edges[f * EF + eName]!, to: s.edges[f * EF + eTo]! / NF });
    }
    const skipped = names.length - edges.length;
    if (skipped < 0) return out;
    const lo = edges.map((_, i) => i);
    const hi = edges.map((_, i) => i + skipped);
    edges.forEach((x, i) => {
      if (typeOf(x.to) !== T_CLOSURE) return;
      const at = names.indexOf(nameOf(x.to), lo[i]);
      if (at >= 0 && at <= hi[i]!) lo[i] = hi[i] = at;
    });
    for (let i = 1; i < edges.length; i++) lo[i] = Math.max(lo[i]!, lo[i - 1]! + 1);
    for (let i = edges.length - 2; i >= 0; i--) hi[i] = Math.min(hi[i]!, hi[i + 1]! - 1);
    edges.forEach((x, i) => out.set(x.index, names.slice(lo[i], hi[i]! + 1)));
    return out;
  };
  /**
   * Source files, each read once per analysis (readSource's bound: absolute
   * paths of at most MAX_SOURCE_BYTES): only the files of the few holders
   * described are asked for.
   */
  const sources = new Map<string, string | undefined>();
  const sourceText = (file: string): string | undefined => {
    if (!sources.has(file)) sources.set(file, readSource(file));
    return sources.get(file);
  };
  /** The node an internal edge of `node` named `name` points to, or -1. */
  const internalTo = (node: number, name: string): number => {
    for (let e = firstEdge[node]!; e < firstEdge[node + 1]!; e++) {
      if (s.edges[e * EF + eType] === E_INTERNAL && str(s.edges[e * EF + eName]!) === name) return s.edges[e * EF + eTo]! / NF;
    }
    return -1;
  };

  // Shortest paths from the root (node 0) over strong edges: breadth first,
  // remembering each node's parent edge and parent node.
  const parentEdge = new Uint32Array(n).fill(NO_EDGE);
  const parentNode = new Uint32Array(n);
  const queue = new Uint32Array(n);
  const seen = new Uint8Array(n);
  let head = 0;
  let tail = 0;
  queue[tail++] = 0;
  seen[0] = 1;
  while (head < tail) {
    const from = queue[head++]!;
    for (let e = firstEdge[from]!; e < firstEdge[from + 1]!; e++) {
      const t = s.edges[e * EF + eType]!;
      if (t === E_WEAK || t === E_SHORTCUT) continue;
      const to = s.edges[e * EF + eTo]! / NF;
      if (seen[to]) continue;
      seen[to] = 1;
      parentEdge[to] = e;
      parentNode[to] = from;
      queue[tail++] = to;
    }
  }

  // The largest backing stores.
  const leaves: number[] = [];
  for (let i = 0; i < n; i++) {
    if (typeOf(i) === T_NATIVE && sizeOf(i) > 0 && nameOf(i) === BACKING_STORE) leaves.push(i);
  }
  leaves.sort((a, b) => sizeOf(b) - sizeOf(a));
  if (leaves.length > o.maxLeaves) leaves.length = o.maxLeaves;

  // On-heap holders: every reachable node is credited to its parent on the
  // breadth-first tree, so a node's subtree is the heap reached first
  // through it (retained size's cheap cousin: each object counted once,
  // shared ones under whichever path reached them first). Backing stores
  // are left out: they are the off-heap holders' bytes.
  const subHeap = new Float64Array(n);
  const subObjects = new Uint32Array(n);
  for (let i = tail - 1; i > 0; i--) {
    const node = queue[i]!;
    if (!(typeOf(node) === T_NATIVE && nameOf(node) === BACKING_STORE)) {
      subHeap[node] = subHeap[node]! + sizeOf(node);
      subObjects[node] = subObjects[node]! + 1;
    }
    const up = parentNode[node]!;
    subHeap[up] = subHeap[up]! + subHeap[node]!;
    subObjects[up] = subObjects[up]! + subObjects[node]!;
  }
  /**
   * The collections (Array, Map, Set) that hold the most heap below them,
   * at most maxHolders. A collection whose bytes are mostly one collection
   * inside it (a list of one list) gives way to that inner one: the holder
   * is where the items are.
   */
  function heapHolders(): number[] {
    const candidates: number[] = [];
    for (let i = 0; i < tail; i++) {
      const node = queue[i]!;
      if (typeOf(node) === T_OBJECT && subObjects[node]! > 1 && HEAP_COLLECTIONS.has(nameOf(node))) candidates.push(node);
    }
    candidates.sort((a, b) => subHeap[b]! - subHeap[a]!);
    if (candidates.length > HEAP_CANDIDATES) candidates.length = HEAP_CANDIDATES;
    const isCandidate = new Set(candidates);
    const represented = new Set<number>();
    for (const inner of candidates) {
      let node = inner;
      for (let depth = 0; depth < o.maxPathLength && parentEdge[node] !== NO_EDGE; depth++) {
        node = parentNode[node]!;
        if (isCandidate.has(node) && subHeap[inner]! >= INNER_SHARE * subHeap[node]!) represented.add(node);
      }
    }
    return candidates.filter((c) => !represented.has(c) && subHeap[c]! >= o.minHeapHolderBytes).slice(0, o.maxHolders);
  }

  /** The elements of a collection node: element edges of it or of its store. */
  const itemsOf = (node: number): number => {
    let count = 0;
    let store = -1;
    for (let e = firstEdge[node]!; e < firstEdge[node + 1]!; e++) {
      const t = s.edges[e * EF + eType]!;
      if (t === E_ELEMENT) count++;
      else if (t === E_INTERNAL && store < 0) {
        const nm = str(s.edges[e * EF + eName]!);
        if (nm === 'table' || nm === 'elements') store = s.edges[e * EF + eTo]! / NF;
      }
    }
    if (count > 0 || store < 0) return count;
    // Map/Set: an OrderedHashMap/Set, whose edges are named by slot. After
    // a header and the buckets come the entries, in insertion order, 3
    // slots each for a Map (key, value, chain), 2 for a Set: the first and
    // last slots with an edge give the count (a slot holding a number has
    // no edge, hence the rounding). Two names read, whatever the size.
    const kind = nameOf(node);
    const stride = kind === 'Map' ? 3 : kind === 'Set' ? 2 : 0;
    if (stride > 0) {
      const slotOf = (e: number): number => {
        const t = s.edges[e * EF + eType]!;
        const v = s.edges[e * EF + eName]!;
        if (t === E_ELEMENT || t === E_HIDDEN) return v;
        const nm = t === E_INTERNAL ? str(v) : '';
        return /^\d+$/.test(nm) ? Number(nm) : -1;
      };
      let first = -1;
      let last = -1;
      for (let e = firstEdge[store]!; e < firstEdge[store + 1]! && first < 0; e++) first = slotOf(e);
      for (let e = firstEdge[store + 1]! - 1; e >= firstEdge[store]! && last < 0; e--) last = slotOf(e);
      return first < 0 || last < 0 ? 0 : Math.round((last - first) / stride) + 1;
    }
    // WeakMap/WeakSet: a hash table, keys and values by hash; count what they hold.
    for (let e = firstEdge[store]!; e < firstEdge[store + 1]!; e++) {
      const tt = typeOf(s.edges[e * EF + eTo]! / NF);
      if (tt === T_OBJECT || tt === T_CLOSURE || tt === T_ARRAY || tt === T_STRING) count++;
    }
    return kind === 'WeakMap' ? Math.floor(count / 2) : count;
  };

  interface Group {
    key: number;
    ownerNode: number;
    ownerEdge: number;
    ownerHolder: number;
    offHeap: number;
    heap: number;
    objects: number;
  }
  const groups = new Map<number, Group>();
  const counted = new Uint8Array(n);
  let unreachable = 0;
  let offHeapBytes = 0;
  for (const leaf of leaves) {
    offHeapBytes += sizeOf(leaf);
    if (parentEdge[leaf] === NO_EDGE) {
      unreachable++;
      continue;
    }
    // Walk up to the owner: the first collection (or a collection's store),
    // else the first closure variable, else the first named property.
    const below: number[] = [];
    let node = leaf;
    let owner = -1;
    let fallback = -1;
    for (let depth = 0; depth < o.maxPathLength && node !== 0 && parentEdge[node] !== NO_EDGE; depth++) {
      const e = parentEdge[node]!;
      const from = parentNode[node]!;
      const t = s.edges[e * EF + eType]!;
      const fromType = typeOf(from);
      if (fromType === T_OBJECT && COLLECTIONS.has(nameOf(from))) {
        owner = from;
        break;
      }
      if (fromType === T_ARRAY && (t === E_ELEMENT || t === E_INTERNAL)) {
        // An elements store or hash table: its owner is the collection above it, if any.
        const up = parentEdge[from] !== NO_EDGE ? parentNode[from]! : -1;
        if (up >= 0 && typeOf(up) === T_OBJECT && COLLECTIONS.has(nameOf(up))) {
          below.push(from);
          owner = up;
          break;
        }
      }
      if (fallback < 0 && (variableOf(e, from).length > 0 || (t === E_PROPERTY && fromType !== T_SYNTHETIC))) fallback = node;
      below.push(node);
      node = from;
    }
    if (owner < 0) owner = fallback >= 0 ? fallback : node;
    let g = groups.get(owner);
    if (!g) {
      g = { key: owner, ownerNode: owner, ownerEdge: parentEdge[owner]!, ownerHolder: parentEdge[owner] === NO_EDGE ? -1 : parentNode[owner]!, offHeap: 0, heap: 0, objects: 0 };
      groups.set(owner, g);
    }
    g.offHeap += sizeOf(leaf);
    g.objects++;
    for (const b of below) {
      if (b === owner || counted[b]) continue;
      counted[b] = 1;
      if (b !== leaf) g.heap += sizeOf(b);
    }
  }

  const top = [...groups.values()].sort((a, b) => b.offHeap - a.offHeap).slice(0, o.maxHolders);
  for (const node of heapHolders()) {
    top.push({ key: node, ownerNode: node, ownerEdge: parentEdge[node]!, ownerHolder: parentNode[node]!, offHeap: 0, heap: subHeap[node]!, objects: subObjects[node]! });
  }

  // Closures of the contexts the top groups pass through, and where their code is: one pass over the edges.
  const contextsWanted = new Set<number>();
  const describeUp = (g: Group): number[] => {
    // The owner and the nodes above it, up to the first context (or a few hops).
    const chain: number[] = [];
    let node = g.ownerNode;
    for (let hops = 0; hops < o.maxPathLength && parentEdge[node] !== NO_EDGE; hops++) {
      chain.push(node);
      const from = parentNode[node]!;
      if (variableOf(parentEdge[node]!, from).length > 0) {
        contextsWanted.add(from);
        break;
      }
      node = from;
    }
    return chain;
  };
  const chains = top.map(describeUp);
  const closuresOf = new Map<number, number[]>();
  if (contextsWanted.size > 0) {
    for (let i = 0; i < n; i++) {
      if (typeOf(i) !== T_CLOSURE) continue;
      for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e++) {
        if (s.edges[e * EF + eType] !== E_INTERNAL) continue;
        const to = s.edges[e * EF + eTo]! / NF;
        if (!contextsWanted.has(to) || str(s.edges[e * EF + eName]!) !== 'context') continue;
        const list = closuresOf.get(to) ?? [];
        if (list.length < MAX_CLOSURES_PER_CONTEXT) list.push(i);
        closuresOf.set(to, list);
      }
    }
  }
  /**
   * The function whose scope declares a context's variables: a function
   * scope's ScopeInfo lists the context's variable names, then the
   * function's name. A module's or script's top-level scope has no name
   * there (the next string is something else): the caller only keeps a
   * candidate that names a function in the same file.
   */
  const declaringName = (context: number): string => {
    const vars = new Set<string>();
    let scopeInfo = -1;
    for (let e = firstEdge[context]!; e < firstEdge[context + 1]!; e++) {
      const t = s.edges[e * EF + eType]!;
      if (t === E_CONTEXT) vars.add(str(s.edges[e * EF + eName]!));
      else if (t === E_INTERNAL && str(s.edges[e * EF + eName]!) === 'scope_info') scopeInfo = s.edges[e * EF + eTo]! / NF;
    }
    // A block's context has no named variable edges, and no function name.
    if (scopeInfo < 0 || vars.size === 0) return '';
    for (let e = firstEdge[scopeInfo]!; e < firstEdge[scopeInfo + 1]!; e++) {
      const to = s.edges[e * EF + eTo]! / NF;
      if (s.nodeTypes[typeOf(to)] !== 'string') continue;
      const name = nameOf(to);
      if (!vars.has(name)) return /^[\w$]+$/.test(name) ? name : '';
    }
    return '';
  };
  const declaring = new Map<number, string>();
  for (const c of contextsWanted) declaring.set(c, declaringName(c));
  const wantedNames = new Set([...declaring.values()].filter(Boolean));
  const where = new Map<number, { line: number; column: number }>();
  const namedClosures = new Map<string, number[]>();
  for (let i = 0; i + 3 < s.locations.length; i += 4) {
    const node = s.locations[i]! / NF;
    if (typeOf(node) !== T_CLOSURE) continue;
    where.set(node, { line: s.locations[i + 2]! + 1, column: s.locations[i + 3]! + 1 });
    const nm = nameOf(node);
    if (wantedNames.has(nm)) {
      const list = namedClosures.get(nm) ?? [];
      if (list.length < 16) list.push(node);
      namedClosures.set(nm, list);
    }
  }
  const scriptOf = (closure: number): string => {
    for (let e = firstEdge[closure]!; e < firstEdge[closure + 1]!; e++) {
      if (str(s.edges[e * EF + eName]!) !== 'shared') continue;
      const sfi = s.edges[e * EF + eTo]! / NF;
      for (let f = firstEdge[sfi]!; f < firstEdge[sfi + 1]!; f++) {
        const nm = str(s.edges[f * EF + eName]!);
        if (nm === 'script_or_debug_info' || nm === 'script') return nameOf(s.edges[f * EF + eTo]! / NF);
      }
    }
    return '';
  };
  /**
   * The context's declaring function (else its first closure), where it
   * is, the closures that keep it, the variable (of `candidates`, the one
   * the source declares as a new `container` when V8 left several open;
   * else ''), and the closures whose source text names it (usedBy): every
   * closure of a scope keeps all of its variables, so only the source
   * tells which use the holder.
   */
  const contextOwner = (
    context: number,
    candidates: string[],
    container: string,
  ): { fn: string; file: string; line: number; column: number; keptBy: string[]; usedBy: string[]; variable: string } | undefined => {
    const closures = (closuresOf.get(context) ?? []).filter((c) => where.has(c));
    const first = closures[0];
    if (first === undefined) return undefined;
    const file = scriptOf(first);
    const text = sourceText(file);
    const variable = candidates.length === 1 ? candidates[0]! : declaredAs(text, candidates, container);
    const keptBy = closures.map((c) => nameOf(c) || '(anonymous)');
    const usedBy = closuresUsing(text, variable, closures.filter((c) => scriptOf(c) === file).map((c) => ({ name: nameOf(c) || '(anonymous)', ...where.get(c)! })));
    const name = declaring.get(context) ?? '';
    if (!name) return { fn: '', file, line: 0, column: 0, keptBy, usedBy, variable }; // a module's top-level scope, or a block
    // The declaring function's own closure is gone once it has returned (a
    // factory called at start): then its line is looked up in the file.
    const decl = (namedClosures.get(name) ?? []).find((c) => scriptOf(c) === file);
    const at = decl !== undefined ? where.get(decl) : declarationIn(text, name);
    if (!at) return { fn: '', file, line: 0, column: 0, keptBy, usedBy, variable };
    return { fn: name, file, line: at.line, column: at.column, keptBy, usedBy, variable };
  };

  const holders: Holder[] = top.map((g, k) => {
    const chain = chains[k]!;
    const parts: string[] = [];
    let fn = '';
    let file = '';
    let line = 0;
    let column = 0;
    let owner = '';
    let ownerIsVariable = false;
    for (const node of chain) {
      const e = parentEdge[node]!;
      const label = nameOf(node) || `(${s.nodeTypes[typeOf(node)]})`;
      const items = typeOf(node) === T_OBJECT && COLLECTIONS.has(nameOf(node)) ? itemsOf(node) : 0;
      const candidates = variableOf(e, parentNode[node]!);
      const c = candidates.length > 0 ? contextOwner(parentNode[node]!, candidates, label) : undefined;
      const binding = c?.variable || (candidates.length === 1 ? candidates[0]! : edgeName(e));
      if (node === g.ownerNode) {
        owner = binding;
        ownerIsVariable = binding === c?.variable || candidates.length === 1;
      }
      parts.push(`${binding} (${label}${items ? `, ${items} items` : ''})`);
      if (c) {
        ({ fn, file, line, column } = c);
        const list = (names: string[]): string => (names.length > 4 ? `${names.slice(0, 4).join(', ')}, ...` : names.join(', '));
        const who = c.usedBy.length > 0 ? `used by ${list(c.usedBy)}` : `kept by ${list(c.keptBy)}`;
        parts.push(`${fn ? `context of ${fn} (${shortFile(file)}${line ? `:${line}` : ''})` : `module scope of ${shortFile(file)}`}, ${who}`);
      } else if (candidates.length > 0) parts.push('a closure context');
      if (parts.length >= 6) break;
    }
    const ownerEdge = parentEdge[g.ownerNode]!;
    const et = ownerEdge === NO_EDGE ? -1 : s.edges[ownerEdge * EF + eType]!;
    const container = nameOf(g.ownerNode);
    return {
      owner,
      ownerKind: ownerIsVariable ? 'variable' : et === E_PROPERTY ? 'property' : et === E_ELEMENT || et === E_HIDDEN ? 'element' : 'internal',
      container,
      items: typeOf(g.ownerNode) === T_OBJECT && COLLECTIONS.has(container) ? itemsOf(g.ownerNode) : 0,
      function: fn,
      file,
      line,
      column,
      offHeapBytes: g.offHeap,
      heapBytes: g.heap,
      objects: g.objects,
      path: parts.join(' ← '),
    };
  });
  return { holders, leaves: leaves.length, offHeapBytes, unreachable, nodeCount: n, edgeCount };
}

/** Source files larger than this are not read (declarations, used-by, declared-as). */
const MAX_SOURCE_BYTES = 4 * 1024 * 1024;
/** Closures of one context looked at (for kept-by and used-by). */
const MAX_CLOSURES_PER_CONTEXT = 64;

/** A file's text when it is an absolute path of a readable file of bounded size. */
function readSource(file: string): string | undefined {
  if (!path.isAbsolute(file)) return undefined;
  try {
    if (fs.statSync(file).size > MAX_SOURCE_BYTES) return undefined;
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Of `candidates`, the one variable the source `text` declares as a new
 * `container` (`name = new Map(`, for an Array `name = [`), when exactly
 * one is; else ''.
 */
function declaredAs(text: string | undefined, candidates: string[], container: string): string {
  if (text === undefined || !/^[\w$]+$/.test(container)) return '';
  const value = container === 'Array' ? '(new\\s+Array\\b|\\[|Array\\.from\\b)' : `new\\s+${container}\\b`;
  const found = candidates.filter((v) => /^[\w$]+$/.test(v) && new RegExp(`(?<![\\w$.])${v.replace(/\$/g, '\\$')}\\s*=\\s*${value}`).test(text));
  return found.length === 1 ? found[0]! : '';
}

/**
 * Of closures of one scope (name and 1-based line and column where each
 * starts), those whose text names `variable`, in source order. A
 * closure's text is taken to run to the start of the next one: siblings
 * in one scope do not overlap, and a nested function counts as its
 * parent's text. The name must stand alone (`cache.get`, `cache =`), not
 * as a property (`this.cache`, `x.cache`).
 */
function closuresUsing(text: string | undefined, variable: string, closures: { name: string; line: number; column: number }[]): string[] {
  if (text === undefined || closures.length === 0 || !/^[\w$]+$/.test(variable)) return [];
  const lineStarts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  const at = closures
    .map((c) => ({ name: c.name, offset: (lineStarts[c.line - 1] ?? text.length) + c.column - 1 }))
    .sort((a, b) => a.offset - b.offset);
  const re = new RegExp(`(?<![\\w$.])${variable.replace(/\$/g, '\\$')}(?![\\w$])`);
  const used: string[] = [];
  for (let i = 0; i < at.length; i++) {
    const end = i + 1 < at.length ? at[i + 1]!.offset : text.length;
    if (re.test(text.slice(at[i]!.offset, end)) && !used.includes(at[i]!.name)) used.push(at[i]!.name);
  }
  return used;
}

/**
 * Where `name` is declared in the source `text` (1-based line and column):
 * a function declaration, a function or arrow assigned to it, or a method
 * of that name.
 */
function declarationIn(text: string | undefined, name: string): { line: number; column: number } | undefined {
  if (text === undefined || !/^[\w$]+$/.test(name)) return undefined;
  const n = name.replace(/\$/g, '\\$');
  const patterns = [
    new RegExp(`\\bfunction\\s*\\*?\\s*(?<name>${n})\\s*\\(`, 'd'),
    new RegExp(`(?<![\\w$])(?<name>${n})\\s*[:=]\\s*(async\\s+)?(function\\b|\\([^)]*\\)\\s*=>|[\\w$]+\\s*=>)`, 'd'),
    new RegExp(`^\\s*(async\\s+)?(?<name>${n})\\s*\\([^)]*\\)\\s*\\{`, 'dm'),
  ];
  for (const re of patterns) {
    const at = re.exec(text)?.indices?.groups?.name?.[0];
    if (at === undefined) continue;
    const before = text.slice(0, at);
    return { line: before.split('\n').length, column: at - before.lastIndexOf('\n') };
  }
  return undefined;
}

/** The last two path segments: enough to recognise a file in a one-line path. */
function shortFile(file: string): string {
  const parts = file.split(/[\\/]/);
  return parts.slice(-2).join('/');
}
