/**
 * The worker thread that reads a heap snapshot and finds its holders
 * (holder-capture.ts starts it), so that the host's main thread and heap
 * never hold the snapshot: only the small result comes back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { findHolders, type HolderOptions } from './holders';
import { readSnapshot } from './snapshot-reader';

interface Job {
  file: string;
  options: Partial<HolderOptions>;
}

const job = workerData as Job;
const t0 = Date.now();
try {
  const snapshot = readSnapshot(job.file, true);
  try {
    const analysis = findHolders(snapshot, job.options);
    parentPort?.postMessage({ ok: true, analysis, parseMs: Date.now() - t0 });
  } finally {
    snapshot.close();
  }
} catch (e) {
  parentPort?.postMessage({ ok: false, error: String((e as Error)?.message ?? e) });
}
