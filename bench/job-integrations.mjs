// Part 8: what the agent's queue integrations (agent/src/jobs) cost a job.
//
// bench/workers/job-loop.js runs the same trivial jobs with and without an
// integration: trackJobs (a fixed type name, and a name per job), bullmq()
// on a worker that emits 'completed' per job, amqplib() on a channel that
// delivers each message to the consumer, which acks it. The cost is what
// the integration adds per job, in two measures:
//
// - instructions (valgrind's callgrind on `node --predictable
//   --predictable-gc-schedule`, unaffected by other tenants of the machine):
//   a short and a long run of each variant; (long - short) / (jobs between
//   them) is the steady-state instructions per job, start-up removed;
// - native ns per job, variants interleaved round by round and the median
//   taken: on a shared machine this moves with load (the load average is
//   printed), the instruction count does not.
//
// And what a profile costs to read the counters of 100 job types (the
// default cap): the agent's jobCounters(), once per profile.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fmt, header, median, parseArgs, table, writeResult } from './lib/report.mjs';
import { DEFAULT_AGENT_DIR, loadavg } from './lib/worker-run.mjs';
import { BENCH_DIR, ROOT } from './lib/report.mjs';

const opts = parseArgs({ shortJobs: 20000, longJobs: 100000, nativeJobs: 1000000, nativeRounds: 5, realShortJobs: 500, realLongJobs: 2500, agentDir: DEFAULT_AGENT_DIR, callgrind: true, quick: false });
if (opts.quick) Object.assign(opts, { shortJobs: 5000, longJobs: 25000, nativeJobs: 200000, nativeRounds: 2, realShortJobs: 200, realLongJobs: 600 });
const WORKER = path.join(BENCH_DIR, 'workers/job-loop.js');
const V8_FLAGS = ['--predictable', '--predictable-gc-schedule'];
const PAIRS = [
  ['trackJobs, fixed name', 'plain', 'tracked'],
  ['trackJobs, name per job', 'plain', 'tracked-named'],
  ['bullmq(worker)', 'bullmq-none', 'bullmq'],
  ['amqplib(channel)', 'amqp-none', 'amqp'],
];
const VARIANTS = [...new Set(PAIRS.flatMap(([, a, b]) => [a, b]))];
const loadStart = loadavg();

function runNative(variant, jobs) {
  const r = spawnSync(process.execPath, [WORKER, JSON.stringify({ variant, jobs, agentDir: opts.agentDir })], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, HEAPWATCH_ENABLED: 'false' } });
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (r.status !== 0 || !line) throw new Error(`${variant}: ${r.stderr}`);
  return JSON.parse(line.slice(7));
}

let seq = 0;
async function runCallgrind(variant, jobs, extra = {}) {
  const out = path.join(os.tmpdir(), `heapwatch-jobs-cg-${process.pid}-${++seq}.out`);
  const args = ['--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${out}`, process.execPath, ...V8_FLAGS, WORKER, JSON.stringify({ variant, jobs, agentDir: opts.agentDir, ...extra })];
  const child = spawn('valgrind', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const code = await new Promise((r) => child.once('exit', r));
  const instructions = Number(/^summary: (\d+)/m.exec(fs.readFileSync(out, 'utf8'))?.[1]);
  fs.rmSync(out, { force: true });
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (code !== 0 || !line || !Number.isFinite(instructions)) throw new Error(`callgrind ${variant} ${jobs}: exit ${code}\n${stderr}`);
  const result = JSON.parse(line.slice(7));
  console.error(`  callgrind ${variant} ${jobs} jobs: ${fmt(instructions)} instructions (counted ${result.counted})`);
  return instructions;
}

// Native, interleaved.
const nsPerJob = Object.fromEntries(VARIANTS.map((v) => [v, []]));
const counted = {};
for (let round = 0; round < opts.nativeRounds; round++) {
  for (const v of VARIANTS) {
    const r = runNative(v, opts.nativeJobs);
    nsPerJob[v].push(r.ns / r.jobs);
    counted[v] = r.counted;
  }
  console.error(`  native round ${round + 1}: ${VARIANTS.map((v) => `${v} ${nsPerJob[v].at(-1).toFixed(0)} ns`).join(', ')}`);
}

// Instructions.
const perJobInstr = {};
const haveValgrind = opts.callgrind && spawnSync('valgrind', ['--version']).status === 0;
if (haveValgrind) {
  for (const v of VARIANTS) {
    const short = await runCallgrind(v, opts.shortJobs);
    const long = await runCallgrind(v, opts.longJobs);
    perJobInstr[v] = (long - short) / (opts.longJobs - opts.shortJobs);
  }
} else console.error('job-integrations: valgrind not installed or --callgrind false: instruction counts skipped');

// For scale: what a real BullMQ job costs its worker (Redis on 127.0.0.1:6379).
async function redisAnswers() {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: 6379 });
    s.setTimeout(2000, () => (s.destroy(), resolve(false)));
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}
let realPerJob = NaN;
if (haveValgrind && (await redisAnswers())) {
  const { Queue } = await import('bullmq');
  const connection = { host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null };
  const runReal = async (jobs) => {
    const prefix = `hwbench-${process.pid}-${++seq}`;
    const queue = new Queue('media', { connection, prefix });
    try {
      for (let i = 0; i < jobs; i += 500) {
        await queue.addBulk(Array.from({ length: Math.min(500, jobs - i) }, (_, k) => ({ name: k & 1 ? 'resize-image' : 'send-email', data: JSON.stringify({ n: i + k }), opts: { removeOnComplete: true } })));
      }
      return await runCallgrind('bullmq-real', jobs, { queue: 'media', prefix });
    } finally {
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
    }
  };
  const short = await runReal(opts.realShortJobs);
  const long = await runReal(opts.realLongJobs);
  realPerJob = (long - short) / (opts.realLongJobs - opts.realShortJobs);
} else console.error('job-integrations: no valgrind or no Redis: the real BullMQ job is not measured');

