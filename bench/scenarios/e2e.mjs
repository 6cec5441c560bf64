// Scenario e2e: a whole migration as an operator runs one, on realistic payloads (lib/payloads.mjs), against an
// unlimited sandbox (no rate limit, no latency: the machine sets the pace). 1,000,000 rows (--quick: 50,000;
// --e2e-rows N), one `rc-migrate ingest` with the high-water mark on and two `rc-migrate work` processes started
// together, then `rc-migrate report`. Measured:
//   - rows/s, end to end (ingest spawned → ledger complete) and between the first outcome and the last;
//   - peak RSS (VmHWM from /proc/<pid>/status) of the ingester, each worker, the report and the sandbox;
//   - Redis used_memory every 250 ms: baseline, peak, after the run; MEMORY USAGE of every key the run left
//     (the ledger, the cross-run migrated set, …), per finished row; the bound the peak should keep,
//     high-water mark × payload + ledger, with the payload taken as the mean CSV row and as the mean job hash
//     (MEMORY USAGE of sampled waiting jobs);
//   - Redis round trips per row of the workers (lib/redis-probe.mjs) and INFO commandstats per row;
//   - the time `rc-migrate report` takes;
//   - a projection to 10 M and 50 M rows: Redis after and at peak, and time at 20/s, 100/s, 1,000/s and at
//     this run's pace.
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { alive, spawnCli, startSandboxLibrary, stopChild, watchProcess } from '../lib/children.mjs';
import { describePayloads, writePayloadCsv } from '../lib/payloads.mjs';
import { progressLogger, startWork } from '../lib/pipeline.mjs';
import { prefixMemory, sampleJobBytes, settleLazyFree, usedMemory, watchRedisMemory } from '../lib/redis.mjs';
import { runMarks, scriptNames } from '../lib/roundtrips.mjs';
import { duration, log, round, secs, sleep } from '../lib/util.mjs';

const WORKERS = 2;
const RATE = 100_000;
const CONCURRENCY = 64;
export const FULL_ROWS = 1_000_000;
export const QUICK_ROWS = 50_000;
/** The configuration's default high-water mark, used at full size; smaller runs scale it down. */
const FULL_HIGH_WATER_MARK = 50_000;
export const INGESTER_RSS_GOAL = 150 * 1024 * 1024;
export const PROJECT_ROWS = [10_000_000, 50_000_000];
export const PROJECT_RATES = [20, 100, 1000];

/** Rows of the run: --e2e-rows, else 1,000,000 at full size and 50,000 with --quick (scale 0.1). */
export function e2eRows(opts) {
  if (opts.e2eRows) return opts.e2eRows;
  return opts.scale >= 1 ? FULL_ROWS : Math.max(1000, Math.round(FULL_ROWS * opts.scale * 0.5));
}

