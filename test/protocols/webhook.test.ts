/**
 * The webhook notifier's bounds, against a real HTTP receiver in this
 * process: a 4xx is not retried, attempts are bounded, the queue is
 * bounded, a retried event is still delivered, events are not sent twice,
 * and every drop is counted.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebhookNotifier } from '../../collector/src/alerts/webhook';
import { createLogger } from '../../collector/src/log';
import type { LeakEvent } from '../../collector/src/leaks';

const log = createLogger('silent');

function event(id: string, kind: LeakEvent['event'] = 'flagged'): LeakEvent {
  return {
    event: kind, id, service: 'svc', kind: 'site', function: 'f', file: '/app/f.js', line: 3,
    growthBytesPerHour: 1 << 20, timeToLimitSeconds: 7200, flaggedAt: '2026-12-01T00:00:00.000Z', firstFlaggedAt: '2026-12-01T00:00:00.000Z', at: '2026-12-01T00:01:00.000Z',
  };
}

let server: http.Server | undefined;

async function receiver(status: (n: number) => number): Promise<{ url: string; bodies: unknown[] }> {
  const bodies: unknown[] = [];
  let n = 0;
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const s = status(n++);
      if (s < 300) bodies.push(JSON.parse(body));
      res.writeHead(s).end();
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, bodies };
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
};

afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

describe('WebhookNotifier', () => {
  it('retries a 5xx with backoff and delivers; sends each event once', async () => {
    const r = await receiver((n) => (n < 2 ? 503 : 200));
    const w = new WebhookNotifier({ urls: [r.url], linkBase: 'http://h:1', baseDelayMs: 10, maxDelayMs: 20 }, log);
    w.notify([event('a')]);
    w.notify([event('a')]);
    await until(() => w.metrics().alert_webhook_sent_total === 1);
    expect(r.bodies).toEqual([expect.objectContaining({ id: 'a', event: 'flagged', url: 'http://h:1/api/v1/leaks?service=svc', text: expect.stringContaining('1.0 MiB/h; heap limit in ~2.0h') })]);
    expect(w.metrics()).toMatchObject({ alert_webhook_sent_total: 1, alert_webhook_retried_total: 2, alert_webhook_dropped_total: 0 });
    await w.close(100);
  });

  it('drops a 4xx at once and gives up after maxAttempts, counting both', async () => {
    const refused = await receiver(() => 400);
    const w = new WebhookNotifier({ urls: [refused.url], linkBase: 'http://h', baseDelayMs: 5, maxDelayMs: 5, maxAttempts: 3 }, log);
    w.notify([event('b')]);
    await until(() => w.metrics().alert_webhook_dropped_total === 1);
    expect(w.metrics()).toMatchObject({ alert_webhook_retried_total: 0, alert_webhook_dropped_total: 1 });
    await w.close(100);
    await new Promise<void>((res) => server!.close(() => res()));
    const failing = await receiver(() => 500);
    const v = new WebhookNotifier({ urls: [failing.url], linkBase: 'http://h', baseDelayMs: 5, maxDelayMs: 5, maxAttempts: 3 }, log);
    v.notify([event('c')]);
    await until(() => v.metrics().alert_webhook_dropped_total === 1);
    expect(v.metrics()).toMatchObject({ alert_webhook_sent_total: 0, alert_webhook_retried_total: 2, alert_webhook_dropped_total: 1 });
    await v.close(100);
  });

  it('bounds the queue, and close() gives up on what it cannot send within its deadline', async () => {
    const r = await receiver(() => 503);
    const w = new WebhookNotifier({ urls: [r.url], linkBase: 'http://h', maxQueue: 2, baseDelayMs: 60_000, maxDelayMs: 60_000 }, log);
    w.notify([event('1'), event('2'), event('3'), event('4')]);
    expect(w.metrics()).toMatchObject({ alert_webhook_dropped_total: 2, alert_webhook_queue_length: 2 });
    const t = Date.now();
    await w.close(2000);
    expect(Date.now() - t).toBeLessThan(2500);
    expect(w.metrics()).toMatchObject({ alert_webhook_sent_total: 0, alert_webhook_dropped_total: 4, alert_webhook_queue_length: 0 });
  });
});
