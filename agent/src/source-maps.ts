import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TraceMap } from '@jridgewell/trace-mapping';

/**
 * @jridgewell/trace-mapping, loaded when the first source map is: a process
 * of plain JavaScript never needs it, and what a module holds the host's
 * every major GC marks.
 */
let traceMapping: typeof import('@jridgewell/trace-mapping') | undefined;
function tm(): typeof import('@jridgewell/trace-mapping') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  traceMapping ??= require('@jridgewell/trace-mapping') as typeof import('@jridgewell/trace-mapping');
  return traceMapping;
}

/** A frame as @datadog/pprof hands it to a source mapper (line and column 1-based). */
export interface GeneratedLocation {
  file: string;
  name?: string;
  line: number;
  column: number;
}

/** What the mapper returns: the original position, or the input unchanged. */
export interface SourceLocation {
  file?: string;
  name?: string;
  line?: number;
  column?: number;
}

export interface SourceMapLimits {
  /** Scripts whose map (or absence of one) is cached. */
  maxScripts: number;
  /** Summed size of the cached maps' JSON text. */
  maxBytes: number;
  /** A script or map larger than this is not read (an inline map is read with its script). */
  maxFileBytes: number;
  /** Scripts read from disk per profile; further scripts wait for the next profile. */
  maxLoadsPerProfile: number;
  /** Time spent reading and parsing maps per profile. */
  maxLoadMsPerProfile: number;
}

export const DEFAULT_SOURCE_MAP_LIMITS: SourceMapLimits = {
  maxScripts: 512,
  maxBytes: 32 * 1024 * 1024,
  maxFileBytes: 8 * 1024 * 1024,
  maxLoadsPerProfile: 16,
  maxLoadMsPerProfile: 50,
};

export interface SourceMapStats {
  /** Scripts whose map was loaded. */
  mapped: number;
  /** Scripts without a map, or whose map could not be read or parsed. */
  unmapped: number;
  /** Frames left as they were because the per-profile budget was spent. */
  deferred: number;
  /** Cached scripts dropped to stay within maxScripts/maxBytes. */
  evicted: number;
}

interface Entry {
  map: TraceMap | null;
  bytes: number;
}

/** Estimated memory of a loaded map per byte of its JSON text (the text plus the decoded segments). */
const DECODED_BYTES_FACTOR = 4;

// The agent's own scripts (dist/*.js, shipped with their maps): the
// collector recognizes the agent's frames by these paths (model/site.ts).
const AGENT_DIR = __dirname + path.sep;

