/**
 * proto/pyroscope/ is a subset of Grafana Pyroscope's protos, written here;
 * wire compatibility with Grafana and Pyroscope's SDKs rests on its names
 * and field numbers being upstream's. This pins them: the table below is
 * transcribed from github.com/grafana/pyroscope api/ (querier/v1, types/v1,
 * push/v1, google/v1), and the files, compiled by buf, must match it.
 */
import { describe, expect, it } from 'vitest';
import { pyroscopeRegistry } from '../helpers/pyroscope-client';

const UPSTREAM: Record<string, Record<string, number>> = {
  'types.v1.LabelPair': { name: 1, value: 2 },
  'types.v1.ProfileType': { ID: 1, name: 2, sample_type: 4, sample_unit: 5, period_type: 6, period_unit: 7 },
  'types.v1.Labels': { labels: 1 },
  'types.v1.Series': { labels: 1, points: 2 },
  'types.v1.Point': { value: 1, timestamp: 2 },
  'types.v1.LabelValuesRequest': { name: 1, matchers: 2, start: 3, end: 4 },
  'types.v1.LabelValuesResponse': { names: 1 },
  'types.v1.LabelNamesRequest': { matchers: 1, start: 2, end: 3 },
  'types.v1.LabelNamesResponse': { names: 1 },
  'types.v1.StackTraceSelector': { call_site: 1, go_pgo: 2 },
  'types.v1.GetProfileStatsResponse': { data_ingested: 1, oldest_profile_time: 2, newest_profile_time: 3 },
  'querier.v1.ProfileTypesRequest': { start: 1, end: 2 },
  'querier.v1.ProfileTypesResponse': { profile_types: 1 },
  'querier.v1.SeriesRequest': { matchers: 1, label_names: 2, start: 3, end: 4 },
  'querier.v1.SeriesResponse': { labels_set: 2 },
  'querier.v1.SelectMergeStacktracesRequest': { profile_typeID: 1, label_selector: 2, start: 3, end: 4, max_nodes: 5, format: 6, stack_trace_selector: 7, profile_id_selector: 8 },
  'querier.v1.SelectMergeStacktracesResponse': { flamegraph: 1, tree: 2 },
  'querier.v1.DiffRequest': { left: 1, right: 2 },
  'querier.v1.DiffResponse': { flamegraph: 1 },
  'querier.v1.FlameGraph': { names: 1, levels: 2, total: 3, max_self: 4 },
  'querier.v1.FlameGraphDiff': { names: 1, levels: 2, total: 3, max_self: 4, leftTicks: 5, rightTicks: 6 },
  'querier.v1.Level': { values: 1 },
  'querier.v1.SelectMergeProfileRequest': { profile_typeID: 1, label_selector: 2, start: 3, end: 4, max_nodes: 5, stack_trace_selector: 6, profile_id_selector: 7 },
  'querier.v1.SelectSeriesRequest': { profile_typeID: 1, label_selector: 2, start: 3, end: 4, group_by: 5, step: 6, aggregation: 7, stack_trace_selector: 8, limit: 9 },
  'querier.v1.SelectSeriesResponse': { series: 1 },
  'push.v1.PushRequest': { series: 1 },
  'push.v1.RawProfileSeries': { labels: 1, samples: 2 },
  'push.v1.RawSample': { raw_profile: 1, ID: 2 },
  'google.v1.Profile': { sample_type: 1, sample: 2, mapping: 3, location: 4, function: 5, string_table: 6, time_nanos: 9, duration_nanos: 10, period_type: 11, period: 12, comment: 13, default_sample_type: 14 },
  'google.v1.Sample': { location_id: 1, value: 2, label: 3 },
  'google.v1.Location': { id: 1, mapping_id: 2, address: 3, line: 4, is_folded: 5 },
  'google.v1.Line': { function_id: 1, line: 2 },
  'google.v1.Function': { id: 1, name: 2, system_name: 3, filename: 4, start_line: 5 },
};

const METHODS: Record<string, string[]> = {
  'querier.v1.QuerierService': ['ProfileTypes', 'LabelValues', 'LabelNames', 'Series', 'SelectMergeStacktraces', 'SelectMergeProfile', 'SelectSeries', 'Diff', 'GetProfileStats'],
  'push.v1.PusherService': ['Push'],
};

describe('proto/pyroscope keeps upstream names and field numbers', () => {
  const registry = pyroscopeRegistry();
  for (const [message, fields] of Object.entries(UPSTREAM)) {
    it(message, () => {
      const desc = registry.getMessage(message);
      expect(desc, `${message} is missing`).toBeDefined();
      const actual = Object.fromEntries(desc!.fields.filter((f) => f.name in fields).map((f) => [f.name, f.number]));
      expect(actual).toEqual(fields);
    });
  }
  for (const [service, methods] of Object.entries(METHODS)) {
    it(service, () => {
      expect(registry.getService(service)?.methods.map((m) => m.name).sort()).toEqual([...methods].sort());
    });
  }
});
