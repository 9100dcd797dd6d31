import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

/** Tests run the compiled agent and collector in child processes, and the collector serves the built web UI: build them first. */
export default function setup(): void {
  const root = path.resolve(__dirname, '../..');
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-b'], { cwd: root, stdio: 'inherit' });
  execFileSync(process.execPath, [path.join(root, 'collector/ui/build.mjs')], { cwd: root, stdio: 'inherit' });
}
