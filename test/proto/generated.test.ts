/**
 * The TypeScript types under proto/src/generated come from the .proto files;
 * this fails when someone edits one without regenerating the other
 * (`npm run generate -w proto`).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/collector';

function files(dir: string, base = dir): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? files(full, base) : [path.relative(base, full)];
  });
}

describe('generated proto types', () => {
  it('match the .proto files', () => {
    const out = tempDir('proto-gen');
    const script = JSON.parse(fs.readFileSync(path.join(ROOT, 'proto/package.json'), 'utf8')).scripts.generate as string;
    const args = script.split(/\s+/).slice(1).map((a) => (a === '--outDir=src/generated' ? `--outDir=${out}` : a));
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/@grpc/proto-loader/build/bin/proto-loader-gen-types.js'), ...args], {
      cwd: path.join(ROOT, 'proto'),
      stdio: 'pipe',
    });
    const committed = path.join(ROOT, 'proto/src/generated');
    expect(files(out).sort()).toEqual(files(committed).sort());
    for (const f of files(out)) {
      expect(fs.readFileSync(path.join(out, f), 'utf8'), f).toBe(fs.readFileSync(path.join(committed, f), 'utf8'));
    }
  });
});
