// Scenario 3, worker overhead: a sandbox with no limit and no latency, 20,000 rows, one `rc-migrate work
// --rate 100000 --concurrency 64`; then BullMQ with an empty processor on 20,000 equivalent jobs (the same
// rows queued by the same ingester, so the jobs are identical). Scenario 4, ledger: Redis bytes per finished row,
// measured on scenario 3's run before it is cleaned up.
import { join } from 'node:path';
import { spawnNode, startSandboxChild, stopChild, watchProcess } from '../lib/children.mjs';
import { writeReceiptsCsv } from '../lib/csv.mjs';
import { ingestWithLibrary, readOutcomes, spanRate, startWork, waitForRun } from '../lib/pipeline.mjs';
import { deletePrefix, memoryOfKeys, redisCpuSeconds, scanKeys } from '../lib/redis.mjs';
import { ROOT, log, round, scaled } from '../lib/util.mjs';

const RATE = 100_000;
const CONCURRENCY = 64;

export async function overheadScenario(ctx) {
  const rows = scaled(20_000, ctx.scale, 100);
  const runId = 'bench-overhead';
  const file = join(ctx.tmp, 'overhead.csv');
  await writeReceiptsCsv(file, rows, { tag: 'o', rowsPerUser: 4 });
  const sandbox = await startSandboxChild(['--rate-limit', '0', '--latency', '0']);
  const result = { rows, concurrency: CONCURRENCY, rate: RATE, sandboxUrl: sandbox.url };
  try {
    // Ours.
    {
      const prefix = ctx.newPrefix('overhead');
      await ingestWithLibrary(ctx, prefix, runId, file);
      const ledger = new ctx.lib.RunLedger(ctx.redis, prefix, runId);
      const redisCpu0 = await redisCpuSeconds(ctx.redis);
      log(`overhead: ${rows} rows, one worker --rate ${RATE} --concurrency ${CONCURRENCY}, sandbox without limit or latency`);
      const worker = startWork(ctx, { prefix, apiUrl: sandbox.url, args: ['--rate', String(RATE), '--concurrency', String(CONCURRENCY)] });
      const proc = watchProcess(worker.pid, 250);
      const sandboxProc = watchProcess(sandbox.child.pid, 250);
      let state;
      try {
        state = await waitForRun(ledger, { workers: [worker], timeoutMs: Math.max(120_000, rows * 20), pollMs: 100 });
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
        sandbox: { successfulReceipts: stats.successfulReceipts, overlaps: stats.overlaps, rateLimited: stats.rateLimited, requests: stats.requests },
        workerCpuSeconds: p.cpuSeconds,
        workerCpuMsPerRow: p.cpuSeconds !== undefined ? round((p.cpuSeconds * 1000) / rows, 3) : undefined,
        workerPeakRss: p.peakRss,
        sandboxCpuSeconds: sp.cpuSeconds,
        redisCpuSeconds: round(redisCpu, 2),
        exit: { code: worker.exitCode, signal: worker.signalCode },
      };
      log(`overhead: ours ${result.ours.perSecond} receipts/s (worker CPU ${result.ours.workerCpuMsPerRow} ms/row)`);

      // Scenario 4: the ledger's Redis bytes per finished row, and what the queue left behind.
      const keys = ctx.lib.runKeys(prefix, runId);
      const ledgerMem = await memoryOfKeys(ctx.redis, Object.values(keys));
      const ledgerBytes = Object.values(ledgerMem).reduce((a, b) => a + b, 0);
      const finished = state.rows_succeeded + state.rows_failed;
      const queueKeys = await scanKeys(ctx.redis, `${prefix}:${ctx.lib.RECEIPTS_QUEUE}:*`);
      const queueMem = await memoryOfKeys(ctx.redis, queueKeys);
      const known = new Set([...Object.values(keys), ...queueKeys]);
      const otherKeys = (await scanKeys(ctx.redis, `${prefix}:*`)).filter((k) => !known.has(k));
      const otherMem = await memoryOfKeys(ctx.redis, otherKeys);
      const eventsKey = `${prefix}:${ctx.lib.RECEIPTS_QUEUE}:events`;
      const eventsLen = queueKeys.includes(eventsKey) ? await ctx.redis.xlen(eventsKey) : 0;
      const strip = (mem) => Object.fromEntries(Object.entries(mem).map(([k, v]) => [k.slice(prefix.length + 1), v]).sort((a, b) => b[1] - a[1]));
      result.ledger = {
        finishedRows: finished,
        ledgerBytes,
        bytesPerRow: round(ledgerBytes / finished, 1),
        byKey: Object.fromEntries(Object.entries(ledgerMem).map(([k, v]) => [k.slice(prefix.length + 1), { bytes: v, perRow: round(v / finished, 1) }])),
        avgOutcomeRecordBytes: round(outcomes.avgRecordBytes, 1),
        queueLeftover: { keys: queueKeys.length, bytes: Object.values(queueMem).reduce((a, b) => a + b, 0), byKey: strip(queueMem), eventsStreamLength: eventsLen },
        otherKeys: { keys: otherKeys.length, bytes: Object.values(otherMem).reduce((a, b) => a + b, 0), byKey: strip(otherMem) },
      };
      log(`ledger: ${result.ledger.bytesPerRow} bytes/row; queue leftovers ${queueKeys.length} keys, ${result.ledger.queueLeftover.bytes} bytes`);
      await deletePrefix(ctx.redis, prefix);
    }

    // BullMQ with an empty processor, same concurrency and limiter, on the same 20,000 jobs.
    {
      const prefix = ctx.newPrefix('overhead-empty');
      await ingestWithLibrary(ctx, prefix, runId, file);
      log(`overhead: BullMQ empty processor, concurrency ${CONCURRENCY}, on ${rows} identical jobs`);
      const redisCpu0 = await redisCpuSeconds(ctx.redis);
      const child = spawnNode(join(ROOT, 'bench', 'lib', 'empty-worker.mjs'), [], {
        name: 'empty worker',
        env: { BENCH_REDIS_URL: ctx.redisUrl, BENCH_PREFIX: prefix, BENCH_CONCURRENCY: String(CONCURRENCY), BENCH_RATE: String(RATE), BENCH_EXPECT: String(rows), BENCH_TIMEOUT_MS: String(Math.max(120_000, rows * 20)) },
      });
      const proc = watchProcess(child.pid, 250);
      const exit = await child.exited;
      const p = proc.stop();
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
      };
      result.ratio = round(result.ours.perSecond / result.empty.perSecond, 3);
      log(`overhead: empty processor ${result.empty.perSecond} jobs/s → ratio ours/empty ${result.ratio}`);
    }
  } finally {
    await sandbox.stop();
  }
  return result;
}
