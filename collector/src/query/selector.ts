/**
 * Pyroscope's label selectors (Prometheus syntax), as Grafana sends them:
 * `{service_name="payments-worker", queue="payments"}`. heapwatch filters on
 * equality only; any other matcher (`!=`, `=~`, `!~`) is refused with a
 * message that says so, rather than answered as if it held.
 */

export class SelectorError extends Error {}

export interface Selector {
  /** `service_name`, if the selector names one. */
  service?: string;
  /** `__profile_type__`, if the selector names one. */
  profileType?: string;
  /** Every other label, to match exactly. */
  labels: Record<string, string>;
}

const MAX_SELECTOR_LENGTH = 4096;

export function parseSelector(text: string): Selector {
  if (text.length > MAX_SELECTOR_LENGTH) throw new SelectorError(`label selector is over ${MAX_SELECTOR_LENGTH} characters`);
  const out: Selector = { labels: {} };
  const s = text.trim();
  if (s === '') return out;
  if (!s.startsWith('{') || !s.endsWith('}')) {
    throw new SelectorError(`label selector ${JSON.stringify(text)} must be {name="value", ...}`);
  }
  let i = 1;
  const end = s.length - 1;
  const skipSpace = (): void => {
    while (i < end && /\s/.test(s[i]!)) i++;
  };
  for (;;) {
    skipSpace();
    if (i >= end) break;
    const name = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(s.slice(i))?.[0];
    if (!name) throw new SelectorError(`label selector ${JSON.stringify(text)}: a label name is expected at position ${i}`);
    i += name.length;
    skipSpace();
    const op = /^(=~|!~|!=|=)/.exec(s.slice(i))?.[0];
    if (!op) throw new SelectorError(`label selector ${JSON.stringify(text)}: an operator is expected after ${name}`);
    if (op !== '=') throw new SelectorError(`label selector: ${name}${op}...: only = matchers are supported`);
    i += op.length;
    skipSpace();
    if (s[i] !== '"') throw new SelectorError(`label selector ${JSON.stringify(text)}: a quoted value is expected after ${name}=`);
    let value = '';
    i++;
    for (;;) {
      if (i >= end) throw new SelectorError(`label selector ${JSON.stringify(text)}: unterminated value of ${name}`);
      const c = s[i]!;
      if (c === '"') break;
      if (c === '\\') {
        const next = s[i + 1];
        value += next === 'n' ? '\n' : next === 't' ? '\t' : (next ?? '');
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    i++;
    if (name === 'service_name') out.service = value;
    else if (name === '__profile_type__') out.profileType = value;
    else out.labels[name] = value;
    skipSpace();
    if (s[i] === ',') i++;
    else if (i < end) throw new SelectorError(`label selector ${JSON.stringify(text)}: , or } expected at position ${i}`);
  }
  return out;
}
