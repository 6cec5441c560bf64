// Scenario 3, worker overhead: an unlimited sandbox (no limit, no latency), 20,000 rows of realistic payloads
// (lib/payloads.mjs: App Store receipts of 2–8 KB, Play tokens, Stripe ids, attributes, ~3% refused by the
// store), one `rc-migrate work --rate 100000 --concurrency 64`; then BullMQ with an empty processor on the same
// jobs (queued by the same ingester). Both processes carry lib/redis-probe.mjs, which counts their Redis
// commands and round trips between the first and the last completion; INFO commandstats gives the server's
// side. Scenario 4, ledger: what stays in Redis per finished row, measured on scenario 3's run before cleanup.
import { join } from 'node:path';
import { spawnNode, startSandboxLibrary, stopChild, watchProcess } from '../lib/children.mjs';
import { describePayloads, writePayloadCsv } from '../lib/payloads.mjs';
import { ingestWithLibrary, readOutcomes, spanRate, startWork, waitForRun } from '../lib/pipeline.mjs';
import { deletePrefix, prefixMemory, redisCpuSeconds, scanKeys } from '../lib/redis.mjs';
import { REDIS_PROBE_URL, commandStats, commandStatsPerRow, probePerRow, runMarks, scriptNames } from '../lib/roundtrips.mjs';
import { ROOT, log, round, scaled } from '../lib/util.mjs';

const RATE = 100_000;
const CONCURRENCY = 64;
export const GOAL_RATIO = 0.5;

