/**
 * Collector addresses: `host:port`, `[v6]:port`, or the same behind grpc's
 * `dns:///` scheme (accepted so a grpc-js style target keeps working; it is
 * stripped). The port is required so that a typo fails loudly.
 */
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):(\d{1,5})$/;
const DNS_SCHEME = 'dns:///';

export interface CollectorAddress {
  /** As it goes in a URL: IPv6 literals keep their brackets. */
  host: string;
  port: number;
}

export function parseCollectorAddress(raw: string): CollectorAddress | undefined {
  let s = raw.trim();
  if (s.startsWith(DNS_SCHEME)) s = s.slice(DNS_SCHEME.length);
  const m = HOST_PORT.exec(s);
  if (!m) return undefined;
  const port = Number(m[2]);
  return m[1] !== undefined && port > 0 && port < 65536 ? { host: m[1], port } : undefined;
}

/** The URL node:http2 connects to. */
export function collectorUrl(a: CollectorAddress, tls: boolean): string {
  return `${tls ? 'https' : 'http'}://${a.host}:${a.port}`;
}
