/**
 * A flagged leak reaches people: a real leaky worker with the agent, a real
 * collector with `--alert-webhook`, and a webhook receiver (an HTTP server
 * in the test) that is down when the leak is flagged and comes up later.
 * The worker's leak is fixed mid-run; the receiver must get exactly one
 * "flagged" and one "cleared" event for the site, with the same id. And
 * /metrics carries the flagged site as a gauge while it is flagged.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AGENT_REGISTER, ROOT, getJson, startCollectorProcess, waitFor, type RunningCollector } from '../helpers/collector';

const SERVICE = 'alerting-worker';

interface Event {
  id: string;
  event: 'flagged' | 'cleared';
  service: string;
  kind: string;
  function?: string;
  file?: string;
  growthBytesPerHour: number;
  timeToLimitSeconds: number | null;
  flaggedAt: string;
  firstFlaggedAt: string;
  url: string;
  text: string;
}

/** The receiver: records every POST body; down (port closed) until `up()`. */
class Receiver {
  readonly events: Event[] = [];
  private server: http.Server | undefined;
  port = 0;

  async reserve(): Promise<void> {
    await this.listen(0);
    await this.down();
  }

  async listen(port: number): Promise<void> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        this.events.push(JSON.parse(body) as Event);
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  async down(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    s?.closeAllConnections();
    await new Promise<void>((r) => (s ? s.close(() => r()) : r()));
  }
}

async function metrics(base: string): Promise<string> {
  return (await fetch(`${base}/metrics`)).text();
}

function counter(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

describe('alerts: webhook and /metrics', () => {
  let collector: RunningCollector | undefined;
  let worker: ChildProcess | undefined;
  const receiver = new Receiver();

  afterAll(async () => {
    worker?.kill('SIGKILL');
    await collector?.stop();
    await receiver.down();
  });

  it('one "flagged" and one "cleared" for a leak fixed mid-run, delivered after the receiver was down', async () => {
    await receiver.reserve();
    const hook = `http://127.0.0.1:${receiver.port}/hooks/heapwatch`;
    // 500 ms profiles: the minimum growth time (10 minutes at production's 60 s) scaled alike.
    collector = await startCollectorProcess({ args: ['--leak-interval-ms', '1000', '--leak-min-growth-ms', '5000', '--alert-webhook', hook, '--public-url', 'https://heapwatch.example'] });
    const base = collector.httpUrl;
    worker = spawn(process.execPath, ['--require', AGENT_REGISTER, path.join(ROOT, 'test/fixtures/retaining-worker.js')], {
      env: {
        ...process.env,
        HEAPWATCH_COLLECTOR: collector.grpcAddress,
        HEAPWATCH_SERVICE: SERVICE,
        HEAPWATCH_INTERVAL_MS: '500',
        HEAPWATCH_SAMPLING_INTERVAL_BYTES: String(32 * 1024),
        // As test/e2e does: precise mode from the start, not on the collector's directive.
        HEAPWATCH_PRECISE: 'always',
        HEAPWATCH_LOG_LEVEL: 'warn',
      },
      stdio: ['pipe', 'ignore', 'inherit'],
    });

    // Flagged while the receiver is down: the notifier has to retry.
    const flagged = await waitFor(
      'the leak flagged',
      async () => {
        const { status, body } = await getJson<{ leaks: { function: string; file: string; growthBytesPerHour: number }[] }>(
          `${base}/api/v1/leaks?service=${SERVICE}`,
        );
        return status === 200 ? body.leaks.find((l) => l.function === 'retainPayload') : undefined;
      },
      300_000,
      500,
    );
    const gauge = await metrics(base);
    const line = new RegExp(`^heapwatch_leak_flagged\\{service="${SERVICE}",function="retainPayload",file="[^"]*retaining-worker.js"\\} (\\d+)$`, 'm').exec(gauge);
    expect(line, gauge).not.toBeNull();
    expect(Number(line![1])).toBeGreaterThan(0);
    expect(flagged.growthBytesPerHour).toBeGreaterThan(0);

    await waitFor('a failed delivery to be retried', async () => (counter(await metrics(base), 'heapwatch_alert_webhook_retried_total') > 0 ? true : undefined), 60_000);
    await new Promise((r) => setTimeout(r, 2000));
    expect(receiver.events).toHaveLength(0);
    await receiver.listen(receiver.port);

    const site = (e: Event) => e.kind === 'site' && e.function === 'retainPayload';
    const first = await waitFor('the flagged event', async () => receiver.events.find((e) => site(e) && e.event === 'flagged'), 120_000);
    expect(first).toMatchObject({
      service: SERVICE,
      kind: 'site',
      function: 'retainPayload',
      url: `https://heapwatch.example/api/v1/leaks?service=${SERVICE}`,
    });
    expect(first.file).toMatch(/retaining-worker\.js$/);
    expect(first.id).toMatch(/^[0-9a-f]{32}$/);
    expect(first.growthBytesPerHour).toBeGreaterThan(0);
    expect(first.text).toMatch(/leak flagged in \*alerting-worker\*: `retainPayload`/);
    expect(first.text).toContain('<https://heapwatch.example/api/v1/leaks?service=alerting-worker|leak report>');

    // The fix is deployed: the site stops rising and its memory is released.
    worker.stdin!.write('fix\n');
    const cleared = await waitFor('the cleared event', async () => receiver.events.find((e) => site(e) && e.event === 'cleared'), 180_000);
    expect(cleared.id).toBe(first.id);
    expect(cleared.flaggedAt).toBe(first.flaggedAt);
    expect(cleared.firstFlaggedAt).toBe(first.firstFlaggedAt);
    expect(cleared.text).toMatch(/leak cleared in \*alerting-worker\*/);

    // A few more evaluations: nothing is sent twice.
    await new Promise((r) => setTimeout(r, 4000));
    const forSite = receiver.events.filter(site);
    expect(forSite.map((e) => e.event)).toEqual(['flagged', 'cleared']);
    const perId = new Map<string, string[]>();
    for (const e of receiver.events) perId.set(e.id, [...(perId.get(e.id) ?? []), e.event]);
    for (const [, evs] of perId) expect(new Set(evs).size).toBe(evs.length);

    const after = await metrics(base);
    expect(after).not.toMatch(/^heapwatch_leak_flagged\{service="alerting-worker",function="retainPayload"/m);
    expect(counter(after, 'heapwatch_alert_webhook_sent_total')).toBe(receiver.events.length);
    expect(counter(after, 'heapwatch_alert_webhook_dropped_total')).toBe(0);
    expect(counter(after, 'heapwatch_alert_webhook_queue_length')).toBe(0);
  }, 900_000);

  it('refuses a webhook that is not an http(s) URL', async () => {
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, [path.join(ROOT, 'collector/dist/cli.js'), 'serve', '--alert-webhook', 'ftp://x'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--alert-webhook must be an http\(s\):\/\/ URL/);
  });
});
