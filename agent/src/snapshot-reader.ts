import * as fs from 'node:fs';

/**
 * A V8 heap snapshot file (v8.writeHeapSnapshot) read into typed arrays,
 * without ever holding its text: the file is read in chunks and its number
 * arrays (`nodes`, `edges`, `locations`) go straight into Uint32Arrays; of
 * `strings` only each string's position in the file is kept, and a string
 * is read back from the file when asked for (names of the few nodes a
 * holder report shows). A 100 MB heap writes a file of roughly 100-150 MB;
 * JSON.parse of it would need that text plus several times it in JS arrays.
 */
export interface SnapshotArrays {
  nodeFields: string[];
  nodeTypes: string[];
  edgeFields: string[];
  edgeTypes: string[];
  nodes: Uint32Array;
  edges: Uint32Array;
  /** (object_index, script_id, line, column) quadruples: where each closure's code is. */
  locations: Uint32Array;
  stringCount: number;
  /** String `i` of `strings`, at most maxChars of it. */
  string(i: number, maxChars?: number): string;
  close(): void;
}

const CHUNK_BYTES = 1 << 20;
/** The header (meta) is a few KB; more means this is not a heap snapshot. */
const MAX_HEADER_BYTES = 1 << 20;
const MAX_STRING_READ_BYTES = 4096;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const ZERO = 0x30;
const NINE = 0x39;

class GrowableU32 {
  data: Uint32Array;
  length = 0;
  constructor(capacity: number) {
    this.data = new Uint32Array(Math.max(16, capacity));
  }
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Uint32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  trimmed(): Uint32Array {
    return this.data.subarray(0, this.length);
  }
}

class GrowableF64 {
  data: Float64Array;
  length = 0;
  constructor(capacity: number) {
    this.data = new Float64Array(Math.max(16, capacity));
  }
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
}

type Section = 'numbers' | 'strings' | 'skip';

/**
 * Reads `file` (a .heapsnapshot); throws on a file that is not one. The
 * caller closes the result. `unlink`: remove the file once it is open (the
 * open descriptor keeps its data readable where the system allows it), so a
 * crash mid-read leaves no snapshot behind.
 */
