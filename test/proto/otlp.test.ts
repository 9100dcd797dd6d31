/**
 * proto/otlp/ is the part of opentelemetry-proto that the profiles signal
 * needs, written here; wire compatibility with OTel SDKs and collectors
 * rests on its names, types and field numbers being upstream's, and the
 * signal is still in development: its numbers changed between releases
 * (v1.10.0 renumbered Sample). This pins them at v1.10.0: the table is
 * transcribed from upstream's descriptors at that release
 * (opentelemetry/proto/profiles/v1development/profiles.proto,
 * collector/profiles/v1development/profiles_service.proto,
 * common/v1/common.proto, resource/v1/resource.proto), and the files,
 * compiled by buf (not by the collector's protobufjs), must match it.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createFileRegistry, fromBinary, ScalarType, type DescField, type FileRegistry } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/collector';

const P = 'opentelemetry.proto.profiles.v1development';
const C = 'opentelemetry.proto.common.v1';

/** field: [number, type] with type a scalar's proto name, a message's full name, or `repeated ...`. */
const UPSTREAM: Record<string, Record<string, [number, string]>> = {
  [`${P}.ProfilesDictionary`]: {
    mapping_table: [1, `repeated ${P}.Mapping`],
    location_table: [2, `repeated ${P}.Location`],
    function_table: [3, `repeated ${P}.Function`],
    link_table: [4, `repeated ${P}.Link`],
    string_table: [5, 'repeated string'],
    attribute_table: [6, `repeated ${P}.KeyValueAndUnit`],
    stack_table: [7, `repeated ${P}.Stack`],
  },
  [`${P}.ProfilesData`]: { resource_profiles: [1, `repeated ${P}.ResourceProfiles`], dictionary: [2, `${P}.ProfilesDictionary`] },
  [`${P}.ResourceProfiles`]: { resource: [1, 'opentelemetry.proto.resource.v1.Resource'], scope_profiles: [2, `repeated ${P}.ScopeProfiles`], schema_url: [3, 'string'] },
  [`${P}.ScopeProfiles`]: { scope: [1, `${C}.InstrumentationScope`], profiles: [2, `repeated ${P}.Profile`], schema_url: [3, 'string'] },
  [`${P}.Profile`]: {
    sample_type: [1, `${P}.ValueType`],
    samples: [2, `repeated ${P}.Sample`],
    time_unix_nano: [3, 'fixed64'],
    duration_nano: [4, 'uint64'],
    period_type: [5, `${P}.ValueType`],
    period: [6, 'int64'],
    profile_id: [7, 'bytes'],
    dropped_attributes_count: [8, 'uint32'],
    original_payload_format: [9, 'string'],
    original_payload: [10, 'bytes'],
    attribute_indices: [11, 'repeated int32'],
  },
  [`${P}.Link`]: { trace_id: [1, 'bytes'], span_id: [2, 'bytes'] },
  [`${P}.ValueType`]: { type_strindex: [1, 'int32'], unit_strindex: [2, 'int32'] },
  [`${P}.Sample`]: {
    stack_index: [1, 'int32'],
    attribute_indices: [2, 'repeated int32'],
    link_index: [3, 'int32'],
    values: [4, 'repeated int64'],
    timestamps_unix_nano: [5, 'repeated fixed64'],
  },
  [`${P}.Mapping`]: { memory_start: [1, 'uint64'], memory_limit: [2, 'uint64'], file_offset: [3, 'uint64'], filename_strindex: [4, 'int32'], attribute_indices: [5, 'repeated int32'] },
  [`${P}.Stack`]: { location_indices: [1, 'repeated int32'] },
  [`${P}.Location`]: { mapping_index: [1, 'int32'], address: [2, 'uint64'], lines: [3, `repeated ${P}.Line`], attribute_indices: [4, 'repeated int32'] },
  [`${P}.Line`]: { function_index: [1, 'int32'], line: [2, 'int64'], column: [3, 'int64'] },
  [`${P}.Function`]: { name_strindex: [1, 'int32'], system_name_strindex: [2, 'int32'], filename_strindex: [3, 'int32'], start_line: [4, 'int64'] },
  [`${P}.KeyValueAndUnit`]: { key_strindex: [1, 'int32'], value: [2, `${C}.AnyValue`], unit_strindex: [3, 'int32'] },
  'opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest': {
    resource_profiles: [1, `repeated ${P}.ResourceProfiles`],
    dictionary: [2, `${P}.ProfilesDictionary`],
  },
  'opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceResponse': {
    partial_success: [1, 'opentelemetry.proto.collector.profiles.v1development.ExportProfilesPartialSuccess'],
  },
  'opentelemetry.proto.collector.profiles.v1development.ExportProfilesPartialSuccess': { rejected_profiles: [1, 'int64'], error_message: [2, 'string'] },
  [`${C}.AnyValue`]: {
    string_value: [1, 'string'],
    bool_value: [2, 'bool'],
    int_value: [3, 'int64'],
    double_value: [4, 'double'],
    array_value: [5, `${C}.ArrayValue`],
    kvlist_value: [6, `${C}.KeyValueList`],
    bytes_value: [7, 'bytes'],
    string_value_strindex: [8, 'int32'],
  },
  [`${C}.ArrayValue`]: { values: [1, `repeated ${C}.AnyValue`] },
  [`${C}.KeyValueList`]: { values: [1, `repeated ${C}.KeyValue`] },
  [`${C}.KeyValue`]: { key: [1, 'string'], value: [2, `${C}.AnyValue`], key_strindex: [3, 'int32'] },
  [`${C}.InstrumentationScope`]: { name: [1, 'string'], version: [2, 'string'], attributes: [3, `repeated ${C}.KeyValue`], dropped_attributes_count: [4, 'uint32'] },
  [`${C}.EntityRef`]: { schema_url: [1, 'string'], type: [2, 'string'], id_keys: [3, 'repeated string'], description_keys: [4, 'repeated string'] },
  'opentelemetry.proto.resource.v1.Resource': {
    attributes: [1, `repeated ${C}.KeyValue`],
    dropped_attributes_count: [2, 'uint32'],
    entity_refs: [3, `repeated ${C}.EntityRef`],
  },
  'google.rpc.Status': { code: [1, 'int32'], message: [2, 'string'], details: [3, 'repeated google.protobuf.Any'] },
};

