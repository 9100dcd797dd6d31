// What every part shares: the machine it ran on, argument parsing, robust
// statistics, a Markdown table, and the JSON file under bench/results/.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = path.resolve(BENCH_DIR, '..');
export const RESULTS_DIR = path.join(BENCH_DIR, 'results');

export function machine() {
  const cpus = os.cpus();
  let commit = '';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {}
  return {
    cores: cpus.length,
    cpu: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    commit,
  };
}

/**
 * `--name value`, `--name=value` and bare `--flag`. Numbers parse as numbers.
 * `defaults` lists every accepted option, so a typo is an error, not a
 * silently ignored setting.
 */
export function parseArgs(defaults, argv = process.argv.slice(2)) {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    let [key, value] = arg.slice(2).split('=', 2);
    const camel = key.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(camel in defaults)) throw new Error(`unknown option --${key}; known: ${Object.keys(defaults).map((k) => '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())).join(' ')}`);
    if (value === undefined) {
      if (typeof defaults[camel] === 'boolean') value = 'true';
      else value = argv[++i];
    }
    const d = defaults[camel];
    out[camel] = typeof d === 'number' ? Number(value) : typeof d === 'boolean' ? value !== 'false' : value;
    if (typeof d === 'number' && !Number.isFinite(out[camel])) throw new Error(`--${key} must be a number`);
  }
  return out;
}

export function quantile(values, q) {
  if (values.length === 0) return NaN;
  const s = Float64Array.from(values).sort();
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}
export const median = (v) => quantile(v, 0.5);

export function fmt(n, digits = 1) {
  if (n === undefined || n === null || Number.isNaN(n)) return 'n/a';
  if (typeof n === 'string') return n;
  if (Number.isInteger(n) && Math.abs(n) < 1000) return String(n);
  if (Math.abs(n) >= 1e12) return n.toExponential(2);
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US');
  return n.toFixed(digits);
}

export const mib = (bytes) => bytes / 2 ** 20;

/** rows: array of arrays; header: array of column names. */
export function table(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map((r) => line(r.map((c) => (typeof c === 'number' ? fmt(c) : String(c)))))].join('\n');
}

export function verdict(met) {
  return met ? 'met' : '**MISSED**';
}

/**
 * Writes bench/results/<part>.json (the latest) and prints the Markdown.
 * `markdown` is the human report; `data` the full figures.
 */
export function writeResult(part, { settings, data, markdown, targets }) {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const result = { part, date: new Date().toISOString(), machine: machine(), settings, targets, data, markdown };
  fs.writeFileSync(path.join(RESULTS_DIR, `${part}.json`), JSON.stringify(result, null, 2) + '\n');
  fs.writeFileSync(path.join(RESULTS_DIR, `${part}.md`), markdown + '\n');
  console.log(markdown);
  return result;
}

export function header(title, settings) {
  const m = machine();
  return [
    `## ${title}`,
    '',
    `Machine: ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}; commit ${m.commit || 'n/a'}; ${new Date().toISOString()}`,
    `Settings: ${Object.entries(settings).map(([k, v]) => `${k}=${v}`).join(', ')}`,
    '',
  ].join('\n');
}

export function targetsTable(targets) {
  return table(
    ['target', 'measured', 'verdict'],
    targets.map((t) => [t.name, t.measured, verdict(t.met)]),
  );
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resident set size of another process, in bytes (Linux /proc). */
export function rssOf(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** User+system CPU time of another process, in ms (Linux /proc). */
export function cpuMsOf(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / 100; // CLK_TCK is 100 on Linux
  } catch {
    return NaN;
  }
}

export function du(dir) {
  let total = 0;
  // The store merges while we walk: a part directory or file may vanish
  // between listing and reading it, and then it no longer counts.
  const gone = (err) => {
    if (err.code !== 'ENOENT') throw err;
  };
  const walk = (d) => {
    let entries;
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch (err) {
      return gone(err);
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        try {
          total += fs.statSync(p).size;
        } catch (err) {
          gone(err);
        }
      }
    }
  };
  walk(dir);
  return total;
}

/**
 * CPU seconds of each thread of `pid`, summed by thread name (digits
 * dropped: `QueryPipelineEx`, `MergeMutate`, `node`...); the main thread is
 * `main`. Threads that ended in between are lost, so compare two calls.
 */
export function threadCpu(pid) {
  const out = {};
  let tasks = [];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = tid === String(pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[\d:]+$/, '') || '?';
      const x = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[name] = (out[name] ?? 0) + (Number(x[11]) + Number(x[12])) / 100;
    } catch {}
  }
  return out;
}