// The annotation must be on the last non-empty line (ECMA-426); the tail
// read finds it without reading a large script whole.
const TAIL_BYTES = 4096;
const ANNOTATION = /\/\/[#@] sourceMappingURL=([^\s'"]+)\s*$/;

/**
 * Maps profile frames of compiled code (TypeScript, bundles) back to their
 * original file, line and, where the map has one, function name, through the
 * script's source map: a `//# sourceMappingURL=` naming a `.map` file or an
 * inline `data:` map. Scripts are read lazily, the first time one of their
 * frames is seen, and cached (an absent map too) in an LRU bounded by count
 * and bytes; at most `maxLoadsPerProfile` scripts and `maxLoadMsPerProfile`
 * ms of reading per profile, so a profile of a cold process never stalls the
 * host (the rest are read at the next profiles). Frames under node_modules
 * and Node's internals are left alone: they are never the site a user acts
 * on, and a dependency tree can hold thousands of maps; so are the agent's
 * own scripts, which the collector recognizes by their compiled paths. A frame that cannot
 * be mapped stays as it is. Never throws.
 *
 * V8's sampler gives each frame the position where its function starts, so
 * the mapped line is the original function's first line, not the
 * allocation's (docs/sampler.md).
 *
 * Plugged into @datadog/pprof's heap.profile() as its source mapper; the
 * sampler calls startProfile() before each read.
 */
export class SourceMaps {
  private readonly cache = new Map<string, Entry>();
  private cachedBytes = 0;
  private loadsLeft = 0;
  private loadDeadline = 0;
  readonly stats: SourceMapStats = { mapped: 0, unmapped: 0, deferred: 0, evicted: 0 };

  constructor(private readonly limits: SourceMapLimits = DEFAULT_SOURCE_MAP_LIMITS) {}

  /**
   * Resets the per-profile budget. The time budget starts at the profile's
   * first read, not here: reading V8's sample tree comes first and can take
   * tens of milliseconds on a busy host.
   */
  startProfile(): void {
    this.loadsLeft = this.limits.maxLoadsPerProfile;
    this.loadDeadline = 0;
  }

  /** The original location of a generated one, or the input unchanged. */
  mappingInfo(loc: GeneratedLocation): SourceLocation {
    try {
      const script = scriptPath(loc.file);
      if (script === undefined) return loc;
      const entry = this.entry(script);
      if (!entry?.map) return loc;
      // V8 columns are 1-based, source-map columns 0-based. Column 0 (none
      // known): the first mapping on the line.
      const column = loc.column > 0 ? loc.column - 1 : 0;
      const { originalPositionFor, GREATEST_LOWER_BOUND, LEAST_UPPER_BOUND } = tm();
      let pos = originalPositionFor(entry.map, { line: loc.line, column, bias: GREATEST_LOWER_BOUND });
      if (pos.source === null) pos = originalPositionFor(entry.map, { line: loc.line, column, bias: LEAST_UPPER_BOUND });
      if (pos.source === null || pos.line === null) {
        // The CommonJS module wrapper starts at line 1, column 1, where tsc
        // maps nothing: it stands for the whole file, the map's only source.
        const only = entry.map.resolvedSources.length === 1 ? entry.map.resolvedSources[0] : undefined;
        return loc.line === 1 && only ? { file: originalPath(only), line: 1, column: 1, name: loc.name } : loc;
      }
      return { file: originalPath(pos.source), line: pos.line, column: pos.column + 1, name: pos.name ?? loc.name };
    } catch {
      return loc;
    }
  }

  private entry(script: string): Entry | undefined {
    const hit = this.cache.get(script);
    if (hit) {
      // LRU order: most recently used last.
      this.cache.delete(script);
      this.cache.set(script, hit);
      return hit;
    }
    const now = performance.now();
    if (this.loadDeadline === 0) this.loadDeadline = now + this.limits.maxLoadMsPerProfile;
    if (this.loadsLeft <= 0 || now > this.loadDeadline) {
      this.stats.deferred++;
      return undefined;
    }
    this.loadsLeft--;
    const entry = this.load(script);
    // Decoded mappings take a few times the JSON text; count them so.
    entry.bytes *= DECODED_BYTES_FACTOR;
    if (entry.map) this.stats.mapped++;
    else this.stats.unmapped++;
    this.cache.set(script, entry);
    this.cachedBytes += entry.bytes;
    while (this.cache.size > this.limits.maxScripts || this.cachedBytes > this.limits.maxBytes) {
      const oldest = this.cache.keys().next();
      if (oldest.done) break;
      this.cachedBytes -= this.cache.get(oldest.value)!.bytes;
      this.cache.delete(oldest.value);
      this.stats.evicted++;
    }
    return entry;
  }

  private load(script: string): Entry {
    const none: Entry = { map: null, bytes: 64 };
    const url = readAnnotation(script, this.limits.maxFileBytes);
    if (url === undefined) return none;
    let text: string;
    let mapPath: string;
    if (url.startsWith('data:')) {
      const comma = url.indexOf(',');
      if (comma < 0) return none;
      const meta = url.slice(5, comma);
      const data = url.slice(comma + 1);
      text = meta.endsWith(';base64') ? Buffer.from(data, 'base64').toString('utf8') : decodeURIComponent(data);
      mapPath = script;
    } else {
      mapPath = url.startsWith('file:') ? fileURLToPath(url) : path.resolve(path.dirname(script), decodeURIComponent(url));
      try {
        if (fs.statSync(mapPath).size > this.limits.maxFileBytes) return none;
        text = fs.readFileSync(mapPath, 'utf8');
      } catch {
        return none;
      }
    }
    try {
      // Sources resolve against the map's own path: absolute original files.
      return { map: new (tm().TraceMap)(text, mapPath), bytes: text.length };
    } catch {
      return none;
    }
  }
}

/** The absolute path of a frame's script, or undefined for internals, dependencies and non-files. */
function scriptPath(file: string): string | undefined {
  if (!file || file.startsWith('node:')) return undefined;
  let p = file;
  if (p.startsWith('file://')) {
    try {
      p = fileURLToPath(p);
    } catch {
      return undefined;
    }
  }
  if (!path.isAbsolute(p) || /[\\/]node_modules[\\/]/.test(p) || p.startsWith(AGENT_DIR)) return undefined;
  return p;
}

/** A map source resolved against the map's path, as a file path when it is one. */
function originalPath(source: string): string {
  if (source.startsWith('file://')) {
    try {
      return fileURLToPath(source);
    } catch {
      return source;
    }
  }
  return source;
}

/** The sourceMappingURL of a script, from its last non-empty line. */
function readAnnotation(script: string, maxFileBytes: number): string | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(script, 'r');
    const size = fs.fstatSync(fd).size;
    const start = Math.max(0, size - TAIL_BYTES);
    const tail = Buffer.alloc(size - start);
    fs.readSync(fd, tail, 0, tail.length, start);
    let text = tail.toString('utf8');
    // No line break in the tail: one long last line, an inline map; read it whole (bounded).
    if (start > 0 && !/[\r\n]/.test(text.trimEnd())) {
      if (size > maxFileBytes) return undefined;
      const all = Buffer.alloc(size);
      fs.readSync(fd, all, 0, size, 0);
      text = all.toString('utf8');
    }
    const lines = text.trimEnd().split(/\r?\n/);
    return ANNOTATION.exec(lines[lines.length - 1] ?? '')?.[1];
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
