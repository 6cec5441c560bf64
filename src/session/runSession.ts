// One run session, for `run`, `retry` and scheduled firings alike:
//   start (check the sources, connect, serve metrics) → the caller's work (ingest, or re-queue failed rows)
//   with workers sending alongside → watch for a fatal stop → wait until every queued row has an outcome →
//   finish (requests in flight end, workers close) → report → exit code.
// It tells subscribers what happens through typed events (started, ingest, progress, fatal, metrics, finished)
// and releases what it opened through one list, in reverse order, however it ends.
import type { Config } from '../config.js';
import type { ExitCode } from '../exitCodes.js';
import type { IngestProgress, IngestResult } from '../ingest/ingester.js';
import type { SourceDeps } from '../ingest/sources.js';
import type { RunLedger } from '../ledger/runLedger.js';
import { SourceCatalog } from '../ledger/sourceCatalog.js';
import type { Logger } from '../logger.js';
import type { PipelineMetrics } from '../metrics/metrics.js';
import type { FatalReason } from '../queue/fatalStop.js';
import { reconcileRun, type ReconcileResult } from '../queue/reconcile.js';
import { hasAnyKey, keyRingOf } from '../revenuecat/keyRing.js';
import type { Summary } from '../reports/summary.js';
import type { ReportFiles } from '../reports/writeReport.js';
import type { RateView } from '../workers/rate/sharedRate.js';
import { openContext, type Context } from './context.js';
import { TypedEvents, type Listener, type Listeners } from './events.js';
import { watchFatal } from './fatalWatch.js';
import { openSources } from './ingestOptions.js';
import { IngestStep, type IngestStepRequest } from './ingestStep.js';
import { logReconciled, waitForOutcomes } from './outcomeWait.js';
import { PROGRESS_LOG_MS, runProgressLog } from './progressLog.js';
import { lookupRateReader, rateScopesOf, readRates, type RunProgress } from './rateProgress.js';
import { withResources, type Resources } from './resources.js';
import { reportDirOf, writeRunReport } from './runReport.js';
import { startSending } from './sending.js';

export interface SessionEvents {
  /** connected, sources checked; the report will be written to `reportDir` */
  started: { runId: string; reportDir: string };
  /** this process's metrics are served at `url` (with `metricsPort`) */
  metrics: { url: string };
  /** after each chunk the ingest queued */
  ingest: IngestProgress;
  /** the run's counters and the learned rate (per limit scope), about once a second from the start of the work to the end */
  progress: RunProgress;
  /** a fatal API answer paused the queue: the session stops, unsent rows stay queued */
  fatal: FatalReason;
  /** the report is written */
  finished: SessionResult;
}

export type SessionListeners = Listeners<SessionEvents>;

export interface SessionOptions {
  config: Config;
  logger: Logger;
  runId: string;
  /** report directory; default <reportDir>/<runId> */
  outDir?: string;
  /** sources the work will ingest: checked (and S3 reached) before anything starts */
  sources?: string[];
  /** aborting it stops the run cleanly: in-flight requests finish, the report is written, exit code 4 */
  signal?: AbortSignal;
  /** how often to look whether every row has an outcome (ms) */
  pollMs?: number;
  /** how often to log a progress line (ms); 0 turns it off (a progress bar takes its place) */
  progressEveryMs?: number;
  /** counts what this process does */
  metrics?: PipelineMetrics;
  /** serve this process's metrics at /metrics on this port (0 picks a free one) while the session lasts */
  metricsPort?: number;
  /** false: do not start workers here, the process's own already send (scheduled firings inside `work`) */
  send?: boolean;
  /** connections to borrow instead of opening (and closing) its own */
  context?: Context;
  /** subscribers, one per event */
  on?: SessionListeners;
}

/** What `run` and `retry` pass through to their session (config, logger, signal, metrics, subscribers, …). */
export type SessionCallerOptions = Omit<SessionOptions, 'runId' | 'sources' | 'send' | 'context'>;

export interface SessionResult {
  runId: string;
  summary: Summary;
  files: ReportFiles;
  exitCode: ExitCode;
  fatal?: FatalReason;
}