export async function overheadScenario(ctx) {
  const rows = scaled(20_000, ctx.scale, 100);
  const runId = 'bench-overhead';
  const file = join(ctx.tmp, 'overhead.csv');
  const payloads = await writePayloadCsv(file, rows, { tag: 'o', rowsPerUser: 2 });
  log(`overhead: payloads ${describePayloads(payloads)}`);
  const sandbox = await startSandboxLibrary({ unlimited: true });
  const names = await scriptNames();
  const result = { rows, concurrency: CONCURRENCY, rate: RATE, sandbox: 'startSandbox({unlimited: true}) in a child process', payloads };
  try {
    // Ours.
    {
      const prefix = ctx.newPrefix('overhead');
      await ingestWithLibrary(ctx, prefix, runId, file);
      const ledger = new ctx.lib.RunLedger(ctx.redis, prefix, runId);
      const redisCpu0 = await redisCpuSeconds(ctx.redis);
      log(`overhead: ${rows} rows, one worker --rate ${RATE} --concurrency ${CONCURRENCY}, unlimited sandbox`);
      const probeFile = join(ctx.tmp, 'redis-probe-overhead.jsonl');
      const worker = startWork(ctx, { prefix, apiUrl: sandbox.url, args: ['--rate', String(RATE), '--concurrency', String(CONCURRENCY)], redisProbeOut: probeFile });
      const proc = watchProcess(worker.pid, 250);
      const sandboxProc = watchProcess(sandbox.child.pid, 250);
      const marks = runMarks(ctx.redis, [worker], [probeFile]);
      let state;
      try {
        state = await waitForRun(ledger, { workers: [worker], timeoutMs: Math.max(120_000, rows * 20), pollMs: 100, onTick: (s) => marks.tick(s) });
        await marks.end(state);
      } finally {
        proc.sample();
        sandboxProc.sample();
        await stopChild(worker, { signal: 'SIGTERM', graceMs: 40_000 });
      }
      const p = proc.stop();
      const sp = sandboxProc.stop();
      const redisCpu = (await redisCpuSeconds(ctx.redis)) - redisCpu0;
      const stats = await sandbox.stats();
      const outcomes = await readOutcomes(ctx.redis, ledger);
      const first = outcomes.finishes[0];
      const last = outcomes.finishes[outcomes.finishes.length - 1];
      const measured = await marks.result(names);
      result.ours = {
        measuredFrom: 'ledger outcome finished_at (first to last outcome)',
        spanMs: last - first,
        wallMs: last - worker.spawnedAt,
        perSecond: round(spanRate(outcomes.count, first, last), 0),
        perSecondWall: round(outcomes.count / ((last - worker.spawnedAt) / 1000), 0),
        succeeded: state.rows_succeeded,
        failed: state.rows_failed,
        requestsSent: state.requests_sent,
        byReason: outcomes.byReason,
        sandbox: { successfulReceipts: stats.successfulReceipts, overlaps: stats.overlaps, rateLimited: stats.rateLimited, requests: stats.requests, byCode: stats.byCode },
        workerCpuSeconds: p.cpuSeconds,
        workerCpuMsPerRow: p.cpuSeconds !== undefined ? round((p.cpuSeconds * 1000) / rows, 3) : undefined,
        workerPeakRss: p.peakRss,
        workerVmHwm: p.hwm,
        sandboxCpuSeconds: sp.cpuSeconds,
        redisCpuSeconds: round(redisCpu, 2),
        redis: measured,
        exit: { code: worker.exitCode, signal: worker.signalCode },
      };
      const rt = measured?.client;
      log(
        `overhead: ours ${result.ours.perSecond} receipts/s (worker CPU ${result.ours.workerCpuMsPerRow} ms/row; Redis ${rt?.roundTripsPerRow ?? '?'} round trips, ${rt?.commandsPerRow ?? '?'} commands per row)`,
      );

      // Scenario 4: what stays in Redis per finished row (every key under the prefix, grouped by shape), and
      // what the queue left behind.
      const finished = state.rows_succeeded + state.rows_failed;
      const mem = await prefixMemory(ctx.redis, prefix, { runId });
      const queueShape = (shape) => shape.startsWith(`${ctx.lib.RECEIPTS_QUEUE}:`) || shape.startsWith('runs:');
      const ledgerGroups = Object.fromEntries(Object.entries(mem.groups).filter(([shape]) => !queueShape(shape)));
      const queueGroups = Object.fromEntries(Object.entries(mem.groups).filter(([shape]) => queueShape(shape)));
      const sum = (groups) => Object.values(groups).reduce((a, g) => a + g.bytes, 0);
      const ledgerBytes = sum(ledgerGroups);
      const queueKeys = await scanKeys(ctx.redis, `${prefix}:${ctx.lib.RECEIPTS_QUEUE}:*`);
      const eventsKey = `${prefix}:${ctx.lib.RECEIPTS_QUEUE}:events`;
      const eventsLen = queueKeys.includes(eventsKey) ? await ctx.redis.xlen(eventsKey) : 0;
      // Job ids are `<run id>.<fingerprint>` (jobIdOf): any key of that shape is a job the queue kept.
      const jobHashes = queueKeys.filter((k) => k.startsWith(`${prefix}:${ctx.lib.RECEIPTS_QUEUE}:${runId}.`) && !k.endsWith(':logs') && !k.endsWith(':lock'));
      result.ledger = {
        finishedRows: finished,
        failedRows: state.rows_failed,
        ledgerBytes,
        bytesPerRow: round(ledgerBytes / finished, 1),
        byShape: Object.fromEntries(Object.entries(ledgerGroups).map(([k, g]) => [k, { keys: g.keys, bytes: g.bytes, perRow: round(g.bytes / finished, 1) }])),
        avgOutcomeRecordBytes: outcomes.avgRecordBytes === undefined ? undefined : round(outcomes.avgRecordBytes, 1),
        queueLeftover: { keys: queueKeys.length, bytes: sum(queueGroups), byShape: queueGroups, eventsStreamLength: eventsLen, jobHashesLeft: jobHashes.length },
        measuredWith:
          'MEMORY USAGE … SAMPLES 0 of every key under the prefix after the run; everything not BullMQ’s is the ledger, the cross-run migrated set, locks and rate state',
      };
      log(
        `ledger: ${result.ledger.bytesPerRow} bytes/row (${Object.keys(ledgerGroups).join(', ')}); queue leftovers ${queueKeys.length} keys, ${result.ledger.queueLeftover.bytes} bytes`,
      );
      await deletePrefix(ctx.redis, prefix);
    }

    // BullMQ with an empty processor, same concurrency and limiter, on the same jobs.
    {
      const prefix = ctx.newPrefix('overhead-empty');
      await ingestWithLibrary(ctx, prefix, runId, file);
      log(`overhead: BullMQ empty processor, concurrency ${CONCURRENCY}, on ${rows} identical jobs`);
      const redisCpu0 = await redisCpuSeconds(ctx.redis);
      const probeFile = join(ctx.tmp, 'redis-probe-empty.jsonl');
      const stats0 = await commandStats(ctx.redis);
      const child = spawnNode(join(ROOT, 'bench', 'lib', 'empty-worker.mjs'), [], {
        name: 'empty worker',
        nodeArgs: ['--import', REDIS_PROBE_URL],
        env: {
          BENCH_REDIS_URL: ctx.redisUrl,
          BENCH_PREFIX: prefix,
          BENCH_CONCURRENCY: String(CONCURRENCY),
          BENCH_RATE: String(RATE),
          BENCH_EXPECT: String(rows),
          BENCH_TIMEOUT_MS: String(Math.max(120_000, rows * 20)),
          BENCH_REDIS_PROBE_OUT: probeFile,
        },
      });
      const proc = watchProcess(child.pid, 250);
      const exit = await child.exited;
      const p = proc.stop();
      const stats1 = await commandStats(ctx.redis);
      const redisCpu = (await redisCpuSeconds(ctx.redis)) - redisCpu0;
      await deletePrefix(ctx.redis, prefix);
      if (exit.code !== 0) throw new Error(`empty worker exited with ${exit.code ?? exit.signal}: ${child.stderrLines.slice(-3).join(' | ')} ${child.stdoutText()}`);
      const r = JSON.parse(child.stdoutText().trim().split('\n').pop());
      result.empty = {
        spanMs: r.lastMs - r.firstMs,
        wallMs: r.lastMs - child.spawnedAt,
        perSecond: round(spanRate(r.count, r.firstMs, r.lastMs), 0),
        perSecondWall: round(r.count / ((r.lastMs - child.spawnedAt) / 1000), 0),
        count: r.count,
        cpuSeconds: p.cpuSeconds,
        cpuMsPerJob: p.cpuSeconds !== undefined ? round((p.cpuSeconds * 1000) / rows, 3) : undefined,
        redisCpuSeconds: round(redisCpu, 2),
        redis: {
          client: probePerRow([probeFile], r.markedJobs, names),
          // spawn to exit: start-up and close included (a few dozen commands), so slightly above the probe's figure
          server: commandStatsPerRow(stats0, stats1, r.count),
        },
      };
      result.ratio = round(result.ours.perSecond / result.empty.perSecond, 3);
      result.goalRatio = GOAL_RATIO;
      log(
        `overhead: empty processor ${result.empty.perSecond} jobs/s (${result.empty.redis.client.roundTripsPerRow ?? '?'} round trips/job) → ratio ours/empty ${result.ratio} (goal ≥ ${GOAL_RATIO})`,
      );
    }
  } finally {
    await sandbox.stop();
  }
  return result;
}
