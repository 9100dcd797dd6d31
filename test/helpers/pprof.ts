/** Builds real gzipped pprof heap profiles with known stacks, for tests and benchmarks. */
import * as zlib from 'node:zlib';
import { Function as PFunction, Line, Location, Profile, Sample, StringTable, ValueType } from 'pprof-format';

/** [function, file, line], leaf first. */
export type TestFrame = [name: string, file: string, line: number];

export interface TestStack {
  frames: TestFrame[];
  objects: number;
  bytes: number;
}

export function buildProfile(stacks: TestStack[], sampleTypes: [string, string][] = [['objects', 'count'], ['space', 'bytes']]): Profile {
  const strings = new StringTable();
  const functions = new Map<string, PFunction>();
  const locations = new Map<string, Location>();
  const loc = ([name, file, line]: TestFrame): Location => {
    const key = `${name}\0${file}\0${line}`;
    let l = locations.get(key);
    if (!l) {
      const fn = new PFunction({ id: functions.size + 1, name: strings.dedup(name), systemName: strings.dedup(name), filename: strings.dedup(file), startLine: line });
      functions.set(key, fn);
      l = new Location({ id: locations.size + 1, line: [new Line({ functionId: fn.id, line })] });
      locations.set(key, l);
    }
    return l;
  };
  return new Profile({
    sampleType: sampleTypes.map(([t, u]) => new ValueType({ type: strings.dedup(t), unit: strings.dedup(u) })),
    sample: stacks.map((s) => new Sample({ locationId: s.frames.map((f) => loc(f).id), value: [s.objects, s.bytes] })),
    location: [...locations.values()],
    function: [...functions.values()],
    stringTable: strings,
  });
}

export function gzipProfile(p: Profile): Buffer {
  return zlib.gzipSync(p.encode());
}
