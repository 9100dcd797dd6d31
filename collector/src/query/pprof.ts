/** A merged profile (store/store.ts) as gzipped pprof, for go tool pprof and speedscope. */
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import { Function as PFunction, Line, Location, Profile, Sample, StringTable, ValueType } from 'pprof-format';
import type { MergedProfile } from '../store/store';

const gzip = promisify(zlib.gzip);

/** Encodes a merged profile as gzipped pprof with the agent's sample types. */
export async function toPprof(m: MergedProfile): Promise<Buffer> {
  const strings = new StringTable();
  const functions = new Map<string, PFunction>();
  const locations = new Map<string, Location>();
  const samples: Sample[] = [];
  const locationOf = (name: string, file: string, line: number): Location => {
    const fnKey = `${name}\0${file}`;
    let fn = functions.get(fnKey);
    if (!fn) {
      fn = new PFunction({
        id: functions.size + 1,
        name: strings.dedup(name),
        systemName: strings.dedup(name),
        filename: strings.dedup(file),
        startLine: line,
      });
      functions.set(fnKey, fn);
    }
    const locKey = `${fnKey}\0${line}`;
    let loc = locations.get(locKey);
    if (!loc) {
      loc = new Location({ id: locations.size + 1, line: [new Line({ functionId: fn.id, line })] });
      locations.set(locKey, loc);
    }
    return loc;
  };
  for (const s of m.stacks) {
    const objects = Math.round(s.objects);
    const bytes = Math.round(s.bytes);
    if (objects === 0 && bytes === 0) continue;
    samples.push(
      new Sample({
        locationId: s.functions.map((name, i) => locationOf(name, s.files[i] ?? '', s.lines[i] ?? 0).id),
        value: [objects, bytes],
      }),
    );
  }
  const profile = new Profile({
    sampleType: [
      new ValueType({ type: strings.dedup('objects'), unit: strings.dedup('count') }),
      new ValueType({ type: strings.dedup('space'), unit: strings.dedup('bytes') }),
    ],
    periodType: new ValueType({ type: strings.dedup('space'), unit: strings.dedup('bytes') }),
    defaultSampleType: strings.dedup('space'),
    sample: samples,
    location: [...locations.values()],
    function: [...functions.values()],
    stringTable: strings,
    timeNanos: BigInt(m.query.fromMs) * 1_000_000n,
    durationNanos: BigInt(Math.max(0, m.query.toMs - m.query.fromMs)) * 1_000_000n,
    comment: [
      strings.dedup(
        `heapwatch: ${m.query.service}, in-use memory averaged over ${m.profiles} snapshots per instance, summed over ${m.instances} instances`,
      ),
    ],
  });
  return gzip(profile.encode());
}
