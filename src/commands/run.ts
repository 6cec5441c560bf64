// `run`: ingest, work and report in one process, until every row has an outcome, the API says the
// configuration is wrong, or the user interrupts. Running the same command again continues the same run.
import { checkRunId, newRunId, requireApiKey, type Config } from '../config.js';
import type { ColumnOptions } from '../ingest/columns.js';
import { ingest, type IngestResult } from '../ingest/ingester.js';
import { checkSources } from '../ingest/sources.js';
import type { Logger } from '../logger.js';
import { workAndReport, type SessionResult } from './session.js';
import type { PipelineMetrics } from '../metrics/metrics.js';
import type { RunState } from '../types.js';

export { exitCodeOf } from './exitCode.js';

export interface RunOptions {
  config: Config;
  logger: Logger;
  sources: string[];
  runId?: string;
  /** report directory; default <reportDir>/<runId> */
  outDir?: string;
  columns?: ColumnOptions;
  /** send rows again even when an earlier run migrated them */
  force?: boolean;
  /** aborting it stops the run cleanly: in-flight requests finish, the report is written, exit code 4 */
  signal?: AbortSignal;
  /** how often to look at the run's counters (ms) */
  pollMs?: number;
  /** how often to log a progress line (ms); 0 turns it off */
  progressEveryMs?: number;
  /** called about once a second with the run's counters (for a progress bar) */
  onState?: (state: RunState) => void;
  metrics?: PipelineMetrics;
}

export interface RunResult extends SessionResult {
  runId: string;
  ingest?: IngestResult;
}

export async function runMigration(opts: RunOptions): Promise<RunResult> {
  const { config } = opts;
  requireApiKey(config);
  const runId = checkRunId(opts.runId ?? newRunId());
  await checkSources(opts.sources);
  let ingestResult: IngestResult | undefined;
  const result = await workAndReport({ ...opts, runId }, async (ctx, ledger, signal, log) => {
    log.info({ sources: opts.sources }, 'run started');
    ingestResult = await ingest(
      { queue: ctx.queue, ledger, logger: log, ...(opts.metrics ? { metrics: opts.metrics } : {}) },
      {
        runId,
        sources: opts.sources,
        columns: opts.columns ?? {},
        force: opts.force ?? false,
        chunkSize: config.ingestChunkSize,
        maxAttempts: config.maxAttempts,
        highWaterMark: config.highWaterMark,
        signal,
      },
    );
  });
  return { runId, ...result, ...(ingestResult ? { ingest: ingestResult } : {}) };
}
