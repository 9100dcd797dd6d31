/**
 * A validated pprof, folded into what the store keeps: one entry per
 * distinct stack with its summed in-use objects and bytes, and each stack's
 * frames, keyed by deterministic 64-bit ids.
 *
 * The result is columns (typed arrays), not an object per stack: ingest
 * runs this for every profile, ~100 times a second, and at that rate the
 * garbage of 5,000 stack objects, their decimal id strings and the Map that
 * deduplicated them cost more than the hashing itself. Ids stay two 32-bit
 * halves until the store (the profiles insert builds the UInt64 in SQL);
 * a decimal string is made only for stacks the store does not have yet.
 */
import { combine, combineIndexedInto, hashStringPrefix, hashStringSuffix, toDecimal, type Hash64, type HashState } from '../hash';
import type { Frame } from '../model/site';
import type { ValidProfile } from './validate';

export interface NormalizedProfile {
  /** Distinct stacks; the arrays below may be longer. */
  readonly count: number;
  /** Stack k's id is the UInt64 `idHi[k] * 2^32 + idLo[k]`. */
  readonly idHi: Uint32Array;
  readonly idLo: Uint32Array;
  readonly objects: Float64Array;
  readonly bytes: Float64Array;
  /**
   * Stack k's frames, leaf first, built when asked for: consecutive profiles
   * of one instance repeat nearly all their stacks, which the ingester has
   * stored already and never asks about again.
   */
  frames(k: number): Frame[];
}

/** The UInt64 stack id as ClickHouse takes it in JSON: a decimal string. */
export function stackIdDecimal(n: NormalizedProfile, k: number): string {
  return toDecimal([n.idHi[k]!, n.idLo[k]!]);
}

export function normalize({ profile: p, objectsIndex, bytesIndex, frameLocation, lineFunction }: ValidProfile): NormalizedProfile {
  const strings = p.strings;
  const fnCount = p.function.length;
  const fnName: string[] = new Array<string>(fnCount);
  const fnFile: string[] = new Array<string>(fnCount);
  const fnStartLine = new Float64Array(fnCount);
  // A frame hashes as `function\0file\0line`; the part before the line is
  // hashed once per function, not once per location.
  const fnPrefix: HashState[] = new Array<HashState>(fnCount);
  for (let i = 0; i < fnCount; i++) {
    const f = p.function[i]!;
    const name = strings[Number(f.name)] || strings[Number(f.systemName)] || '(anonymous)';
    const file = strings[Number(f.filename)] ?? '';
    fnName[i] = name;
    fnFile[i] = file;
    fnStartLine[i] = Number(f.startLine);
    fnPrefix[i] = hashStringPrefix(`${name}\0${file}\0`);
  }
  const { lineStart, lineNumber } = p;
  const lineOf = (j: number): number => Number(lineNumber[j]) || fnStartLine[lineFunction[j]!]!;

  // Each location expands to its frames (pprof lists inlined callees before
  // the caller they were inlined into) and hashes once per profile.
  const locationCount = p.locationCount;
  const locationHi = new Uint32Array(locationCount);
  const locationLo = new Uint32Array(locationCount);
  for (let k = 0; k < locationCount; k++) {
    const first = lineStart[k]!;
    const end = lineStart[k + 1]!;
    const parts: Hash64[] = [];
    for (let j = first; j < end; j++) parts.push(hashStringSuffix(fnPrefix[lineFunction[j]!]!, String(lineOf(j))));
    const [hi, lo] = combine(parts);
    locationHi[k] = hi;
    locationLo[k] = lo;
  }

  // Stacks deduplicated by id in an open-addressing table of stack index + 1.
  const sampleCount = p.sampleCount;
  let slots = 16;
  while (slots < sampleCount * 2) slots *= 2;
  const mask = slots - 1;
  const table = new Int32Array(slots);
  const idHi = new Uint32Array(sampleCount);
  const idLo = new Uint32Array(sampleCount);
  const objects = new Float64Array(sampleCount);
  const bytes = new Float64Array(sampleCount);
  const firstSample = new Int32Array(sampleCount);
  const id = new Uint32Array(2);
  const { locationStart, valueStart, values } = p;
  let count = 0;
  for (let i = 0; i < sampleCount; i++) {
    const o = Number(values[valueStart[i]! + objectsIndex]);
    const b = Number(values[valueStart[i]! + bytesIndex]);
    if (o === 0 && b === 0) continue;
    combineIndexedInto(locationHi, locationLo, frameLocation, locationStart[i]!, locationStart[i + 1]!, id);
    const hi = id[0]!;
    const lo = id[1]!;
    let slot = (lo ^ Math.imul(hi, 0x9e3779b1)) & mask;
    for (;;) {
      const entry = table[slot]!;
      if (entry === 0) {
        table[slot] = count + 1;
        idHi[count] = hi;
        idLo[count] = lo;
        objects[count] = o;
        bytes[count] = b;
        firstSample[count] = i;
        count++;
        break;
      }
      const k = entry - 1;
      if (idHi[k] === hi && idLo[k] === lo) {
        objects[k] = objects[k]! + o;
        bytes[k] = bytes[k]! + b;
        break;
      }
      slot = (slot + 1) & mask;
    }
  }

  return {
    count,
    idHi,
    idLo,
    objects,
    bytes,
    frames(k: number): Frame[] {
      const out: Frame[] = [];
      const i = firstSample[k]!;
      for (let t = locationStart[i]!; t < locationStart[i + 1]!; t++) {
        const loc = frameLocation[t]!;
        for (let j = lineStart[loc]!; j < lineStart[loc + 1]!; j++) {
          const fn = lineFunction[j]!;
          out.push({ function: fnName[fn]!, file: fnFile[fn]!, line: lineOf(j) });
        }
      }
      return out;
    },
  };
}
