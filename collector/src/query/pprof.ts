/** A merged profile (store/store.ts) as gzipped pprof, for go tool pprof and speedscope. */
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import { Function as PFunction, Label, Line, Location, Profile, Sample, StringTable, ValueType } from 'pprof-format';
import type { MergedProfile, MergedStack, ProfileQuery } from '../store/store';

const gzip = promisify(zlib.gzip);

/**
 * The base of a diff profile: its stacks go in negated, scaled by `scale`
 * ([objects, bytes]), each sample labelled `pprof::base=true`. That is what
 * `go tool pprof -diff_base` builds in memory, so such a file read on its own
 * shows new minus base, with percentages of the new profile.
 */
export interface DiffBase {
  profile: MergedProfile;
  scale: readonly [number, number];
}

/** Encodes a merged profile (minus `base`, for a diff) as gzipped pprof with the agent's sample types. */
export async function toPprof(m: MergedProfile, base?: DiffBase): Promise<Buffer> {
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
  const baseLabel = base ? [new Label({ key: strings.dedup('pprof::base'), str: strings.dedup('true') })] : [];
  const addSamples = (stacks: readonly MergedStack[], k: readonly [number, number], label: Label[]): void => {
    for (const s of stacks) {
      const objects = Math.round(s.objects * k[0]);
      const bytes = Math.round(s.bytes * k[1]);
      if (objects === 0 && bytes === 0) continue;
      samples.push(
        new Sample({
          locationId: s.functions.map((name, i) => locationOf(name, s.files[i] ?? '', s.lines[i] ?? 0).id),
          value: [objects, bytes],
          label,
        }),
      );
    }
  };
  addSamples(m.stacks, [1, 1], []);
  if (base) addSamples(base.profile.stacks, [-base.scale[0], -base.scale[1]], baseLabel);
  const what = `in-use memory averaged over ${m.profiles} snapshots per instance, summed over ${m.instances} instances`;
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
        base
          ? `heapwatch diff: ${m.query.service}, ${what}, minus the base (${isoRange(base.profile.query)}, ${base.profile.profiles} snapshots) scaled by ${base.scale[1].toPrecision(4)} (bytes)`
          : `heapwatch: ${m.query.service}, ${what}`,
      ),
    ],
  });
  return gzip(profile.encode());
}

function isoRange(q: ProfileQuery): string {
  return `${new Date(q.fromMs).toISOString()} to ${new Date(q.toMs).toISOString()}`;
}
