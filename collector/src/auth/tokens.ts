/**
 * Who may do what: bearer tokens with scopes, each optionally bound to a
 * tenant (docs/security.md).
 *
 * Only the SHA-256 of each token is kept. A presented token is hashed and
 * compared with every known digest by `crypto.timingSafeEqual` (digests are
 * all 32 bytes, and every one is compared, match or not), so neither the
 * length nor the content of a token leaks through the answer's timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export type Scope = 'read' | 'write';
export const SCOPES: readonly Scope[] = ['read', 'write'];

/** A tenant name: what a token binds to and what every row carries ('' is the default tenant). */
export const TENANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export interface TokenSpec {
  token: string;
  scopes: readonly Scope[];
  /** '' for the default tenant. */
  tenant: string;
}

/** What a request may do, and on whose data. */
export interface Principal {
  scopes: ReadonlySet<Scope>;
  tenant: string;
}

/** With no token configured, everyone is this: both scopes on the default tenant. */
export const OPEN: Principal = { scopes: new Set(SCOPES), tenant: '' };

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export class TokenError extends Error {}

/**
 * A tokens file: one token a line, `TOKEN SCOPE[,SCOPE] [TENANT]`;
 * blank lines and lines starting with `#` are ignored.
 */
export function parseTokensFile(text: string, source = 'tokens file'): TokenSpec[] {
  const out: TokenSpec[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${source}:${i + 1}`;
    const [token, scopes, tenant = '', ...rest] = line.split(/\s+/);
    if (!token || !scopes || rest.length > 0) throw new TokenError(`${where}: expected "TOKEN SCOPE[,SCOPE] [TENANT]"`);
    out.push(checkSpec({ token, scopes: scopes.split(',') as Scope[], tenant }, where));
  });
  return out;
}

export function checkSpec(spec: TokenSpec, where: string): TokenSpec {
  if (spec.token === '' || /\s/.test(spec.token)) throw new TokenError(`${where}: a token is one word, not empty`);
  for (const s of spec.scopes) if (!SCOPES.includes(s)) throw new TokenError(`${where}: unknown scope ${JSON.stringify(s)}; expected read, write`);
  if (spec.scopes.length === 0) throw new TokenError(`${where}: no scope`);
  if (spec.tenant !== '' && !TENANT_PATTERN.test(spec.tenant)) {
    throw new TokenError(`${where}: tenant ${JSON.stringify(spec.tenant)} must match ${TENANT_PATTERN.source}`);
  }
  return spec;
}

export class Tokens {
  private readonly entries: { digest: Buffer; principal: Principal }[];

  constructor(specs: readonly TokenSpec[]) {
    const seen = new Set<string>();
    this.entries = specs.map((s) => {
      const d = digest(s.token);
      if (seen.has(d.toString('hex'))) throw new TokenError('the same token is configured twice');
      seen.add(d.toString('hex'));
      return { digest: d, principal: { scopes: new Set(s.scopes), tenant: s.tenant } };
    });
  }

  /** False when no token is configured: every request is `OPEN`. */
  get enabled(): boolean {
    return this.entries.length > 0;
  }

  /** The principal of `token`, or null when it is missing or unknown. */
  check(token: string | undefined): Principal | null {
    if (!this.enabled) return OPEN;
    if (token === undefined || token === '') return null;
    const d = digest(token);
    let found: Principal | null = null;
    for (const e of this.entries) if (timingSafeEqual(e.digest, d)) found = e.principal;
    return found;
  }
}

/** The token of an `authorization: Bearer TOKEN` header value. */
export function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}