function otlpRegistry(): FileRegistry {
  const out = path.join(tempDir('buf'), 'otlp.binpb');
  execFileSync(path.join(ROOT, 'node_modules/.bin/buf'), ['build', 'proto/otlp', '-o', out], { cwd: ROOT });
  return createFileRegistry(fromBinary(FileDescriptorSetSchema, fs.readFileSync(out)));
}

function typeOf(f: DescField): string {
  const name = (t: string) => (f.fieldKind === 'list' || f.fieldKind === 'map' ? `repeated ${t}` : t);
  if (f.message) return name(f.message.typeName);
  if (f.enum) return name(f.enum.typeName);
  return name(ScalarType[f.scalar!]!.toLowerCase());
}

describe('proto/otlp keeps upstream names, types and field numbers (opentelemetry-proto v1.10.0)', () => {
  const registry = otlpRegistry();
  for (const [message, fields] of Object.entries(UPSTREAM)) {
    it(message, () => {
      const desc = registry.getMessage(message);
      expect(desc, `${message} is missing`).toBeDefined();
      // Every field of the file is upstream's: none missing, none added.
      expect(Object.fromEntries(desc!.fields.map((f) => [f.name, [f.number, typeOf(f)]]))).toEqual(fields);
    });
  }
  it('opentelemetry.proto.collector.profiles.v1development.ProfilesService', () => {
    const svc = registry.getService('opentelemetry.proto.collector.profiles.v1development.ProfilesService');
    expect(svc?.methods.map((m) => [m.name, m.input.typeName, m.output.typeName])).toEqual([
      ['Export', 'opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest', 'opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceResponse'],
    ]);
  });
  it('ResourceProfiles reserves 1000, as upstream does', () => {
    expect(fs.readFileSync(path.join(ROOT, 'proto/otlp/opentelemetry/proto/profiles/v1development/profiles.proto'), 'utf8')).toMatch(/message ResourceProfiles \{\s*reserved 1000;/);
  });
});
