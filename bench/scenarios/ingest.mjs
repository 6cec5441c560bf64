// Scenario 2, ingest: a 1,000,000-row CSV (a) through `rc-migrate ingest` with no high-water mark and no
// workers, (b) through raw BullMQ Queue.addBulk (bench/lib/raw-addbulk.mjs) for comparison, and (c) through
// `rc-migrate ingest` with a high-water mark, stopped with SIGINT after 15 s.
import { rm } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { alive, spawnCli, spawnNode, stopChild, watchProcess } from '../lib/children.mjs';
import { writeReceiptsCsv } from '../lib/csv.mjs';
import { deletePrefix, usedMemory, watchRedisMemory } from '../lib/redis.mjs';
import { CLI, ROOT, log, round, scaled, sleep } from '../lib/util.mjs';

const HWM_RUN_MS = 15_000;

/** Waits for a child to exit; after `timeoutMs` it is stopped and an error thrown. */
async function exitOf(child, timeoutMs) {
  const result = await Promise.race([child.exited, sleep(timeoutMs).then(() => 'timeout')]);
  if (result === 'timeout') {
    await stopChild(child, { signal: 'SIGTERM', graceMs: 5000 });
    throw new Error(`${child.name} did not finish within ${Math.round(timeoutMs / 1000)} s`);
  }
  if (result.error) throw result.error;
  return result;
}

async function queueCounts(redis, prefix) {
  const base = `${prefix}:receipts`;
  const [wait, prioritized, delayed, active] = await Promise.all([
    redis.llen(`${base}:wait`),
    redis.zcard(`${base}:prioritized`),
    redis.zcard(`${base}:delayed`),
    redis.llen(`${base}:active`),
  ]);
  return { wait, prioritized, delayed, active };
}

export function cliSupportsHighWaterMark() {
  try {
    return execFileSync(process.execPath, [CLI, 'ingest', '--help'], { cwd: ROOT, encoding: 'utf8' }).includes('--high-water-mark');
  } catch {
    return false;
  }
}

