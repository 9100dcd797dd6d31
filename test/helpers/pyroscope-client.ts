/**
 * A Connect client of Pyroscope's services, the way Grafana's data source
 * and Pyroscope's tools talk to a Pyroscope server: @connectrpc/connect-node
 * over HTTP/1.1, with @bufbuild/protobuf messages. The descriptors are
 * compiled from proto/pyroscope/ by `buf` (not by the collector's
 * protobufjs), so client and server share only the .proto files.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createFileRegistry, fromBinary, type FileRegistry } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { ROOT, tempDir } from './collector';

let registry: FileRegistry | undefined;

export function pyroscopeRegistry(): FileRegistry {
  if (!registry) {
    const out = path.join(tempDir('buf'), 'pyroscope.binpb');
    execFileSync(path.join(ROOT, 'node_modules/.bin/buf'), ['build', 'proto', '--path', 'proto/pyroscope', '-o', out], { cwd: ROOT });
    registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, fs.readFileSync(out)));
  }
  return registry;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyClient = Client<any>;

export function pyroscopeClient(baseUrl: string, service: string, json = false): AnyClient {
  const desc = pyroscopeRegistry().getService(service);
  if (!desc) throw new Error(`no service ${service} in proto/pyroscope`);
  return createClient(desc, createConnectTransport({ baseUrl, httpVersion: '1.1', useBinaryFormat: !json }));
}
