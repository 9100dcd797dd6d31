/**
 * A validated pprof, folded into what the store keeps: one entry per
 * distinct stack with its summed in-use objects and bytes, and each stack's
 * frames and allocation site, keyed by deterministic 64-bit ids.
 */
import { combine, combineIndexed, hashString, toDecimal } from '../hash';
import { siteIndex, type Frame } from '../leaks/site';
import type { Int } from './pprof-reader';
import type { ValidProfile } from './validate';

export interface NormalizedStack {
  /** UInt64 as a decimal string. */
  id: string;
  /** Leaf first. */
  readonly frames: Frame[];
  objects: number;
  bytes: number;
}

export interface Site {
  id: string;
  frame: Frame;
}

export function siteOf(frames: readonly Frame[]): Site {
  const frame = frames[siteIndex(frames)] ?? { function: '(unknown)', file: '', line: 0 };
  return { id: toDecimal(hashString(`${frame.function}\0${frame.file}\0${frame.line}`)), frame };
}

/**
 * A stack's frames are expanded only when asked for: consecutive profiles of
 * one instance repeat nearly all their stacks, which the ingester has stored
 * already and never asks about again.
 */
class Stack implements NormalizedStack {
  constructor(
    readonly id: string,
    public objects: number,
    public bytes: number,
    private readonly order: Int32Array,
    private readonly start: number,
    private readonly end: number,
    private readonly locationFrames: Frame[][],
  ) {}

  get frames(): Frame[] {
    const out: Frame[] = [];
    for (let k = this.start; k < this.end; k++) for (const f of this.locationFrames[this.order[k]!]!) out.push(f);
    return out;
  }
}

export function normalize({ profile: p, objectsIndex, bytesIndex }: ValidProfile): NormalizedStack[] {
  const strings = p.strings;
  const functions = new Map<Int, { name: string; file: string; startLine: number }>();
  for (const f of p.function) {
    functions.set(f.id, {
      name: strings[Number(f.name)] || strings[Number(f.systemName)] || '(anonymous)',
      file: strings[Number(f.filename)] ?? '',
      startLine: Number(f.startLine),
    });
  }
  // Each location expands to its frames (pprof lists inlined callees before
  // the caller they were inlined into) and hashes once per profile.
  const locationIndex = new Map<Int, number>();
  const locationFrames: Frame[][] = [];
  const locationHi: number[] = [];
  const locationLo: number[] = [];
  for (const l of p.location) {
    const frames: Frame[] = l.lines.map((line) => {
      const fn = functions.get(line.functionId)!;
      return { function: fn.name, file: fn.file, line: Number(line.line) || fn.startLine };
    });
    const [hi, lo] = combine(frames.map((f) => hashString(`${f.function}\0${f.file}\0${f.line}`)));
    // A repeated location id: the last definition wins, as a Map.set would.
    let index = locationIndex.get(l.id);
    if (index === undefined) {
      index = locationFrames.length;
      locationIndex.set(l.id, index);
    }
    locationFrames[index] = frames;
    locationHi[index] = hi;
    locationLo[index] = lo;
  }
  const ids = p.locationIds;
  const order = new Int32Array(ids.length);
  for (let k = 0; k < ids.length; k++) order[k] = locationIndex.get(ids[k]!)!;

  const stacks = new Map<string, Stack>();
  const { locationStart, valueStart, values } = p;
  for (let i = 0; i < p.sampleCount; i++) {
    const objects = Number(values[valueStart[i]! + objectsIndex]);
    const bytes = Number(values[valueStart[i]! + bytesIndex]);
    if (objects === 0 && bytes === 0) continue;
    const start = locationStart[i]!;
    const end = locationStart[i + 1]!;
    const id = toDecimal(combineIndexed(locationHi, locationLo, order, start, end));
    const seen = stacks.get(id);
    if (seen) {
      seen.objects += objects;
      seen.bytes += bytes;
    } else {
      stacks.set(id, new Stack(id, objects, bytes, order, start, end, locationFrames));
    }
  }
  return [...stacks.values()];
}