export async function e2eScenario(ctx) {
  const rows = e2eRows(ctx.opts);
  const hwm = ctx.opts.e2eHighWaterMark ?? (rows >= FULL_ROWS ? FULL_HIGH_WATER_MARK : Math.max(1000, Math.round((FULL_HIGH_WATER_MARK * rows) / FULL_ROWS)));
  const prefix = ctx.newPrefix('e2e');
  const runId = 'bench-e2e';
  const file = join(ctx.tmp, 'e2e.csv');
  const reportDir = join(ctx.tmp, 'report-e2e');
  const timeoutMs = Math.max(600_000, rows * 6);

  log(`e2e: writing a ${rows}-row CSV of realistic payloads`);
  const genStarted = performance.now();
  const payloads = await writePayloadCsv(file, rows, { tag: 'e', rowsPerUser: 2 });
  log(`e2e: ${describePayloads(payloads)} (${secs(performance.now() - genStarted)})`);
  // The sandbox keeps every (user, token) pair it saw: with receipts of 5 KB on average that is gigabytes at a
  // million rows, past node's default heap.
  const sandbox = await startSandboxLibrary({ unlimited: true }, { heapMb: rows > 200_000 ? 12_288 : undefined });
  const names = await scriptNames();
  const result = {
    rows,
    workers: WORKERS,
    rate: RATE,
    concurrency: CONCURRENCY,
    highWaterMark: hwm,
    payloads,
    csvWriteMs: Math.round(performance.now() - genStarted),
    sandbox: 'startSandbox({unlimited: true}) in a child process',
  };

  try {
    const before = await settleLazyFree(ctx.redis).then(() => usedMemory(ctx.redis));
    const mem = await watchRedisMemory(ctx.redisUrl, 250, { seriesEveryMs: 2000 });
    const ledger = new ctx.lib.RunLedger(ctx.redis, prefix, runId);

    const ingestArgs = ['ingest', file, '--run-id', runId, '--prefix', prefix, '--redis', ctx.redisUrl, '--high-water-mark', String(hwm), '--log-level', 'warn'];
    log(`e2e: rc-migrate ingest (--high-water-mark ${hwm}) and ${WORKERS} × rc-migrate work --rate ${RATE} --concurrency ${CONCURRENCY}, unlimited sandbox`);
    const startedAt = Date.now();
    const ingester = spawnCli(ingestArgs);
    const ingestProc = watchProcess(ingester.pid, 100);
    const probeFiles = [];
    const workers = [];
    for (let i = 0; i < WORKERS; i++) {
      probeFiles.push(join(ctx.tmp, `redis-probe-e2e-${i}.jsonl`));
      workers.push(startWork(ctx, { prefix, apiUrl: sandbox.url, args: ['--rate', String(RATE), '--concurrency', String(CONCURRENCY)], redisProbeOut: probeFiles[i] }));
    }
    const workerProcs = workers.map((w) => watchProcess(w.pid, 250));
    const sandboxProc = watchProcess(sandbox.child.pid, 500);
    const marks = runMarks(ctx.redis, workers, probeFiles);

    // While the ingester runs: what a queued job costs in Redis (sampled), and how deep the queue gets.
    const jobBytes = [];
    let maxWaiting = 0;
    const sampler = setInterval(() => {
      void (async () => {
        const waiting = await ctx.redis.llen(`${prefix}:${ctx.lib.RECEIPTS_QUEUE}:wait`);
        if (waiting > maxWaiting) maxWaiting = waiting;
        if (jobBytes.length < 2000 && waiting > 100) jobBytes.push(...(await sampleJobBytes(ctx.redis, prefix, ctx.lib.RECEIPTS_QUEUE, 25)));
      })().catch(() => undefined);
    }, 1000);

    let state;
    let completeAt;
    const progress = progressLogger(
      'e2e',
      rows,
      15_000,
      async () => `, Redis ${(mem.current() / 2 ** 20).toFixed(0)} MiB (peak ${(mem.peak() / 2 ** 20).toFixed(0)} MiB)${alive(ingester) ? ', ingesting' : ''}`,
    );
    try {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        state = await ledger.state();
        marks.tick(state);
        progress(state);
        if (state.complete) {
          completeAt = Date.now();
          break;
        }
        if (!alive(ingester) && ingester.exitCode !== 0)
          throw new Error(`rc-migrate ingest exited with ${ingester.exitCode ?? ingester.signalCode}: ${ingester.stderrLines.slice(-3).join(' | ')}`);
        if (workers.every((w) => !alive(w))) throw new Error(`every worker exited before the run was complete: ${workers.flatMap((w) => w.stderrLines.slice(-3)).join(' | ')}`);
        if (Date.now() > deadline)
          throw new Error(
            `run not complete after ${duration(timeoutMs)}: ${state.rows_succeeded + state.rows_failed}/${state.rows_queued} rows have an outcome (${state.rows_read} read)`,
          );
        await sleep(250);
      }
      await marks.end(state);
    } finally {
      clearInterval(sampler);
      for (const p of [...workerProcs, ingestProc, sandboxProc]) p.sample();
      await Promise.all(workers.map((w) => stopChild(w, { signal: 'SIGTERM', graceMs: 40_000 })));
      if (alive(ingester)) await stopChild(ingester, { signal: 'SIGTERM', graceMs: 10_000 });
    }
    const ingestP = ingestProc.stop();
    const workerP = workerProcs.map((p) => p.stop());
    const m = await mem.stop();
    const measured = await marks.result(names);
    const finished = state.rows_succeeded + state.rows_failed;

    // After: used_memory once the workers are gone, and what each key the run left costs.
    await settleLazyFree(ctx.redis);
    const after = await usedMemory(ctx.redis);
    const left = await prefixMemory(ctx.redis, prefix, { runId });
    const queueShape = (shape) => shape.startsWith(`${ctx.lib.RECEIPTS_QUEUE}:`) || shape.startsWith(`${ctx.lib.RUNS_QUEUE ?? 'runs'}:`);
    const ledgerGroups = Object.entries(left.groups).filter(([shape]) => !queueShape(shape));
    const queueGroups = Object.entries(left.groups).filter(([shape]) => queueShape(shape));
    const ledgerBytes = ledgerGroups.reduce((a, [, g]) => a + g.bytes, 0);
    const queueBytes = queueGroups.reduce((a, [, g]) => a + g.bytes, 0);

    // The report, timed, from its own process (as an operator runs it, from any machine).
    log('e2e: rc-migrate report');
    const reportArgs = ['report', '--run-id', runId, '--prefix', prefix, '--redis', ctx.redisUrl, '--out', reportDir, '--log-level', 'warn'];
    const reporter = spawnCli(reportArgs);
    const reportProc = watchProcess(reporter.pid, 100);
    const reportExit = await Promise.race([reporter.exited, sleep(Math.max(300_000, rows)).then(() => 'timeout')]);
    const reportP = reportProc.stop();
    if (reportExit === 'timeout') {
      await stopChild(reporter, { signal: 'SIGTERM', graceMs: 5000 });
      throw new Error('rc-migrate report did not finish in time');
    }
    // Exit 1 is the report of a run with failed rows (the payloads include refused ones): expected.
    if (reportExit.code !== 0 && reportExit.code !== 1)
      throw new Error(`rc-migrate report exited with ${reportExit.code ?? reportExit.signal}: ${reporter.stderrLines.slice(-3).join(' | ')}`);
    const reportMs = reporter.exitedAt - reporter.spawnedAt;
    const reportFiles = await dirSizes(reportDir);
    const sandboxStats = await sandbox.stats().catch(() => undefined);
    const sandboxP = sandboxProc.stop();

    const wallMs = completeAt - startedAt;
    const meanJobBytes = jobBytes.length ? jobBytes.reduce((a, b) => a + b, 0) / jobBytes.length : undefined;
    const boundPayload = hwm * payloads.meanRowBytes + ledgerBytes;
    const boundJob = meanJobBytes === undefined ? undefined : hwm * meanJobBytes + ledgerBytes;
    // The mark is checked between chunks and does not count rows being sent: up to one chunk more waits, and
    // each worker holds up to its concurrency active. At a million rows that is 2% of the mark; at --quick, 45%.
    const slackJobs = chunkSize(ctx) + WORKERS * CONCURRENCY;
    const boundSlack = meanJobBytes === undefined ? undefined : (hwm + slackJobs) * meanJobBytes + ledgerBytes;
    const perRowAfter = ledgerBytes / finished;
    const usedPerRow = (after - before) / finished;
    const rowsPerSecond = rows / (wallMs / 1000);

    Object.assign(result, {
      command: { ingest: `node dist/cli.js ${ingestArgs.join(' ')}`, report: `node dist/cli.js ${reportArgs.join(' ')}` },
      wallMs,
      rowsPerSecond: round(rowsPerSecond, 0),
      rowsPerSecondFirstToLastOutcome: measured?.perSecondBetweenMarks,
      ledger: {
        read: state.rows_read,
        queued: state.rows_queued,
        succeeded: state.rows_succeeded,
        failed: state.rows_failed,
        rejected: state.rows_rejected,
        duplicate: state.rows_duplicate,
        requestsSent: state.requests_sent,
        byHttpStatus: state.by_http_status,
      },
      ingest: {
        wallMs: ingester.exitedAt ? ingester.exitedAt - ingester.spawnedAt : undefined,
        exit: { code: ingester.exitCode, signal: ingester.signalCode },
        stdout: ingester.stdoutText().trim().split('\n').slice(-3),
        peakRss: ingestP.peakRss,
        vmHwm: ingestP.hwm,
        cpuSeconds: ingestP.cpuSeconds,
      },
      workerProcesses: workers.map((w, i) => ({
        peakRss: workerP[i].peakRss,
        vmHwm: workerP[i].hwm,
        cpuSeconds: workerP[i].cpuSeconds,
        cpuMsPerRow: workerP[i].cpuSeconds !== undefined ? round((workerP[i].cpuSeconds * 1000) / finished, 3) : undefined,
        exit: { code: w.exitCode, signal: w.signalCode },
      })),
      sandboxProcess: { peakRss: sandboxP.peakRss, vmHwm: sandboxP.hwm, cpuSeconds: sandboxP.cpuSeconds },
      sandboxStats: sandboxStats && {
        requests: sandboxStats.requests,
        successfulReceipts: sandboxStats.successfulReceipts,
        byStatus: sandboxStats.byStatus,
        byCode: sandboxStats.byCode,
        byDirective: sandboxStats.byDirective,
        overlaps: sandboxStats.overlaps,
        rateLimited: sandboxStats.rateLimited,
        receiptPosts: sandboxStats.receiptPosts,
      },
      report: {
        ms: reportMs,
        msPerRow: round(reportMs / finished, 4),
        exit: reportExit,
        peakRss: reportP.peakRss,
        vmHwm: reportP.hwm,
        cpuSeconds: reportP.cpuSeconds,
        files: reportFiles,
      },
      redis: {
        before,
        baseline: m.baseline,
        peak: m.peak,
        peakAt: new Date(m.peakAt).toISOString(),
        peakOverBaseline: m.peakOverBaseline,
        after,
        afterMinusBefore: after - before,
        usedMemoryPerFinishedRow: round(usedPerRow, 1),
        keysLeft: left.keys,
        ledgerBytes,
        ledgerPerFinishedRow: round(perRowAfter, 1),
        ledgerByShape: Object.fromEntries(ledgerGroups.map(([k, g]) => [k, { keys: g.keys, bytes: g.bytes, perRow: round(g.bytes / finished, 1) }])),
        queueLeftover: { bytes: queueBytes, byShape: Object.fromEntries(queueGroups) },
        maxWaitingSampled: maxWaiting,
        jobBytesSampled: jobBytes.length,
        meanJobBytes: meanJobBytes === undefined ? undefined : Math.round(meanJobBytes),
        jobBytesOverRowBytes: meanJobBytes === undefined ? undefined : round(meanJobBytes / payloads.meanRowBytes, 2),
        bound: {
          formula: 'high-water mark × payload + ledger (ledger = MEMORY USAGE of the run’s keys after the run)',
          withRowBytes: boundPayload,
          peakOverBoundRowBytes: round(m.peakOverBaseline / boundPayload, 2),
          withJobBytes: boundJob,
          peakOverBoundJobBytes: boundJob === undefined ? undefined : round(m.peakOverBaseline / boundJob, 2),
          slackJobs,
          withJobBytesAndSlack: boundSlack,
          peakOverBoundWithSlack: boundSlack === undefined ? undefined : round(m.peakOverBaseline / boundSlack, 2),
        },
        samplingMs: m.intervalMs,
        series: m.series.map(([t, b]) => [t - startedAt, b]),
        note: 'INFO used_memory of the whole server: on a shared Redis, other clients move it too',
      },
      roundTrips: measured,
      projection: project({ perRowAfter, usedPerRow, hwm, meanJobBytes: meanJobBytes ?? payloads.meanRowBytes, rowsPerSecond, reportMsPerRow: reportMs / finished }),
    });
    log(
      `e2e: ${rows} rows in ${duration(wallMs)} (${result.rowsPerSecond} rows/s); ingester VmHWM ${mibText(ingestP.hwm)}, workers ${workerP.map((p) => mibText(p.hwm)).join(' / ')}; ` +
        `Redis peak +${mibText(m.peakOverBaseline)} (bound ${mibText(boundPayload)}), after ${round(perRowAfter, 1)} B/row; report ${duration(reportMs)}`,
    );
  } finally {
    await rm(file, { force: true });
    await rm(reportDir, { recursive: true, force: true });
    await sandbox.stop();
  }
  return result;
}

