// Scenario 1, rate utilisation: 20,000 rows queued, two `rc-migrate work --rate 100` processes against a
// sandbox limited to 100 requests/s (sliding 1-second window) with 50 ms latency. How close to the limit does
// the pipeline run, and how often does it overshoot (429)?
import { join } from 'node:path';
import { stopChild } from '../lib/children.mjs';
import { writeReceiptsCsv } from '../lib/csv.mjs';
import { ingestWithLibrary, logSummary, logTimes, perSecond, progressLogger, readOutcomes, readProbes, spanRate, startWork, waitForRun } from '../lib/pipeline.mjs';
import { log, percentile, round, scaled } from '../lib/util.mjs';

export const RATE = 100;
export const LATENCY_MS = 50;
export const RATE_SANDBOX_FLAGS = ['--rate-limit', String(RATE), '--latency', String(LATENCY_MS)];
const WORKERS = 2;

export async function rateScenario(ctx, sandbox) {
  const rows = scaled(20_000, ctx.scale, 100);
  const prefix = ctx.newPrefix('rate');
  const runId = 'bench-rate';
  const file = join(ctx.tmp, 'rate.csv');
  await writeReceiptsCsv(file, rows, { tag: 'r', rowsPerUser: 4, order: ctx.opts.rateOrder });
  await sandbox.reset();
  const ingest = await ingestWithLibrary(ctx, prefix, runId, file);
  if (ingest.result.queued !== rows) throw new Error(`expected ${rows} rows queued, the ingester queued ${ingest.result.queued} (rejected ${ingest.result.rejected})`);
  const workerRate = ctx.opts.workerRate ?? RATE;
  log(`rate: ${rows} rows queued in ${(ingest.ms / 1000).toFixed(1)} s (${ctx.opts.rateOrder} order); starting ${WORKERS} workers at --rate ${workerRate}`);

  const ledger = new ctx.lib.RunLedger(ctx.redis, prefix, runId);
  const probeFiles = [];
  const workers = [];
  for (let i = 0; i < WORKERS; i++) {
    probeFiles.push(join(ctx.tmp, `probe-rate-${i}.json`));
    workers.push(startWork(ctx, { prefix, apiUrl: sandbox.url, args: ['--rate', String(workerRate)], probeOut: probeFiles[i] }));
  }
  const spawnedAt = Math.min(...workers.map((w) => w.spawnedAt));
  // Rows put back because their user had a request in flight sit in the delayed set for userBusyDelayMs
  // (250 ms) plus jitter (up to 250 ms): sampling its size shows the per-user lock churn.
  const delayedSamples = [];
  const sampler = setInterval(() => {
    ctx.redis.zcard(`${prefix}:receipts:delayed`).then(
      (n) => delayedSamples.push(n),
      () => undefined,
    );
  }, 250);
  let state;
  try {
    state = await waitForRun(ledger, {
      workers,
      timeoutMs: ((rows / RATE) * 3 + 60) * 1000,
      pollMs: 250,
      onTick: progressLogger('rate', rows, 15_000, async () => {
        const s = await sandbox.stats();
        return `, sandbox: ${s.successfulReceipts} ok, ${s.rateLimited} rate-limited, ${s.overlaps} overlaps`;
      }),
    });
  } finally {
    clearInterval(sampler);
    // Stats first (the workers are idle once the run is complete), then SIGTERM: the probes write on exit.
    ctx.rateStats = await sandbox.stats().catch(() => undefined);
    await Promise.all(workers.map((w) => stopChild(w, { signal: 'SIGTERM', graceMs: 40_000 })));
  }
  const stats = ctx.rateStats;
  const exits = workers.map((w) => ({ code: w.exitCode, signal: w.signalCode }));

  const outcomes = await readOutcomes(ctx.redis, ledger);
  const first = outcomes.finishes[0];
  const last = outcomes.finishes[outcomes.finishes.length - 1];
  const posts = stats.byPath['POST /v1/receipts'] ?? 0;
  const achieved = spanRate(stats.successfulReceipts, first, last);
  const rateKey = await ctx.redis.type(`${prefix}:rate`).then((t) => (t === 'hash' ? ctx.redis.hgetall(`${prefix}:rate`) : undefined));
  const requests = analyseRequests(readProbes(probeFiles), RATE);
  const logs = logSummary(workers);
  const pauses = logTimes(workers, 'rate limited: pausing the queue');

  const result = {
    rows,
    order: ctx.opts.rateOrder,
    workers: WORKERS,
    configuredRate: workerRate,
    sandboxKnobs: { rateLimitPerSecond: RATE, latencyMs: LATENCY_MS },
    ingestMs: Math.round(ingest.ms),
    measuredFrom: 'ledger outcome finished_at timestamps (first to last outcome); counts from sandbox stats',
    firstOutcomeAt: new Date(first).toISOString(),
    lastOutcomeAt: new Date(last).toISOString(),
    spanMs: last - first,
    /** from spawning the workers to the last outcome: the time a user waits for the rows once queued */
    wallMs: last - spawnedAt,
    idealMs: (rows / RATE) * 1000,
    achievedPerSecond: round(achieved, 2),
    utilisation: round(achieved / RATE, 4),
    sandboxStats: stats,
    postRequests: posts,
    rateLimited: stats.rateLimited,
    rateLimitedShare: posts ? stats.rateLimited / posts : undefined,
    overlaps: stats.overlaps,
    ledger: {
      succeeded: state.rows_succeeded,
      failed: state.rows_failed,
      requestsSent: state.requests_sent,
      byHttpStatus: state.by_http_status,
      byReason: outcomes.byReason,
      maxAttempts: outcomes.maxAttempts,
    },
    perSecondSucceeded: perSecond(outcomes.finishes),
    requests,
    delayedSet: {
      samples: delayedSamples.length,
      max: Math.max(0, ...delayedSamples),
      mean: round(delayedSamples.reduce((a, b) => a + b, 0) / (delayedSamples.length || 1), 2),
      /** sum of sampled sizes × 250 ms / 375 ms mean stay: an estimate of how many times a row found its user busy */
      estimatedUserBusyEvents: Math.round((delayedSamples.reduce((a, b) => a + b, 0) * 250) / 375),
    },
    queuePausesLogged: pauses.length,
    queuePauseWaitMs: pauses.map((p) => p.waitMs),
    rateControllerState: rateKey,
    workerLogs: logs,
    workerExits: exits,
  };
  log(
    `rate: ${result.achievedPerSecond}/s over ${(result.spanMs / 1000).toFixed(1)} s, utilisation ${result.utilisation}, ` +
      `429s ${stats.rateLimited}/${posts}, overlaps ${stats.overlaps}`,
  );
  return result;
}