// The counters a profile reads: 100 types.
const { jobType, recordJob, jobCounters, jobRegistry } = createRequire(import.meta.url)(path.join(opts.agentDir, 'dist/jobs/registry.js'));
jobRegistry().maxTypes = 100;
for (let i = 0; i < 100; i++) recordJob(jobType('media', `type-${i}`), true, 1000, 5);
const reads = 20000;
let t0 = process.hrtime.bigint();
for (let i = 0; i < reads; i++) jobCounters();
const snapshotUs = Number(process.hrtime.bigint() - t0) / 1000 / reads;

const loadEnd = loadavg();
const bullmqVersion = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules/bullmq/package.json'), 'utf8')).version;
const rows = PAIRS.map(([label, base, with_]) => {
  const dNs = median(nsPerJob[with_]) - median(nsPerJob[base]);
  const dI = haveValgrind ? perJobInstr[with_] - perJobInstr[base] : NaN;
  return [
    label,
    haveValgrind ? fmt(perJobInstr[base], 0) : '-',
    haveValgrind ? fmt(perJobInstr[with_], 0) : '-',
    haveValgrind ? `${fmt(dI, 0)} (${((100 * dI) / perJobInstr[base]).toFixed(1)} %)` : '-',
    `${median(nsPerJob[base]).toFixed(0)} -> ${median(nsPerJob[with_]).toFixed(0)} (${dNs >= 0 ? '+' : ''}${dNs.toFixed(0)})`,
    String(counted[with_] === opts.nativeJobs),
  ];
});
const markdown = [
  header('8. Queue integrations: cost per job', {
    jobs: `${opts.shortJobs} and ${opts.longJobs} under callgrind (node ${V8_FLAGS.join(' ')}); ${opts.nativeJobs} native x ${opts.nativeRounds} interleaved rounds`,
    load: `load average ${loadStart} at start, ${loadEnd} at the end (2 cores): native ns move with it, instructions do not`,
  }),
  table(['integration', 'instructions/job without', 'with', 'added per job', 'native ns/job (median)', 'every job counted'], rows),
  '',
  Number.isFinite(realPerJob)
    ? `For scale, a real BullMQ job (bullmq ${bullmqVersion}, the machine's Redis, concurrency 1, the same trivial handler, bullmq() attached) costs its worker ${fmt(realPerJob, 0)} instructions (${opts.realShortJobs} and ${opts.realLongJobs} jobs): bullmq() adds ${(100 * (perJobInstr.bullmq - perJobInstr['bullmq-none']) / realPerJob).toFixed(2)} % of it, trackJobs ${(100 * (perJobInstr.tracked - perJobInstr.plain) / realPerJob).toFixed(2)} %, amqplib() ${(100 * (perJobInstr.amqp - perJobInstr['amqp-none']) / realPerJob).toFixed(2)} % (an amqplib delivery costs its consumer less than a BullMQ job; not measured here).`
    : 'A real BullMQ job was not measured (needs valgrind and Redis).',
  '',
  `Reading the counters of 100 job types for a profile (jobCounters(), once per profile): ${snapshotUs.toFixed(1)} µs.`,
].join('\n');
writeResult('job-integrations', {
  settings: opts,
  data: { nsPerJob, perJobInstr, realPerJob, snapshotUs, loadStart, loadEnd, counted },
  markdown,
});
