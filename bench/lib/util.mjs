// Small helpers shared by the benchmark scenarios: paths, logging, arguments, statistics, formatting.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { once } from 'node:events';
import { createServer } from 'node:net';

export { sleep };

/** A loopback port the OS has just given out and taken back (for a server of the benchmark's own). */
export async function freePort() {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/** Repository root (bench/ lives directly under it). */
export const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
/**
 * The build the benchmark runs. bench.mjs points it at a private copy of dist/ (and config/) taken right after
 * `npm run build`, so that a rebuild by someone else during a long run cannot mix two builds in one result.
 */
export let DIST = join(ROOT, 'dist');
export let CLI = join(DIST, 'cli.js');
export function useDist(dir) {
  DIST = dir;
  CLI = join(dir, 'cli.js');
}
export const SANDBOX_KEY = 'appl_sandbox_key';
export const USER_AGENT = 'rc-migrate/0.1.0';

const started = Date.now();
/** Progress goes to stderr with the time since start; figures go to stdout. */
export function log(message) {
  const s = ((Date.now() - started) / 1000).toFixed(1).padStart(7);
  process.stderr.write(`[bench ${s}s] ${message}\n`);
}

export const SCENARIOS = ['rate', 'ingest', 'overhead', 'ledger', 'sequential', 'e2e', 'discovery', 'ingestReceipts'];

export const USAGE = `usage: node bench/bench.mjs [--quick] [--scale F] [--only ${SCENARIOS.join(',')}] [--rate-order spread|grouped] [--worker-rate R] [--e2e-rows N] [--e2e-high-water-mark N] [--discovery-window fixed|sliding] [--discovery-cases LIST] [--ingest-receipts-rows N] [--redis URL]

  --quick             every size divided by 10 (same as --scale 0.1); e2e runs 50,000 rows instead of 1,000,000
  --scale F           multiply every row count by F (0 < F <= 1)
  --only LIST         run only these scenarios (comma-separated); ledger needs overhead, so it runs it too
  --rate-order ORDER  how the rate scenario's rows of one user are placed in the CSV: spread (default: a user's
                      rows are N/4 lines apart) or grouped (a user's 4 rows are adjacent, as in an export sorted
                      by user: shows the per-user lock churn)
  --worker-rate R     the rate scenario's \`work --rate\` (default 100, the sandbox's limit; e.g. 98 to try headroom)
  --e2e-rows N        rows of the e2e run (default 1,000,000; 50,000 with --quick)
  --e2e-high-water-mark N
                      the e2e ingester's --high-water-mark (default 50,000 at a million rows, scaled with the rows)
  --discovery-window KIND
                      how the discovery scenario's one-second limits count: fixed (default) or sliding windows
  --discovery-cases LIST
                      only these cases of the discovery scenario (comma-separated names, e.g. s50,long50,wave)
  --ingest-receipts-rows N
                      App Store rows of the ingestReceipts scenario (default 50,000; 5,000 with --quick)
  --redis URL         Redis to use (default REDIS_URL or redis://127.0.0.1:6379); only keys under bench-* are written`;

export class UsageError extends Error {}

export function parseArgs(argv) {
  const opts = { scale: 1, only: [...SCENARIOS], rateOrder: 'spread', workerRate: 100, redisUrl: process.env.REDIS_URL || 'redis://127.0.0.1:6379', help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--quick':
        opts.scale = 0.1;
        break;
      case '--scale': {
        const s = Number(value());
        if (!(s > 0 && s <= 1)) throw new UsageError('--scale must be a number in (0, 1]');
        opts.scale = s;
        break;
      }
      case '--only': {
        const list = value()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        const bad = list.filter((s) => !SCENARIOS.includes(s));
        if (bad.length > 0 || list.length === 0) throw new UsageError(`--only: unknown scenario ${bad.join(', ') || '(none)'}; choose from ${SCENARIOS.join(', ')}`);
        opts.only = list;
        break;
      }
      case '--rate-order': {
        const v = value();
        if (v !== 'spread' && v !== 'grouped') throw new UsageError('--rate-order is spread or grouped');
        opts.rateOrder = v;
        break;
      }
      case '--worker-rate': {
        const r = Number(value());
        if (!(r > 0)) throw new UsageError('--worker-rate must be a positive number');
        opts.workerRate = r;
        break;
      }
      case '--e2e-rows':
      case '--e2e-high-water-mark':
      case '--ingest-receipts-rows': {
        const n = Number(value());
        if (!(Number.isInteger(n) && n > 0)) throw new UsageError(`${flag} must be a positive whole number`);
        opts[{ '--e2e-rows': 'e2eRows', '--e2e-high-water-mark': 'e2eHighWaterMark', '--ingest-receipts-rows': 'ingestReceiptsRows' }[flag]] = n;
        break;
      }
      case '--discovery-window': {
        const v = value();
        if (v !== 'fixed' && v !== 'sliding') throw new UsageError('--discovery-window is fixed or sliding');
        opts.discoveryWindow = v;
        break;
      }
      case '--discovery-cases':
        opts.discoveryCases = value()
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
        break;
      case '--redis':
        opts.redisUrl = value();
        break;
      case '-h':
      case '--help':
        opts.help = true;
        break;
      default:
        throw new UsageError(`unknown argument ${arg}`);
    }
  }
  return opts;
}

/** Row counts scaled, never below `min`. */
export const scaled = (n, scale, min = 1) => Math.max(min, Math.round(n * scale));

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return undefined;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export const round = (n, digits = 2) => (n === undefined || n === null || Number.isNaN(n) ? n : Math.round(n * 10 ** digits) / 10 ** digits);

export function mib(bytes) {
  return bytes === undefined || bytes === null ? 'n/a' : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Bytes as MiB, or GiB from 1 GiB up. */
export function size(bytes) {
  if (bytes === undefined || bytes === null) return 'n/a';
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : mib(bytes);
}

export function num(n, digits = 0) {
  if (n === undefined || n === null || Number.isNaN(n)) return 'n/a';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function secs(ms) {
  return ms === undefined || ms === null ? 'n/a' : `${(ms / 1000).toFixed(1)} s`;
}

export function duration(ms) {
  if (ms === undefined || ms === null) return 'n/a';
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  if (s < 172_800) return `${(s / 3600).toFixed(2)} h`;
  return `${(s / 86_400).toFixed(1)} days`;
}

/** Waits until `check()` returns a truthy value, polling; throws after `timeoutMs`. */
export async function waitFor(check, { timeoutMs, pollMs = 200, what = 'condition', signal } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (signal?.aborted) throw new Error(`aborted while waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${secs(timeoutMs)} waiting for ${what}`);
    await sleep(pollMs);
  }
}

/** A clean environment for children: none of the caller's rc-migrate or RevenueCat settings leak in. */
export function childEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('RC_MIGRATE_') || k.startsWith('REVENUECAT_') || k === 'LOG_LEVEL' || k === 'REDIS_URL' || k === 'NODE_OPTIONS') continue;
    if (k.startsWith('npm_')) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}
