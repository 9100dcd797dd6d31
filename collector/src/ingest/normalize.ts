/**
 * A validated pprof, folded into what the store keeps: one entry per
 * distinct stack with its summed in-use objects and bytes, and each stack's
 * frames and allocation site, keyed by deterministic 64-bit ids.
 */
import { combine, hashString, toDecimal, type Hash64 } from '../hash';
import { siteIndex, type Frame } from '../leaks/site';
import type { ValidProfile } from './validate';

export interface NormalizedStack {
  /** UInt64 as a decimal string. */
  id: string;
  /** Leaf first. */
  frames: Frame[];
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

export function normalize({ profile: p, objectsIndex, bytesIndex }: ValidProfile): NormalizedStack[] {
  const strings = p.stringTable.strings;
  const functions = new Map<string, { name: string; file: string; startLine: number }>();
  for (const f of p.function) {
    functions.set(String(f.id), {
      name: strings[Number(f.name)] || strings[Number(f.systemName)] || '(anonymous)',
      file: strings[Number(f.filename)] ?? '',
      startLine: Number(f.startLine),
    });
  }
  // Each location expands to its frames (pprof lists inlined callees before
  // the caller they were inlined into) and hashes once per profile.
  const locations = new Map<string, { frames: Frame[]; hash: Hash64 }>();
  for (const l of p.location) {
    const frames: Frame[] = l.line.map((line) => {
      const fn = functions.get(String(line.functionId))!;
      return { function: fn.name, file: fn.file, line: Number(line.line) || fn.startLine };
    });
    const hash = combine(frames.map((f) => hashString(`${f.function}\0${f.file}\0${f.line}`)));
    locations.set(String(l.id), { frames, hash });
  }

  const stacks = new Map<string, NormalizedStack>();
  for (const s of p.sample) {
    const objects = Number(s.value[objectsIndex]);
    const bytes = Number(s.value[bytesIndex]);
    if (objects === 0 && bytes === 0) continue;
    const locs = s.locationId.map((id) => locations.get(String(id))!);
    const id = toDecimal(combine(locs.map((l) => l.hash)));
    const seen = stacks.get(id);
    if (seen) {
      seen.objects += objects;
      seen.bytes += bytes;
    } else {
      stacks.set(id, { id, frames: locs.flatMap((l) => l.frames), objects, bytes });
    }
  }
  return [...stacks.values()];
}