export function readSnapshot(file: string, unlink = false): SnapshotArrays {
  const fd = fs.openSync(file, 'r');
  if (unlink) {
    try {
      fs.unlinkSync(file);
    } catch {
      // Windows: an open file cannot be removed; the capture removes it after.
    }
  }
  try {
    return parse(fd);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

interface Meta {
  node_fields: string[];
  node_types: [string[], ...unknown[]];
  edge_fields: string[];
  edge_types: [string[], ...unknown[]];
}

function parse(fd: number): SnapshotArrays {
  const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  let filePos = 0;
  // Header: everything before the `nodes` array.
  let header = '';
  let bodyStart = -1;
  for (;;) {
    const n = fs.readSync(fd, chunk, 0, CHUNK_BYTES, filePos);
    if (n === 0) throw new Error('not a heap snapshot: no "nodes" array');
    const text = chunk.toString('latin1', 0, n);
    const at = (header + text).indexOf('"nodes"');
    if (at >= 0) {
      header = (header + text).slice(0, at);
      bodyStart = at;
      break;
    }
    header += text;
    filePos += n;
    if (header.length > MAX_HEADER_BYTES) throw new Error('not a heap snapshot: header too long');
  }
  const head = JSON.parse(header.trim().replace(/,\s*$/, '') + '}') as { snapshot: { meta: Meta; node_count: number; edge_count: number } };
  const meta = head.snapshot.meta;
  const nodeFieldCount = meta.node_fields.length;
  const edgeFieldCount = meta.edge_fields.length;
  const nodes = new Uint32Array(head.snapshot.node_count * nodeFieldCount);
  const edges = new Uint32Array(head.snapshot.edge_count * edgeFieldCount);
  const locations = new GrowableU32(1024);
  const stringStart = new GrowableF64(1024);
  const stringEnd = new GrowableF64(1024);

  // The body: `"key":[ ... ]` sections, read byte by byte.
  let pos = bodyStart; // absolute file offset of the next byte
  let inKey = false;
  let key = '';
  let section: Section | undefined;
  let target: 'nodes' | 'edges' | 'locations' | undefined;
  let filled = 0;
  let num = 0;
  let inNum = false;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let stringFrom = 0;
  const store = (v: number): void => {
    if (target === 'locations') locations.push(v);
    else {
      const arr = target === 'nodes' ? nodes : edges;
      if (filled < arr.length) arr[filled++] = v > 0xffffffff ? 0xffffffff : v;
    }
  };
  for (;;) {
    const n = fs.readSync(fd, chunk, 0, CHUNK_BYTES, pos);
    if (n === 0) break;
    for (let i = 0; i < n; i++, pos++) {
      const c = chunk[i]!;
      if (section === undefined) {
        if (inKey) {
          if (c === QUOTE) inKey = false;
          else key += String.fromCharCode(c);
        } else if (c === QUOTE) {
          inKey = true;
          key = '';
        } else if (c === OPEN) {
          depth = 1;
          if (key === 'nodes' || key === 'edges' || key === 'locations') {
            section = 'numbers';
            target = key;
            filled = 0;
            inNum = false;
          } else if (key === 'strings') {
            section = 'strings';
            inString = false;
          } else section = 'skip';
        }
        continue;
      }
      if (section === 'numbers') {
        if (c >= ZERO && c <= NINE) {
          num = inNum ? num * 10 + (c - ZERO) : c - ZERO;
          inNum = true;
          continue;
        }
        if (inNum) store(num);
        inNum = false;
        if (c === CLOSE) section = undefined;
        continue;
      }
      if (section === 'strings') {
        if (inString) {
          if (escaped) escaped = false;
          else if (c === BACKSLASH) escaped = true;
          else if (c === QUOTE) {
            inString = false;
            stringStart.push(stringFrom);
            stringEnd.push(pos);
          }
        } else if (c === QUOTE) {
          inString = true;
          stringFrom = pos + 1;
        } else if (c === CLOSE) section = undefined;
        continue;
      }
      // skip: nested arrays of numbers (trace tree, samples), or anything else
      if (inString) {
        if (escaped) escaped = false;
        else if (c === BACKSLASH) escaped = true;
        else if (c === QUOTE) inString = false;
      } else if (c === QUOTE) inString = true;
      else if (c === OPEN || c === OPEN_BRACE) depth++;
      else if (c === CLOSE || c === CLOSE_BRACE) {
        if (--depth === 0) section = undefined;
      }
    }
  }
  if (section !== undefined || inKey) throw new Error('truncated heap snapshot');
  if (target === undefined) throw new Error('not a heap snapshot: no arrays');
  const stringCount = stringStart.length;
  const readBuf = Buffer.allocUnsafe(MAX_STRING_READ_BYTES);
  let open = true;
  return {
    nodeFields: meta.node_fields,
    nodeTypes: meta.node_types[0],
    edgeFields: meta.edge_fields,
    edgeTypes: meta.edge_types[0],
    nodes,
    edges,
    locations: locations.trimmed(),
    stringCount,
    string(i: number, maxChars = 200): string {
      if (!open || !(i >= 0 && i < stringCount)) return '';
      const from = stringStart.data[i]!;
      const len = Math.min(stringEnd.data[i]! - from, MAX_STRING_READ_BYTES);
      const got = fs.readSync(fd, readBuf, 0, len, from);
      let raw = readBuf.toString('utf8', 0, got);
      if (raw.includes('\\')) {
        // Cut at a whole escape so the JSON string still parses.
        raw = raw.replace(/\\(u[0-9a-fA-F]{0,3})?$/, '');
        try {
          raw = JSON.parse(`"${raw}"`) as string;
        } catch {
          // keep the escaped text: it is only a label
        }
      }
      return raw.length > maxChars ? raw.slice(0, maxChars) : raw;
    },
    close(): void {
      if (!open) return;
      open = false;
      fs.closeSync(fd);
    },
  };
}
