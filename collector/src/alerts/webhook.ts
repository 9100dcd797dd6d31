/**
 * Sends leak events (leaks/transitions.ts) to webhooks: one JSON POST per
 * event and URL, in order per URL, retried with exponential backoff and
 * jitter up to a bounded number of attempts. Each URL has a bounded queue;
 * what does not fit, and what runs out of attempts or is refused with a
 * 4xx, is dropped and counted. Timers are unref'd (the notifier never keeps
 * the collector alive); close() tries what is queued once more, within a
 * deadline.
 *
 * The body is a Slack-compatible incoming-webhook message (`text`, in
 * Slack's mrkdwn) carrying the event's fields beside it (docs/integrations.md).
 */
import type { Logger } from '../log';
import { BoundedSet } from '../lru';
import { formatBytes, formatDuration, type LeakEvent } from '../leaks';
import { SECOND_MS } from '../units';

export interface WebhookOptions {
  urls: readonly string[];
  /** Base of the links in messages: the collector's HTTP API as receivers reach it. */
  linkBase: string;
  /** Events waiting per URL, at most. */
  maxQueue: number;
  /** Attempts per event and URL, the first included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** One POST's time limit. */
  timeoutMs: number;
}

export const DEFAULT_WEBHOOK: Omit<WebhookOptions, 'urls' | 'linkBase'> = {
  maxQueue: 1000,
  maxAttempts: 12,
  baseDelayMs: 500,
  maxDelayMs: 60 * SECOND_MS,
  timeoutMs: 10 * SECOND_MS,
};

export interface WebhookPayload extends LeakEvent {
  /** The leak report of the service. */
  url: string;
  /** Slack's incoming-webhook text. */
  text: string;
}

function subjectText(e: LeakEvent): string {
  if (e.kind === 'site') return `\`${e.function || '(anonymous)'}\` (${e.file}:${e.line})`;
  return `${e.kind === 'heap' ? 'V8 heap' : 'off-heap (external) memory'} of ${e.instance ?? 'an instance'}`;
}

export function payload(e: LeakEvent, linkBase: string): WebhookPayload {
  const url = `${linkBase.replace(/\/+$/, '')}/api/v1/leaks?service=${encodeURIComponent(e.service)}`;
  const text =
    e.event === 'flagged'
      ? `:rotating_light: heapwatch: leak flagged in *${e.service}*: ${subjectText(e)} grows ${formatBytes(e.growthBytesPerHour)}/h` +
        `${e.timeToLimitSeconds !== null ? `; heap limit in ~${formatDuration(e.timeToLimitSeconds)}` : ''}. <${url}|leak report>`
      : `:white_check_mark: heapwatch: leak cleared in *${e.service}*: ${subjectText(e)} (flagged since ${e.firstFlaggedAt}). <${url}|leak report>`;
  return { ...e, url, text };
}

interface Pending {
  key: string;
  body: string;
  attempts: number;
}

class Destination {
  readonly queue: Pending[] = [];
  timer: NodeJS.Timeout | undefined;
  running: Promise<void> | undefined;

  constructor(readonly url: string) {}
}

export class WebhookNotifier {
  readonly counters = { sent: 0, retried: 0, dropped: 0 };
  private readonly opts: WebhookOptions;
  private readonly destinations: Destination[];
  /** Events already queued (id and event): a second evaluation that saw the same change sends nothing. */
  private readonly seen = new BoundedSet(10_000);
  private closing = false;

  constructor(
    opts: Partial<WebhookOptions> & Pick<WebhookOptions, 'urls' | 'linkBase'>,
    private readonly log: Logger,
  ) {
    this.opts = { ...DEFAULT_WEBHOOK, ...opts };
    this.destinations = this.opts.urls.map((u) => new Destination(u));
  }

  metrics(): Record<string, number> {
    return {
      alert_webhook_sent_total: this.counters.sent,
      alert_webhook_retried_total: this.counters.retried,
      alert_webhook_dropped_total: this.counters.dropped,
      alert_webhook_queue_length: this.destinations.reduce((a, d) => a + d.queue.length, 0),
    };
  }

  notify(events: readonly LeakEvent[]): void {
    for (const e of events) {
      const key = `${e.id}:${e.event}`;
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      const body = JSON.stringify(payload(e, this.opts.linkBase));
      for (const d of this.destinations) {
        if (this.closing || d.queue.length >= this.opts.maxQueue) {
          this.counters.dropped++;
          this.log.warn(`alerts: ${d.url}: queue full (${this.opts.maxQueue}), dropped the ${e.event} event ${e.id}`);
          continue;
        }
        d.queue.push({ key, body, attempts: 0 });
        if (!d.running && !d.timer) this.pump(d);
      }
    }
  }

  /** Stops taking events and tries what is queued once more, for at most `deadlineMs`. */
  async close(deadlineMs = 5 * SECOND_MS): Promise<void> {
    this.closing = true;
    for (const d of this.destinations) {
      if (d.timer) {
        clearTimeout(d.timer);
        d.timer = undefined;
        this.pump(d);
      }
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.destinations.map((d) => d.running)),
      new Promise<void>((r) => {
        timer = setTimeout(r, deadlineMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    for (const d of this.destinations) {
      this.counters.dropped += d.queue.length;
      d.queue.length = 0;
    }
  }

  private pump(d: Destination): void {
    d.running = this.drain(d).finally(() => {
      d.running = undefined;
      // An event queued while the last attempt was settling.
      if (d.queue.length && !d.timer) this.pump(d);
    });
  }

  /** Sends the queue head first; on a retryable failure, waits (timer) and comes back. */
  private async drain(d: Destination): Promise<void> {
    while (d.queue.length) {
      const head = d.queue[0]!;
      head.attempts++;
      const outcome = await this.post(d.url, head.body);
      if (outcome === 'sent') {
        this.counters.sent++;
        d.queue.shift();
        continue;
      }
      if (outcome === 'refused' || head.attempts >= this.opts.maxAttempts || this.closing) {
        this.counters.dropped++;
        d.queue.shift();
        this.log.warn(`alerts: ${d.url}: dropped an event after ${head.attempts} attempt(s) (${outcome})`);
        continue;
      }
      this.counters.retried++;
      const backoff = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** (head.attempts - 1));
      const delay = backoff / 2 + Math.random() * (backoff / 2);
      d.timer = setTimeout(() => {
        d.timer = undefined;
        this.pump(d);
      }, delay);
      d.timer.unref();
      return;
    }
  }

  private async post(url: string, body: string): Promise<'sent' | 'refused' | 'failed'> {
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return 'sent';
      // The receiver refuses the message itself: sending it again cannot help.
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        this.log.warn(`alerts: ${url} refused an event: HTTP ${res.status}`);
        return 'refused';
      }
      this.log.debug(`alerts: ${url}: HTTP ${res.status}, will retry`);
      return 'failed';
    } catch (err) {
      this.log.debug(`alerts: ${url}: ${(err as Error).message}, will retry`);
      return 'failed';
    }
  }
}
