export interface InvoiceLine {
  sku: string;
  qty: number;
  unitPrice: number;
}

export interface InvoiceRequest {
  id: string;
  customer: string;
  currency: 'EUR' | 'USD';
  lines: InvoiceLine[];
}

export interface PricedInvoice extends InvoiceRequest {
  net: number;
  tax: number;
  total: number;
}

const VAT = 0.2;

export function priceInvoice(req: InvoiceRequest): PricedInvoice {
  const net = req.lines.reduce((s, l) => s + l.qty * l.unitPrice, 0);
  const tax = Math.round(net * VAT * 100) / 100;
  return { ...req, net, tax, total: net + tax };
}
