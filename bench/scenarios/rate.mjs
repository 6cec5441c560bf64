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
  log(`rate: ${rows} rows queued in ${(ingest.ms / 1000).toFixed(1)} s (${ctx.opts.rateOrder} order); starting ${WORKERS} workers at --rate ${RATE}`);

  const ledger = new ctx.lib.RunLedger(ctx.redis, prefix, runId);
  const probeFiles = [];
  const workers = [];
  for (let i = 0; i < WORKERS; i++) {
    probeFiles.push(join(ctx.tmp, `probe-rate-${i}.json`));
    workers.push(startWork(ctx, { prefix, apiUrl: sandbox.url, args: ['--rate', String(RATE)], probeOut: probeFiles[i] }));
  }
  const spawnedAt = Math.min(...workers.map((w) => w.spawnedAt));
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
    // Stats first (the workers are idle once the run is complete), then SIGTERM: the probes write on exit.
    ctx.rateStats = await sandbox.stats().catch(() => undefined);
    await Promise.all(workers.map((w) => stopChild(w, { signal: 'SIGTERM', graceMs: 40_000 })));
  }
  const stats = ctx.rateStats;
  const exits = workers.map((w) => ({ code: w.exitCode, signal: w.signalCode }));

  const outcomes = await readOutcomes(ctx.redis, ledger.keys.outcomes);
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
    configuredRate: RATE,
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
    ledger: { succeeded: state.rows_succeeded, failed: state.rows_failed, requestsSent: state.requests_sent, byHttpStatus: state.by_http_status, byReason: outcomes.byReason, maxAttempts: outcomes.maxAttempts },
    perSecondSucceeded: perSecond(outcomes.finishes),
    requests,
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
 * What the client saw (from the latency probes): latency percentiles, how bursty the request starts were,
 * and where the 429s fell relative to the bursts BullMQ's fixed-window limiter makes.
 */
export function analyseRequests({ reqs, missing }, rate) {
  if (reqs.length === 0) return { missingProbes: missing };
  const sortedMs = (list) => list.map((r) => r.ms).sort((a, b) => a - b);
  const ok = sortedMs(reqs.filter((r) => r.status >= 200 && r.status < 300));
  const all = sortedMs(reqs);
  const byStatus = {};
  for (const r of reqs) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
  const starts = reqs.map((r) => r.start);

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
  // Bursts: a new one begins after a gap of more than 250 ms without a request start.
  const burstStarts = [starts[0]];
  for (let i = 1; i < starts.length; i++) if (starts[i] - starts[i - 1] > 250) burstStarts.push(starts[i]);
  const burstGaps = burstStarts.slice(1).map((s, i) => s - burstStarts[i]).sort((a, b) => a - b);
  // Each 429: its offset into its burst, and how long until the next request started after its answer (a queue pause).
  const limited = [];
  let b = 0;
  for (let i = 0; i < reqs.length; i++) {
    const r = reqs[i];
    while (b + 1 < burstStarts.length && burstStarts[b + 1] <= r.start) b++;
    if (r.status !== 429) continue;
    const answered = r.start + r.ms;
    const next = reqs.find((q, k) => k > i && q.start > answered);
    limited.push({ offsetInBurstMs: round(r.start - burstStarts[b], 1), burstIntervalMs: b > 0 ? round(burstStarts[b] - burstStarts[b - 1], 1) : undefined, nextStartAfterMs: next ? round(next.start - answered, 1) : undefined });
  }
  return {
    probed: reqs.length,
    missingProbes: missing,
    byStatus,
    latencyMs: { p50: percentile(all, 50), p95: percentile(all, 95), p99: percentile(all, 99), max: all[all.length - 1] },
    latency2xxMs: { p50: percentile(ok, 50), p95: percentile(ok, 95), p99: percentile(ok, 99) },
    maxStartsPerSlidingSecond: maxIn(1000),
    maxStartsPer100ms: maxIn(100),
    meanStartsPer100ms: round((reqs.length / ((starts[starts.length - 1] - starts[0]) / 1000 || 1)) / 10, 1),
    bursts: burstStarts.length,
    burstIntervalMs: burstGaps.length ? { min: round(burstGaps[0], 1), p50: round(percentile(burstGaps, 50), 1), max: round(burstGaps[burstGaps.length - 1], 1) } : undefined,
    rateLimited: limited.slice(0, 200),
    targetPerSecond: rate,
  };
}