/** Redis and time for 10 M and 50 M rows, from this run's per-row figures. */
export function project({ perRowAfter, usedPerRow, hwm, meanJobBytes, rowsPerSecond, reportMsPerRow }) {
  return PROJECT_ROWS.map((n) => ({
    rows: n,
    redisAfterBytes: Math.round(perRowAfter * n),
    redisAfterBytesByUsedMemory: Math.round(usedPerRow * n),
    /** the ledger of n rows plus a full queue at the high-water mark */
    redisPeakBytes: Math.round(perRowAfter * n + hwm * meanJobBytes),
    timeMsAt: Object.fromEntries(PROJECT_RATES.map((r) => [r, Math.round((n / r) * 1000)])),
    timeMsAtThisRunsPace: Math.round((n / rowsPerSecond) * 1000),
    thisRunsPace: round(rowsPerSecond, 0),
    reportMs: Math.round(reportMsPerRow * n),
  }));
}

/** The ingester's rows per addBulk (config ingestChunkSize), as the build under test defaults it. */
function chunkSize(ctx) {
  try {
    return ctx.lib.loadConfig({ env: {} }).ingestChunkSize ?? 1000;
  } catch {
    return 1000;
  }
}

const mibText = (b) => (b === undefined ? 'n/a' : `${(b / 2 ** 20).toFixed(0)} MiB`);

async function dirSizes(dir) {
  const out = {};
  try {
    for (const name of await readdir(dir)) out[name] = (await stat(join(dir, name))).size;
  } catch {
    // no report directory: reported as empty
  }
  return out;
}
