import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { status } from '@grpc/grpc-js';
import type { IngestRequest } from '@heapwatch/proto';
import {
  TRANSPORT_WORKER_MARK,
  type FromTransport,
  type SendResult,
  type ToTransport,
  type TransportSettings,
} from './transport-protocol';

export type { SendResult } from './transport-protocol';

/** Heap cap of the transport thread: it holds one request at a time plus grpc-js. */
const TRANSPORT_MAX_OLD_GENERATION_MB = 64;
/** Extra time past the RPC deadline before the main side gives up on a reply. */
const REPLY_GRACE_MS = 1_000;

export interface Transport {
  send(request: IngestRequest, timeoutMs: number): Promise<SendResult>;
  close(): void;
}

/**
 * Main-thread side of the gRPC transport: forwards each request to the
 * transport worker (see transport-worker.ts for why it is a thread) and
 * resolves with its outcome. Never rejects. A crashed worker fails the
 * pending sends with UNAVAILABLE and is respawned on the next send.
 */
export class WorkerTransport implements Transport {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: SendResult) => void; timer: NodeJS.Timeout }>();
  private closed = false;

  constructor(private readonly settings: TransportSettings) {}

  send(request: IngestRequest, timeoutMs: number): Promise<SendResult> {
    return new Promise<SendResult>((resolve) => {
      if (this.closed) {
        resolve({ ok: false, code: status.CANCELLED, details: 'transport closed' });
        return;
      }
      let worker: Worker;
      try {
        worker = this.ensureWorker();
      } catch (e) {
        resolve({ ok: false, code: status.UNAVAILABLE, details: `cannot start transport thread: ${String(e)}` });
        return;
      }
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.settle(id, { ok: false, code: status.DEADLINE_EXCEEDED, details: 'no reply from transport thread' });
      }, timeoutMs + REPLY_GRACE_MS);
      timer.unref();
      this.pending.set(id, { resolve, timer });
      try {
        const msg: ToTransport = { type: 'send', id, request, timeoutMs };
        worker.postMessage(msg);
      } catch (e) {
        this.settle(id, { ok: false, code: status.INTERNAL, details: String(e) });
      }
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    if (w) {
      try {
        w.postMessage({ type: 'close' } satisfies ToTransport);
      } catch {
        // already gone
      }
      // Give grpc-js a moment to close cleanly, then make sure the thread ends.
      const t = setTimeout(() => void w.terminate().catch(() => {}), 1000);
      t.unref();
    }
    this.failAll('transport closed', status.CANCELLED);
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(path.join(__dirname, 'transport-worker.js'), {
      workerData: { [TRANSPORT_WORKER_MARK]: true, settings: this.settings },
      // Do not inherit --require/--import of the agent: no agent in this thread.
      execArgv: [],
      resourceLimits: { maxOldGenerationSizeMb: TRANSPORT_MAX_OLD_GENERATION_MB },
      stdout: false,
      stderr: false,
    });
    w.on('message', (msg: FromTransport) => {
      if (msg.type === 'result') {
        const { type: _t, id, ...result } = msg;
        this.settle(id, result);
      }
    });
    w.on('error', (e) => {
      if (this.worker === w) this.worker = undefined;
      this.failAll(`transport thread failed: ${String(e)}`, status.UNAVAILABLE);
    });
    w.on('exit', () => {
      if (this.worker === w) {
        this.worker = undefined;
        this.failAll('transport thread exited', status.UNAVAILABLE);
      }
    });
    // The whole point of the thread: it must never keep the host alive.
    // After the listeners: attaching a 'message' listener re-refs the port.
    w.unref();
    this.worker = w;
    return w;
  }

  private settle(id: number, result: SendResult): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(result);
  }

  private failAll(details: string, code: number): void {
    for (const id of [...this.pending.keys()]) this.settle(id, { ok: false, code, details });
  }
}