/**
 * What the client saw (from the latency probes): latency percentiles, how bursty the request starts were
 * (BullMQ's limiter admits `max` jobs per fixed window), and for each 429 when it came and what preceded it.
 */
export function analyseRequests({ reqs, missing }, rate) {
  if (reqs.length === 0) return { missingProbes: missing };
  const sortedMs = (list) => list.map((r) => r.ms).sort((a, b) => a - b);
  const ok = sortedMs(reqs.filter((r) => r.status >= 200 && r.status < 300));
  const all = sortedMs(reqs);
  const byStatus = {};
  for (const r of reqs) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
  const starts = reqs.map((r) => r.start);
  const t0 = starts[0];

  // Most request starts in any sliding window (1 s: the sandbox's window; 100 ms: burstiness).
  const maxIn = (windowMs) => {
    let best = 0;
    let j = 0;
    for (let i = 0; i < starts.length; i++) {
      while (starts[i] - starts[j] >= windowMs) j++;
      best = Math.max(best, i - j + 1);
    }
    return best;
  };
  // Gaps in the request stream longer than 300 ms (a queue pause after a 429 shows up as one of ~1 s).
  const gaps = [];
  for (let i = 1; i < starts.length; i++) if (starts[i] - starts[i - 1] > 300) gaps.push({ atMs: round(starts[i - 1] - t0, 0), gapMs: round(starts[i] - starts[i - 1], 0) });
  // Request starts per second, second by second from the first (the client-side rate, pauses included).
  const perSec = new Array(Math.floor((starts[starts.length - 1] - t0) / 1000) + 1).fill(0);
  for (const s of starts) perSec[Math.floor((s - t0) / 1000)]++;
  const limited = [];
  let j = 0;
  for (let i = 0; i < reqs.length; i++) {
    const r = reqs[i];
    while (starts[i] - starts[j] >= 1000) j++;
    if (r.status !== 429) continue;
    const answered = r.start + r.ms;
    let k = i + 1;
    while (k < reqs.length && reqs[k].start <= answered) k++;
    limited.push({ atMs: round(r.start - t0, 1), startsInPrecedingSecond: i - j + 1, nextStartAfterMs: k < reqs.length ? round(reqs[k].start - answered, 1) : undefined });
  }
  return {
    probed: reqs.length,
    missingProbes: missing,
    byStatus,
    latencyMs: { p50: percentile(all, 50), p95: percentile(all, 95), p99: percentile(all, 99), max: all[all.length - 1] },
    latency2xxMs: { p50: percentile(ok, 50), p95: percentile(ok, 95), p99: percentile(ok, 99) },
    maxStartsPerSlidingSecond: maxIn(1000),
    maxStartsPer100ms: maxIn(100),
    meanStartsPerSecond: round(reqs.length / ((starts[starts.length - 1] - t0) / 1000 || 1), 1),
    startsPerSecond: perSec,
    gapsOver300ms: gaps.slice(0, 100),
    rateLimited: limited.slice(0, 200),
    targetPerSecond: rate,
  };
}
