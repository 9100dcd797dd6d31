// @ok
// @jobs-per-sec 30
// A BullMQ worker that authorizes API calls and keeps the users' session
// records in an LRU bounded at 5,000 entries (the usual lru-cache shape: a
// Map in recency order, oldest evicted on insert once full). New users
// arrive at ~28 a second, so the LRU fills over about three minutes and then
// stays at 5,000 entries (~7 MB): growth that stops is not a leak.
'use strict';
const crypto = require('node:crypto');
const { Queue, Worker } = require('bullmq');
const { REDIS, BULLMQ_PREFIX, onShutdown, every } = require('./lib/services');

const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 30;
const MAX_SESSIONS = Number(process.env.SCENARIO_KEYS) || 5000;
const QUEUE = 'authorize';

class Lru {
  constructor(max) {
    this.max = max;
    this.map = new Map();
  }
  get(key) {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key, value) {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value);
  }
}

const sessions = new Lru(MAX_SESSIONS);

function loadSession(userId) {
  // The session store: a record with a token, roles and a permission list.
  return {
    userId,
    token: crypto.randomBytes(24).toString('base64url'),
    roles: ['reader', userId.endsWith('7') ? 'admin' : 'writer'],
    permissions: Array.from({ length: 24 }, (_, i) => `perm:${userId}:${i}`),
    loadedAt: new Date().toISOString(),
  };
}

async function authorize(job) {
  let s = sessions.get(job.data.userId);
  if (!s) {
    s = loadSession(job.data.userId);
    sessions.set(job.data.userId, s);
  }
  return { allowed: s.roles.includes('writer') || s.roles.includes('admin') };
}

const queue = new Queue(QUEUE, { connection: REDIS, prefix: BULLMQ_PREFIX });
const worker = new Worker(QUEUE, authorize, { connection: REDIS, prefix: BULLMQ_PREFIX, concurrency: 8 });
worker.on('error', () => {});
onShutdown(async () => {
  await worker.close(true);
  await queue.obliterate({ force: true });
  await queue.close();
});

// Mostly new users (an unbounded key space), some returning ones.
let seq = 0;
every(JOBS_PER_SEC, () => {
  seq++;
  const userId = seq % 10 === 0 ? `u${seq % 400}` : `u${seq}`;
  queue.add('call', { userId, path: `/v1/items/${seq % 1000}` }, { removeOnComplete: true, removeOnFail: true }).catch(() => {});
});
