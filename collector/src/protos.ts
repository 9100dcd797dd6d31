/**
 * The protobufjs roots of the .proto trees the collector speaks besides its
 * own gRPC contract (proto/pyroscope/, proto/otlp/), loaded once per
 * process, imports resolved against the tree's include root.
 */
import * as path from 'node:path';
import * as protobuf from 'protobufjs';

const roots = new Map<string, protobuf.Root>();

export function protoRoot(includeRoot: string, files: readonly string[]): protobuf.Root {
  const key = `${includeRoot}\0${files.join('\0')}`;
  let root = roots.get(key);
  if (!root) {
    root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(includeRoot, target));
    root.loadSync([...files], { keepCase: false });
    root.resolveAll();
    roots.set(key, root);
  }
  return root;
}
