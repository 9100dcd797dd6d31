/**
 * The embedded store's data directory, checked before the engine opens it:
 * chDB given a path under /proc spun at 100 % CPU and never started, and
 * given a file it said only "EEXIST". Here each of those is one clear line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Filesystems that hold no data: proc, sysfs, debugfs, securityfs, cgroup, cgroup2, tracefs. */
const PSEUDO_FILESYSTEMS = new Map([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x64626720, 'debugfs'],
  [0x73636673, 'securityfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x74726163, 'tracefs'],
]);

/** Creates `dir` if need be and makes sure the store can keep data there; throws a one-line reason otherwise. */
export function prepareDataDir(dir: string): void {
  const abs = path.resolve(dir);
  const fail = (why: string): never => {
    throw new Error(`--data ${abs}: ${why}`);
  };
  // The nearest part of the path that exists decides: mkdir -p under /proc
  // loops for ever in Node (ENOENT for the child, EEXIST for the parent).
  const missing: string[] = [];
  let existing = abs;
  let stat: fs.Stats | undefined;
  for (;;) {
    try {
      stat = fs.statSync(existing, { throwIfNoEntry: false });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') fail('a part of the path is a file, not a directory');
      throw err;
    }
    if (stat) break;
    missing.unshift(existing);
    existing = path.dirname(existing);
  }
  if (!stat.isDirectory()) fail(existing === abs ? 'is a file, not a directory' : `${existing} is a file, not a directory`);
  const type = PSEUDO_FILESYSTEMS.get(Number(fs.statfsSync(existing).type));
  if (type) fail(`is on the ${type} pseudo-filesystem, which cannot hold data`);
  for (const dir of missing) {
    try {
      fs.mkdirSync(dir);
    } catch (err) {
      fail(`cannot be created (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  const probe = path.join(abs, `.heapwatch-write-test-${process.pid}`);
  try {
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (err) {
    fail(`is not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}