/** What the caller's work gets: the connections, the run's ledger, the stop signal, and an ingest step. */
export interface SessionStep {
  ctx: Context;
  ledger: RunLedger;
  /** aborted on a fatal answer or the caller's stop */
  signal: AbortSignal;
  log: Logger;
  /**
   * Ingests the session's sources into the run, with the options the configuration gives. With `limit`, a canary
   * (session/canary.ts): that many rows are queued, spread over the platforms, and the rest is left for the next
   * ingest of the run (`partial` in the result); the session then ends once those rows have their outcome.
   */
  ingest(req?: IngestStepRequest): Promise<IngestResult>;
  /**
   * The reconcile pass (queue/reconcile.ts): queues again every row of the run the ledger holds as queued without
   * an outcome and without a job, read again from its source as the run's source catalog says it was read. The
   * session runs it itself when the queue drains with rows pending; `run` also on a resume.
   */
  reconcile(): Promise<ReconcileResult>;
}

export type { IngestStepRequest };

export type SessionWork = (step: SessionStep) => Promise<void>;

export class RunSession {
  private readonly events: TypedEvents<SessionEvents>;

  constructor(private readonly opts: SessionOptions) {
    this.events = new TypedEvents<SessionEvents>(opts.logger).subscribe(opts.on);
  }

  on<K extends keyof SessionEvents>(event: K, listener: Listener<SessionEvents[K]>): this {
    this.events.on(event, listener);
    return this;
  }

  /** Runs the work and writes the report, whether or not every row got an outcome (a stopped run's too). */
  async run(work: SessionWork): Promise<SessionResult> {
    return (await this.execute(work, true)) as SessionResult;
  }

  /**
   * Runs the work; writes the report only when every row has an outcome. Undefined when stopped first (another
   * process continues the run): a scheduled firing interrupted by a worker's shutdown leaves no partial report.
   */
  runToCompletion(work: SessionWork): Promise<SessionResult | undefined> {
    return this.execute(work, false);
  }

  private async execute(work: SessionWork, reportIncomplete: boolean): Promise<SessionResult | undefined> {
    const log = this.opts.logger.child({ run: this.opts.runId });
    // The error that ended the session is the one the caller reports, whatever releasing after it met.
    return withResources((resources) => this.session(work, reportIncomplete, resources, log), log);
  }

