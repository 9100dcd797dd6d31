// @leak buildLedgerEntry
// @holder recordInvoice
// @file src/ledger.ts
// @bytes-per-job 2500
// @jobs-per-sec 8
// A TypeScript BullMQ worker (compiled by tsc with source maps: the runner
// builds src/ into dist/ and runs dist/worker.js) that prices invoices and
// books them. recordInvoice (src/ledger.ts) appends every booked invoice's
// ledger entry, built by buildLedgerEntry, to an in-memory ledger meant as a
// day's batch for the accounting export; the export never runs, so the
// ledger grows by ~2.5 KB per invoice: ~1.2 MB a minute at 8 jobs/s. The
// site a developer can act on is buildLedgerEntry in src/ledger.ts, not
// dist/ledger.js.
import { randomUUID } from 'node:crypto';
import { Queue, Worker, type Job } from 'bullmq';
import { priceInvoice, type InvoiceRequest } from './invoice';
import { recordInvoice } from './ledger';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { REDIS, BULLMQ_PREFIX, onShutdown, every } = require('../../lib/services');

const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 8;
const QUEUE = 'invoices';

async function processInvoice(job: Job<InvoiceRequest>): Promise<{ total: number }> {
  const invoice = priceInvoice(job.data);
  await new Promise((r) => setTimeout(r, 1)); // the tax service round trip
  recordInvoice(invoice);
  return { total: invoice.total };
}

const queue = new Queue<InvoiceRequest>(QUEUE, { connection: REDIS, prefix: BULLMQ_PREFIX });
const worker = new Worker<InvoiceRequest, { total: number }>(QUEUE, processInvoice, { connection: REDIS, prefix: BULLMQ_PREFIX, concurrency: 4 });
worker.on('error', () => {});
onShutdown(async () => {
  await worker.close(true);
  await queue.obliterate({ force: true });
  await queue.close();
});

let seq = 0;
every(JOBS_PER_SEC, () => {
  seq++;
  const req: InvoiceRequest = {
    id: randomUUID(),
    customer: `cust-${seq % 700}`,
    currency: seq % 4 ? 'EUR' : 'USD',
    lines: Array.from({ length: 6 }, (_, i) => ({ sku: `sku-${(seq * 13 + i) % 4000}`, qty: (i % 4) + 1, unitPrice: 9.5 + i })),
  };
  queue.add('invoice', req, { removeOnComplete: true, removeOnFail: true }).catch(() => {});
});
