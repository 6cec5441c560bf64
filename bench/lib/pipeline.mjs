// Helpers that drive rc-migrate itself: queue rows with the library, start `work` processes, wait for a run's
// ledger to be complete, and read the ledger's outcomes back (finish times, statuses, record sizes).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { alive, spawnCli } from './children.mjs';
import { REDIS_PROBE_URL } from './roundtrips.mjs';
import { DIST, ROOT, SANDBOX_KEY, log, percentile, secs, sleep } from './util.mjs';

export const PROBE_URL = pathToFileURL(join(ROOT, 'bench', 'lib', 'latency-probe.mjs')).href;

/** dist/ is imported lazily, after `npm run build`, so a missing build gives a clear message. */
export async function loadDist() {
  const index = await import(pathToFileURL(join(DIST, 'index.js')).href);
  const keys = await import(pathToFileURL(join(DIST, 'redis', 'keys.js')).href);
  return { ...index, runKeys: (prefix, runId) => new keys.RedisKeys(prefix).run(runId), RECEIPTS_QUEUE: keys.RECEIPTS_QUEUE, RUNS_QUEUE: keys.RUNS_QUEUE };
}

/** Queues a CSV into `prefix` with the library's ingestSources (high-water mark off). */
export async function ingestWithLibrary(ctx, prefix, runId, file) {
  const { lib } = ctx;
  const config = lib.loadConfig({ env: {}, overrides: { redisUrl: ctx.redisUrl, prefix, logLevel: 'warn', highWaterMark: 0 } });
  const started = performance.now();
  const { result } = await lib.ingestSources({ config, logger: lib.createLogger('warn'), sources: [file], runId });
  return { result, ms: performance.now() - started };
}

/**
 * Starts `rc-migrate work` with the environment the brief names; `probeOut` loads the latency probe,
 * `redisProbeOut` the Redis command counter (lib/redis-probe.mjs).
 */
export function startWork(ctx, { prefix, apiUrl, args, probeOut, redisProbeOut }) {
  const nodeArgs = [];
  if (probeOut) nodeArgs.push('--import', PROBE_URL);
  if (redisProbeOut) nodeArgs.push('--import', REDIS_PROBE_URL);
  return spawnCli(['work', ...args], {
    env: {
      REDIS_URL: ctx.redisUrl,
      RC_MIGRATE_PREFIX: prefix,
      REVENUECAT_API_URL: apiUrl,
      REVENUECAT_API_KEY: SANDBOX_KEY,
      // BENCH_WORKER_LOG_LEVEL=info keeps the rate decisions (discovery.mjs lists them with the figures).
      LOG_LEVEL: process.env.BENCH_WORKER_LOG_LEVEL ?? 'warn',
      ...(probeOut ? { BENCH_PROBE_OUT: probeOut } : {}),
      ...(redisProbeOut ? { BENCH_REDIS_PROBE_OUT: redisProbeOut } : {}),
    },
    nodeArgs,
  });
}

/**
 * Polls RunLedger.state() until the run is complete. Fails early when every worker has exited, and after
 * `timeoutMs`. `onTick(state)` is called on each poll.
 */
export async function waitForRun(ledger, { workers, timeoutMs, pollMs = 200, onTick }) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await ledger.state();
    onTick?.(state);
    if (state.complete) return state;
    if (workers.length > 0 && workers.every((w) => !alive(w))) {
      const tail = workers.flatMap((w) => w.stderrLines.slice(-3)).join(' | ');
      throw new Error(`every worker exited before the run was complete (${state.rows_succeeded + state.rows_failed}/${state.rows_queued}): ${tail}`);
    }
    if (Date.now() > deadline) throw new Error(`run not complete after ${secs(timeoutMs)}: ${state.rows_succeeded + state.rows_failed}/${state.rows_queued} rows have an outcome`);
    await sleep(pollMs);
  }
}

/** A progress line every `everyMs` while a run goes. */
export function progressLogger(label, total, everyMs = 15_000, extra = async () => '') {
  let last = Date.now();
  return (state) => {
    if (Date.now() - last < everyMs) return;
    last = Date.now();
    void extra().then((more) => log(`${label}: ${state.rows_succeeded + state.rows_failed}/${total} rows have an outcome${more}`));
  };
}