export async function ingestScenario(ctx) {
  const rows = scaled(1_000_000, ctx.scale, 1000);
  const hwm = scaled(20_000, ctx.scale, 1000);
  const file = join(ctx.tmp, 'ingest.csv');
  const runId = 'bench-ingest';
  const timeoutMs = Math.max(120_000, rows * 2); // 2 ms a row at worst before giving up
  const hwmFlag = cliSupportsHighWaterMark();
  log(`ingest: writing a ${rows}-row CSV`);
  const genStarted = performance.now();
  const bytes = await writeReceiptsCsv(file, rows, { tag: 'i', rowsPerUser: 4 });
  const result = { rows, csvBytes: bytes, csvWriteMs: Math.round(performance.now() - genStarted), highWaterMarkFlag: hwmFlag };

  try {
    // (a) rc-migrate ingest, high-water mark off, no workers.
    {
      const prefix = ctx.newPrefix('ingest-a');
      const args = ['ingest', file, '--run-id', runId, '--prefix', prefix, '--redis', ctx.redisUrl, '--log-level', 'warn', ...(hwmFlag ? ['--high-water-mark', '0'] : [])];
      log(`ingest (a): rc-migrate ingest of ${rows} rows${hwmFlag ? ' --high-water-mark 0' : ' (this build has no --high-water-mark)'}`);
      const mem = await watchRedisMemory(ctx.redisUrl, 100);
      const child = spawnCli(args, { env: { RC_MIGRATE_HIGH_WATER_MARK: '0' } });
      const proc = watchProcess(child.pid, 100);
      const exit = await exitOf(child, timeoutMs).finally(() => undefined);
      const p = proc.stop();
      const m = await mem.stop();
      const wallMs = child.exitedAt - child.spawnedAt;
      const state = await new ctx.lib.RunLedger(ctx.redis, prefix, runId).state();
      const counts = await queueCounts(ctx.redis, prefix);
      const cleanStarted = performance.now();
      const deleted = await deletePrefix(ctx.redis, prefix);
      result.a = {
        command: `node dist/cli.js ${args.join(' ')}`,
        exit,
        stdout: child.stdoutText().trim(),
        stderrTail: child.stderrLines.slice(-5),
        wallMs,
        rowsPerSecond: round(rows / (wallMs / 1000), 0),
        ledgerQueued: state.rows_queued,
        queue: counts,
        peakRss: p.peakRss,
        vmHwm: p.hwm,
        cpuSeconds: p.cpuSeconds,
        rssSamples: p.samples,
        redis: m,
        keysDeleted: deleted,
        cleanupMs: Math.round(performance.now() - cleanStarted),
      };
      if (exit.code !== 0) throw new Error(`rc-migrate ingest exited with ${exit.code ?? exit.signal}: ${child.stderrLines.slice(-3).join(' | ')}`);
      log(`ingest (a): ${result.a.rowsPerSecond} rows/s, peak RSS ${(p.peakRss / 2 ** 20).toFixed(0)} MiB, Redis +${(m.peakOverBaseline / 2 ** 20).toFixed(0)} MiB`);
    }

    // (b) raw BullMQ addBulk of the same rows (CSV parsed with csv-parse, same job data, options and ids).
    {
      const prefix = ctx.newPrefix('ingest-b');
      log(`ingest (b): raw Queue.addBulk of the same ${rows} rows`);
      const mem = await watchRedisMemory(ctx.redisUrl, 100);
      const child = spawnNode(join(ROOT, 'bench', 'lib', 'raw-addbulk.mjs'), [], {
        name: 'raw addBulk',
        env: { BENCH_FILE: file, BENCH_REDIS_URL: ctx.redisUrl, BENCH_PREFIX: prefix, BENCH_RUN_ID: runId, BENCH_CHUNK: '1000', BENCH_MAX_ATTEMPTS: '6' },
      });
      const proc = watchProcess(child.pid, 100);
      const exit = await exitOf(child, timeoutMs);
      const p = proc.stop();
      const m = await mem.stop();
      const wallMs = child.exitedAt - child.spawnedAt;
      const counts = await queueCounts(ctx.redis, prefix);
      const cleanStarted = performance.now();
      const deleted = await deletePrefix(ctx.redis, prefix);
      if (exit.code !== 0) throw new Error(`raw addBulk exited with ${exit.code ?? exit.signal}: ${child.stderrLines.slice(-3).join(' | ')}`);
      const inner = JSON.parse(child.stdoutText().trim().split('\n').pop());
      result.b = {
        how: 'child process: csv-parse stream → same job data (sha256 fingerprint, body, input) → Queue.addBulk, chunks of 1,000, receiptJobOptions + jobIdOf from dist/',
        wallMs,
        innerMs: Math.round(inner.ms),
        rowsPerSecond: round(rows / (wallMs / 1000), 0),
        queue: counts,
        peakRss: p.peakRss,
        vmHwm: p.hwm,
        cpuSeconds: p.cpuSeconds,
        redis: m,
        keysDeleted: deleted,
        cleanupMs: Math.round(performance.now() - cleanStarted),
      };
      result.ratio = round(result.a.rowsPerSecond / result.b.rowsPerSecond, 3);
      log(`ingest (b): ${result.b.rowsPerSecond} rows/s → ratio ingest/raw ${result.ratio}`);
    }

    // (c) high-water mark on, no workers: the queue must stop growing near the mark.
    if (hwmFlag) {
      const prefix = ctx.newPrefix('ingest-c');
      const args = ['ingest', file, '--run-id', runId, '--prefix', prefix, '--redis', ctx.redisUrl, '--log-level', 'warn', '--high-water-mark', String(hwm)];
      log(`ingest (c): --high-water-mark ${hwm}, no workers, ${HWM_RUN_MS / 1000} s, then SIGINT`);
      const mem = await watchRedisMemory(ctx.redisUrl, 100);
      const baseline = await usedMemory(ctx.redis);
      const child = spawnCli(args);
      const proc = watchProcess(child.pid, 100);
      await Promise.race([sleep(HWM_RUN_MS), child.exited]);
      const exitedEarly = !alive(child);
      const state = await new ctx.lib.RunLedger(ctx.redis, prefix, runId).state();
      const counts = await queueCounts(ctx.redis, prefix);
      const usedAt15s = await usedMemory(ctx.redis);
      const sigintAt = Date.now();
      const exit = exitedEarly ? await child.exited : await stopChild(child, { signal: 'SIGINT', graceMs: 20_000 });
      const p = proc.stop();
      const m = await mem.stop();
      const after = { ledgerQueued: (await new ctx.lib.RunLedger(ctx.redis, prefix, runId).state()).rows_queued, queue: await queueCounts(ctx.redis, prefix) };
      const deleted = await deletePrefix(ctx.redis, prefix);
      result.c = {
        command: `node dist/cli.js ${args.join(' ')}`,
        highWaterMark: hwm,
        runMs: HWM_RUN_MS,
        exitedEarly,
        ledgerQueued: state.rows_queued,
        queued: counts.wait + counts.prioritized + counts.delayed,
        queue: counts,
        redisUsedMemory: usedAt15s,
        redisOverBaseline: usedAt15s - baseline,
        redisPeakOverBaseline: m.peakOverBaseline,
        peakRss: p.peakRss,
        sigint: { exit, exitMs: exitedEarly ? undefined : child.exitedAt - sigintAt, stdout: child.stdoutText().trim() },
        afterExit: after,
        keysDeleted: deleted,
      };
      log(
        `ingest (c): ${result.c.queued} rows waiting after ${HWM_RUN_MS / 1000} s (ledger: ${state.rows_queued} admitted), Redis +${(result.c.redisOverBaseline / 2 ** 20).toFixed(1)} MiB; SIGINT → exit ${exit.code ?? exit.signal} in ${result.c.sigint.exitMs} ms`,
      );
    } else {
      result.c = { skipped: 'this build of rc-migrate has no --high-water-mark flag' };
    }
  } finally {
    await rm(file, { force: true });
  }
  return result;
}