  private async session(work: SessionWork, reportIncomplete: boolean, resources: Resources, log: Logger): Promise<SessionResult | undefined> {
    const { config, runId } = this.opts;
    // Start: everything that can be wrong with the command is found before anything is sent.
    const keys = this.opts.send === false ? undefined : keyRingOf(config);
    const sources: SourceDeps = this.opts.sources ? await openSources(config, this.opts.sources, resources) : {};
    const ctx = this.opts.context ?? (await openContext(config, resources));
    const metrics = await this.serveMetrics(resources);
    const ledger = ctx.ledger(runId);
    const reportDir = reportDirOf(config, runId, this.opts.outDir);
    this.events.emit('started', { runId, reportDir });

    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    this.opts.signal?.addEventListener('abort', onAbort, { once: true });
    resources.defer('stop signal', () => this.opts.signal?.removeEventListener('abort', onAbort));

    // Everything from here to the report is released before the report is written.
    const running = resources.mark();
    // The worker logs with each row's own run id: it serves every run on the queue, not only this one.
    if (keys !== undefined) await startSending(ctx, resources, { config, keys, logger: this.opts.logger, ...(metrics ? { metrics } : {}) });
    let fatal: FatalReason | undefined;
    watchFatal(ctx.fatal, resources, (reason) => {
      fatal = reason;
      this.events.emit('fatal', reason);
      stop.abort();
    });
    // The learned rate of the scopes this run's keys send in (a firing inside `work` reads the worker's keys).
    const scopes = rateScopesOf(config, keys ?? (hasAnyKey(config) ? keyRingOf(config) : undefined));
    this.watchProgress(
      ledger,
      resources,
      log,
      () => readRates(ctx.redis, config.prefix, scopes),
      lookupRateReader(ctx.redis, config.prefix, () => ledger.hadLookups()),
    );

    const ingestStep = await IngestStep.open(ledger, {
      config,
      runId,
      sources: this.opts.sources ?? [],
      deps: { queue: ctx.queue, ledger, logger: log, sources, catalog: new SourceCatalog(ctx.redis, config.prefix, runId), ...(metrics ? { metrics } : {}) },
      log,
      signal: stop.signal,
      onProgress: (p) => this.events.emit('ingest', p),
    });

    const reconcile = async (): Promise<ReconcileResult> => {
      const result = await reconcileRun({ ledger, queue: ctx.queue, redis: ctx.redis, rowsAt: ingestStep.rowsAt(), maxAttempts: config.maxAttempts });
      logReconciled(log, result);
      return result;
    };
    await work({ ctx, ledger, signal: stop.signal, log, ingest: (req) => ingestStep.run(req), reconcile });
    await waitForOutcomes({
      ledger,
      queue: ctx.queue,
      fatal: ctx.fatal,
      signal: stop.signal,
      log,
      pollMs: this.opts.pollMs ?? 200,
      // A canary's ingest is over though the run's is not: its rows are what the session waits for.
      leftForLater: () => ingestStep.leftForLater,
      ingestEnded: () => ingestStep.ended,
      reconcile: () => reconcileRun({ ledger, queue: ctx.queue, redis: ctx.redis, rowsAt: ingestStep.rowsAt(), maxAttempts: config.maxAttempts }),
    });
    // Finish: requests in flight end (up to shutdownTimeoutMs) and their outcomes are recorded.
    await resources.releaseTo(running);

    const state = await ledger.state();
    fatal ??= await ctx.fatal.haltedBy(runId, state.rows_pending);
    if (state.complete) await ledger.markFinished();
    else if (!reportIncomplete) return undefined;
    const { summary, files, exitCode } = await writeRunReport(ctx, ledger, { dir: reportDir, fatal: fatal ?? null, log });
    log.info({ status: summary.status, succeeded: summary.rows_succeeded, failed: summary.rows_failed, rejected: summary.rows_rejected, report: files.dir, exitCode }, 'run ended');
    const result: SessionResult = { runId, summary, files, exitCode, ...(fatal ? { fatal } : {}) };
    this.events.emit('finished', result);
    return result;
  }

  /** The caller's metrics, served on a port when asked; they follow the session's ingest events. */
  private async serveMetrics(resources: Resources): Promise<PipelineMetrics | undefined> {
    let metrics = this.opts.metrics;
    if (this.opts.metricsPort !== undefined) {
      // Loaded only when asked for: express and the dashboard weigh ~25 MB that a run need not carry.
      const { serveProcessMetrics } = await import('../metrics/server.js');
      const served = await serveProcessMetrics({ port: this.opts.metricsPort, ...(metrics ? { metrics } : {}) });
      resources.add('metrics server', served.server, (s) => s.close());
      metrics = served.metrics;
      this.events.emit('metrics', { url: served.server.url });
    }
    if (metrics) {
      const m = metrics;
      this.events.on('ingest', (p) => m.ingestLine.set({ source: p.source }, p.line));
    }
    return metrics;
  }

  /** Every second: the counters to the `progress` subscribers, and a log line every `progressEveryMs`. */
  private watchProgress(ledger: RunLedger, resources: Resources, log: Logger, rates: () => Promise<RateView[]>, lookupRate: () => Promise<RateView | undefined>): void {
    const logLine = runProgressLog(log, this.opts.progressEveryMs ?? PROGRESS_LOG_MS);
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      Promise.all([ledger.state(), rates().catch(() => []), lookupRate().catch(() => undefined)])
        .then(([state, views, lookups]) => {
          const s: RunProgress = { ...state, ...(views.length > 0 ? { rates: views } : {}), ...(lookups ? { lookupRate: lookups } : {}) };
          this.events.emit('progress', s);
          logLine(s);
        })
        .catch(() => undefined)
        .finally(() => {
          busy = false;
        });
    }, 1000);
    resources.defer('progress watch', () => clearInterval(timer));
  }
}