/**
 * Reads every outcome of a run through the ledger's own decoder (RunLedger.outcomes(), so a change of the stored
 * format does not break the benchmark): finish times (sorted), statuses, reasons; plus the stored record size
 * (raw HSCAN of the outcomes hash).
 */
export async function readOutcomes(redis, ledger) {
  const finishes = [];
  const byStatus = {};
  const byReason = {};
  let count = 0;
  let maxAttempts = 0;
  for await (const o of ledger.outcomes()) {
    count++;
    finishes.push(Date.parse(o.finished_at));
    byStatus[o.status] = (byStatus[o.status] ?? 0) + 1;
    if (o.reason) byReason[o.reason] = (byReason[o.reason] ?? 0) + 1;
    if (o.attempts > maxAttempts) maxAttempts = o.attempts;
  }
  finishes.sort((a, b) => a - b);
  if (finishes.some((t) => Number.isNaN(t))) throw new Error('an outcome has no readable finished_at');
  // The stored record size, where the ledger keeps outcomes in one hash (its layout may differ: then unknown).
  let recordBytes = 0;
  let records = 0;
  const outcomesKey = ledger.keys?.outcomes;
  if (typeof outcomesKey === 'string' && (await redis.type(outcomesKey)) === 'hash') {
    let cursor = '0';
    do {
      const [next, entries] = await redis.hscan(outcomesKey, cursor, 'COUNT', 2000);
      cursor = next;
      for (let i = 1; i < entries.length; i += 2) {
        recordBytes += Buffer.byteLength(entries[i]);
        records++;
      }
    } while (cursor !== '0');
  }
  return { count, finishes, byStatus, byReason, maxAttempts, avgRecordBytes: records ? recordBytes / records : undefined };
}

/** Rate over the span from the first to the last event: (n - 1) intervals over (last - first). */
export function spanRate(n, firstMs, lastMs) {
  const span = lastMs - firstMs;
  return span > 0 ? (n - 1) / (span / 1000) : undefined;
}

/** Events per whole second from the first one: the distribution says whether throughput was even or had holes. */
export function perSecond(times) {
  if (times.length === 0) return undefined;
  const first = times[0];
  const buckets = new Array(Math.floor((times[times.length - 1] - first) / 1000) + 1).fill(0);
  for (const t of times) buckets[Math.floor((t - first) / 1000)]++;
  const full = buckets.slice(0, -1); // the last second is partial
  const sorted = [...full].sort((a, b) => a - b);
  return {
    seconds: buckets.length,
    min: sorted[0],
    p10: percentile(sorted, 10),
    median: percentile(sorted, 50),
    max: sorted[sorted.length - 1],
    /** seconds (all but the last) in which fewer than 90% of the mean went through */
    thinSeconds: full.filter((c) => c < 0.9 * (times.length / buckets.length)).length,
    emptySeconds: full.filter((c) => c === 0).length,
  };
}

/** Loads the latency probes' files (one per worker) into one list of requests sorted by start. */
export function readProbes(files) {
  const reqs = [];
  const missing = [];
  for (const file of files) {
    let rec;
    try {
      rec = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      missing.push(file);
      continue;
    }
    for (let i = 0; i < rec.start.length; i++) reqs.push({ start: rec.start[i], ms: rec.ms[i], status: rec.status[i] });
  }
  reqs.sort((a, b) => a.start - b.start);
  return { reqs, missing };
}

/** Counts the pino lines of children's stderr by message (warn and above, since LOG_LEVEL=warn). */
export function logSummary(children) {
  const byMsg = {};
  let other = 0;
  for (const child of children) {
    for (const line of child.stderrLines) {
      if (!line.trim()) continue;
      try {
        const entry = JSON.parse(line);
        const key = `${entry.level >= 50 ? 'error' : entry.level >= 40 ? 'warn' : 'info'}: ${entry.msg}`;
        byMsg[key] = (byMsg[key] ?? 0) + 1;
      } catch {
        other++;
      }
    }
  }
  return { byMsg, otherLines: other };
}

/** Times (epoch ms) of log lines with this message, from every child. */
export function logTimes(children, msg) {
  const times = [];
  for (const child of children) {
    for (const line of child.stderrLines) {
      if (!line.includes(msg)) continue;
      try {
        const entry = JSON.parse(line);
        if (entry.msg === msg) times.push({ time: entry.time, ...entry });
      } catch {
        // not JSON
      }
    }
  }
  return times.sort((a, b) => a.time - b.time);
}
