// `run`: ingest, work and report in one process, until every row has an outcome, the API says the
// configuration is wrong, or the user interrupts. Running the same command again continues the same run.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkRunId, newRunId, requireApiKey, type Config } from '../config.js';
import { EXIT, type ExitCode } from '../exitCodes.js';
import type { ColumnOptions } from '../ingest/columns.js';
import { ingest, type IngestResult } from '../ingest/ingester.js';
import { checkSources } from '../ingest/sources.js';
import type { Logger } from '../logger.js';
import type { FatalReason } from '../queue/fatalStop.js';
import type { Summary } from '../reports/summary.js';
import { writeReport, type ReportFiles } from '../reports/writeReport.js';
import { RevenueCatClient } from '../revenuecat/client.js';
import type { RunState } from '../types.js';
import { startReceiptWorker } from '../workers/receiptWorker.js';
import { openContext } from './context.js';

export interface RunOptions {
  config: Config;
  logger: Logger;
  sources: string[];
  runId?: string;
  /** report directory; default <reportDir>/<runId> */
  outDir?: string;
  columns?: ColumnOptions;
  /** aborting it stops the run cleanly: in-flight requests finish, the report is written, exit code 4 */
  signal?: AbortSignal;
  /** how often to look at the run's counters (ms) */
  pollMs?: number;
  /** how often to log a progress line (ms); 0 turns it off */
  progressEveryMs?: number;
}

export interface RunResult {
  runId: string;
  summary: Summary;
  files: ReportFiles;
  exitCode: ExitCode;
  ingest?: IngestResult;
  fatal?: FatalReason;
}

export function exitCodeOf(summary: Summary): ExitCode {
  if (summary.status === 'stopped') return EXIT.FATAL;
  if (summary.status !== 'complete') return EXIT.INCOMPLETE;
  return summary.rows_failed + summary.rows_rejected === 0 ? EXIT.OK : EXIT.ROWS_FAILED;
}

export async function runMigration(opts: RunOptions): Promise<RunResult> {
  const { config, logger } = opts;
  const apiKey = requireApiKey(config);
  const runId = checkRunId(opts.runId ?? newRunId());
  await checkSources(opts.sources);
  const ctx = await openContext(config);
  const log = logger.child({ run: runId });
  const client = new RevenueCatClient({ baseUrl: config.apiUrl, apiKey, timeoutMs: config.requestTimeoutMs, connections: config.connections });
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let fatal: FatalReason | undefined;
  const watchFatal = setInterval(() => {
    void ctx.fatal.reason().then((reason) => {
      if (reason && !fatal) {
        fatal = reason;
        stop.abort();
      }
    });
  }, 250);

  try {
    const previous = await ctx.fatal.clear();
    if (previous) log.warn({ previous: previous.message }, 'a previous run was stopped by a fatal API answer; resuming the queue');
    const ledger = ctx.ledger(runId);
    // The worker logs with each row's own run id: it serves every run on the queue, not only this one.
    const worker = await startReceiptWorker({ config, connection: ctx.redis, redis: ctx.redis, queue: ctx.queue, fatal: ctx.fatal, client, logger });
    let ingestResult: IngestResult | undefined;
    try {
      log.info({ sources: opts.sources }, 'run started');
      ingestResult = await ingest(
        { queue: ctx.queue, ledger, logger: log },
        {
          runId,
          sources: opts.sources,
          columns: opts.columns ?? {},
          chunkSize: config.ingestChunkSize,
          maxAttempts: config.maxAttempts,
          highWaterMark: config.highWaterMark,
          signal: stop.signal,
        },
      );
      await waitForOutcomes(() => ledger.state(), stop.signal, opts.pollMs ?? 200, opts.progressEveryMs ?? 5000, log);
    } finally {
      await worker.close();
      await client.close();
    }
    fatal ??= await ctx.fatal.reason();
    const state = await ledger.state();
    if (state.complete) await ledger.markFinished();
    const { summary, files } = await writeReport(ledger, { dir: opts.outDir ?? join(config.reportDir, runId), fatal });
    const exitCode = exitCodeOf(summary);
    log.info({ status: summary.status, succeeded: summary.rows_succeeded, failed: summary.rows_failed, rejected: summary.rows_rejected, exitCode }, 'run ended');
    return { runId, summary, files, exitCode, ...(ingestResult ? { ingest: ingestResult } : {}), ...(fatal ? { fatal } : {}) };
  } finally {
    clearInterval(watchFatal);
    opts.signal?.removeEventListener('abort', onAbort);
    await ctx.close();
  }
}

/** Polls the run's counters until every queued row has an outcome, or until stopped. */
async function waitForOutcomes(
  state: () => Promise<RunState>,
  signal: AbortSignal,
  pollMs: number,
  progressEveryMs: number,
  log: Logger,
): Promise<void> {
  let lastProgress = Date.now();
  while (!signal.aborted) {
    const s = await state();
    if (s.complete) return;
    if (progressEveryMs > 0 && Date.now() - lastProgress >= progressEveryMs) {
      lastProgress = Date.now();
      log.info(
        { read: s.rows_read, queued: s.rows_queued, succeeded: s.rows_succeeded, failed: s.rows_failed, rejected: s.rows_rejected, requests: s.requests_sent },
        'progress',
      );
    }
    await sleep(pollMs, undefined, { signal }).catch(() => undefined);
  }
}
