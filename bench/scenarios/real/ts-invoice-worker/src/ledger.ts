import type { PricedInvoice } from './invoice';

export interface LedgerEntry {
  invoiceId: string;
  account: string;
  postedAt: string;
  lines: string[];
  memo: string;
}

/** The day's entries for the accounting export. */
const ledger: LedgerEntry[] = [];

function money(n: number, currency: string): string {
  return `${n.toFixed(2)} ${currency}`;
}

export function buildLedgerEntry(invoice: PricedInvoice): LedgerEntry {
  const lines = invoice.lines.map(
    (l) => `${invoice.id};${invoice.customer};${l.sku};${l.qty};${money(l.unitPrice, invoice.currency)};${money(l.qty * l.unitPrice, invoice.currency)}`,
  );
  return {
    invoiceId: invoice.id,
    account: `4400-${invoice.customer}`,
    postedAt: new Date().toISOString(),
    lines,
    memo: `Invoice ${invoice.id} for ${invoice.customer}: net ${money(invoice.net, invoice.currency)}, tax ${money(invoice.tax, invoice.currency)}, total ${money(invoice.total, invoice.currency)}. `.repeat(6),
  };
}

export function recordInvoice(invoice: PricedInvoice): void {
  // BUG: the export that should empty the ledger at end of day is never scheduled.
  ledger.push(buildLedgerEntry(invoice));
}
