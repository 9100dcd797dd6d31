import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Tests run the compiled agent and collector in child processes, and the
 * collector serves the built web UI: build them first. The stores and
 * files tests make go under one directory of this run (tempDir in
 * collector.ts reads HEAPWATCH_TEST_TMP), removed when the run ends.
 */
export default function setup(): () => void {
  const root = path.resolve(__dirname, '../..');
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-b'], { cwd: root, stdio: 'inherit' });
  execFileSync(process.execPath, [path.join(root, 'collector/ui/build.mjs')], { cwd: root, stdio: 'inherit' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapwatch-test-run-'));
  process.env.HEAPWATCH_TEST_TMP = dir;
  return () => fs.rmSync(dir, { recursive: true, force: true });
}
