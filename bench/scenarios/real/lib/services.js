'use strict';
/**
 * What every real-corpus worker shares: the machine's Redis and RabbitMQ
 * addresses, a name unique to this run (queue names, BullMQ key prefix), and
 * clean shutdown on SIGTERM/SIGINT (close the queue clients, remove the
 * run's queues) so a run leaves nothing behind. The runner sends SIGTERM and
 * sweeps the run's keys itself if a worker had to be killed.
 */
const REDIS = {
  host: process.env.SCENARIO_REDIS_HOST || '127.0.0.1',
  port: Number(process.env.SCENARIO_REDIS_PORT) || 6379,
  maxRetriesPerRequest: null,
};
const AMQP_URL = process.env.SCENARIO_AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';
const RUN_ID = process.env.SCENARIO_RUN_ID || `${process.pid}-${Date.now().toString(36)}`;
/** BullMQ key prefix of this run: every key the run writes starts with it. */
const BULLMQ_PREFIX = `hwreal-${RUN_ID}`;

const closers = [];
let closing = false;
function onShutdown(fn) {
  closers.push(fn);
}
async function shutdown() {
  if (closing) return;
  closing = true;
  const hard = setTimeout(() => process.exit(0), 5000);
  hard.unref();
  for (const fn of closers.reverse()) {
    try {
      await fn();
    } catch {
      // best effort: the runner sweeps what is left
    }
  }
  process.exit(0);
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);

/**
 * Calls `fn` `perSec` times a second on average, from a 50 ms tick, paced by
 * the clock: a tick that runs late (a loaded machine) makes up for the time
 * it missed, up to a second of it, so the rate and every scenario's timing
 * (a leak's bytes a minute, a cache's fill time) hold under load.
 */
function every(perSec, fn) {
  let credit = 0;
  let last = performance.now();
  const t = setInterval(() => {
    const now = performance.now();
    credit = Math.min(credit + ((now - last) / 1000) * perSec, Math.max(1, perSec));
    last = now;
    for (; credit >= 1; credit--) fn();
  }, 50);
  onShutdown(() => clearInterval(t));
  return t;
}

module.exports = { REDIS, AMQP_URL, RUN_ID, BULLMQ_PREFIX, onShutdown, every };
