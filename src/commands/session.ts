// What `run` and `retry` share: open Redis and the queue, resume a queue stopped by an earlier fatal answer,
// send with in-process workers while the command's own work goes on, stop on a fatal answer or the caller's
// signal, then write the run's report once every request in flight has finished.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { requireApiKey, type Config } from '../config.js';
import type { ExitCode } from '../exitCodes.js';
import type { RunLedger } from '../ledger/runLedger.js';
import type { Logger } from '../logger.js';
import type { FatalReason } from '../queue/fatalStop.js';
import type { Summary } from '../reports/summary.js';
import type { RunState } from '../types.js';
import { writeReport, type ReportFiles } from '../reports/writeReport.js';
import { RevenueCatClient } from '../revenuecat/client.js';
import { startReceiptWorker, type ReceiptWorker } from '../workers/receiptWorker.js';
import type { PipelineMetrics } from '../metrics/metrics.js';
import { openContext, type Context } from './context.js';
import { exitCodeOf } from './exitCode.js';

export interface SessionOptions {
  config: Config;
  logger: Logger;
  runId: string;
  outDir?: string;
  signal?: AbortSignal;
  pollMs?: number;
  /** how often to log a progress line (ms); 0 turns it off (a progress bar takes its place) */
  progressEveryMs?: number;
  /** called about once a second with the run's counters, from the start of ingest to the end */
  onState?: (state: RunState) => void;
  /** counts what this process does (and serves it on a port when the caller starts a monitor server) */
  metrics?: PipelineMetrics;
}

export interface SessionResult {
  summary: Summary;
  files: ReportFiles;
  exitCode: ExitCode;
  fatal?: FatalReason;
}

/**
 * Runs `work` (ingesting, re-queueing) with workers sending alongside, waits until every queued row of the
 * run has an outcome, and writes the report. `work` gets a signal that aborts on a fatal answer or stop.
 */
export async function workAndReport(opts: SessionOptions, work: (ctx: Context, ledger: RunLedger, signal: AbortSignal, log: Logger) => Promise<void>): Promise<SessionResult> {
  const { config, logger, runId } = opts;
  const apiKey = requireApiKey(config);
  const ctx = await openContext(config);
  const log = logger.child({ run: runId });
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
    const ledger = ctx.ledger(runId);
    // The worker logs with each row's own run id: it serves every run on the queue, not only this one.
    const { worker, client } = await startSending(ctx, { config, apiKey, logger, ...(opts.metrics ? { metrics: opts.metrics } : {}) });
    const watcher = watchProgress(ledger, log, opts.progressEveryMs ?? 5000, opts.onState);
    try {
      await work(ctx, ledger, stop.signal, log);
      await waitForOutcomes(ledger, stop.signal, opts.pollMs ?? 200);
    } finally {
      clearInterval(watcher);
      await worker.close();
      await client.close();
    }
    fatal ??= await ctx.fatal.reason();
    if ((await ledger.state()).complete) await ledger.markFinished();
    const { summary, files } = await writeReport(ledger, { dir: opts.outDir ?? join(config.reportDir, runId), ...(fatal ? { fatal } : {}) });
    const exitCode = exitCodeOf(summary);
    log.info({ status: summary.status, succeeded: summary.rows_succeeded, failed: summary.rows_failed, rejected: summary.rows_rejected, exitCode }, 'run ended');
    return { summary, files, exitCode, ...(fatal ? { fatal } : {}) };
  } finally {
    clearInterval(watchFatal);
    opts.signal?.removeEventListener('abort', onAbort);
    await ctx.close();
  }
}

/**
 * What every sending process does first: resume a queue that a fatal answer stopped (the process was started
 * because the cause was fixed), then start a worker with its own keep-alive client.
 */
export async function startSending(
  ctx: Context,
  opts: { config: Config; apiKey: string; logger: Logger; metrics?: PipelineMetrics },
): Promise<{ worker: ReceiptWorker; client: RevenueCatClient }> {
  const { config, logger } = opts;
  const previous = await ctx.fatal.clear();
  if (previous) logger.warn({ previous: previous.message }, 'the queue was stopped by a fatal API answer; resuming it');
  const client = new RevenueCatClient({ baseUrl: config.apiUrl, apiKey: opts.apiKey, timeoutMs: config.requestTimeoutMs, connections: config.connections });
  const worker = await startReceiptWorker({
    config,
    connection: ctx.redis,
    redis: ctx.redis,
    queue: ctx.queue,
    fatal: ctx.fatal,
    client,
    logger,
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
  });
  return { worker, client };
}

/** Polls the run's counters until every queued row has an outcome, or until stopped. */
export async function waitForOutcomes(ledger: RunLedger, signal: AbortSignal, pollMs: number): Promise<void> {
  while (!signal.aborted) {
    if ((await ledger.state()).complete) return;
    await sleep(pollMs, undefined, { signal }).catch(() => undefined);
  }
}

/** Every second: hands the counters to `onState` (a progress bar) and logs a progress line every `everyMs`. */
export function watchProgress(ledger: RunLedger, log: Logger, everyMs: number, onState?: (s: RunState) => void): NodeJS.Timeout {
  let lastLog = Date.now();
  let busy = false;
  return setInterval(() => {
    if (busy) return;
    busy = true;
    ledger
      .state()
      .then((s) => {
        onState?.(s);
        if (everyMs > 0 && Date.now() - lastLog >= everyMs) {
          lastLog = Date.now();
          log.info(
            { read: s.rows_read, queued: s.rows_queued, succeeded: s.rows_succeeded, failed: s.rows_failed, rejected: s.rows_rejected, requests: s.requests_sent },
            'progress',
          );
        }
      })
      .catch(() => undefined)
      .finally(() => {
        busy = false;
      });
  }, 1000);
}
