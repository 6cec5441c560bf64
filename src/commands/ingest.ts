// `ingest`: only reads sources and queues rows, for setups where workers run elsewhere (`rc-migrate work`).
import { checkRunId, type Config } from '../config.js';
import { EXIT, type ExitCode } from '../exitCodes.js';
import type { ColumnOptions } from '../ingest/columns.js';
import { ingest, type IngestProgress, type IngestResult } from '../ingest/ingester.js';
import { checkSources } from '../ingest/sources.js';
import type { Logger } from '../logger.js';
import { openContext } from './context.js';

export interface IngestCommandOptions {
  config: Config;
  logger: Logger;
  sources: string[];
  runId: string;
  columns?: ColumnOptions;
  /** send rows again even when an earlier run migrated them */
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: IngestProgress) => void;
}

export async function ingestSources(opts: IngestCommandOptions): Promise<{ result: IngestResult; exitCode: ExitCode }> {
  const runId = checkRunId(opts.runId);
  await checkSources(opts.sources);
  const ctx = await openContext(opts.config);
  try {
    const result = await ingest(
      { queue: ctx.queue, ledger: ctx.ledger(runId), logger: opts.logger.child({ run: runId }) },
      {
        runId,
        sources: opts.sources,
        columns: opts.columns ?? {},
          force: opts.force ?? false,
        chunkSize: opts.config.ingestChunkSize,
        maxAttempts: opts.config.maxAttempts,
        highWaterMark: opts.config.highWaterMark,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      },
    );
    const exitCode = result.aborted ? EXIT.INCOMPLETE : result.rejected > 0 ? EXIT.ROWS_FAILED : EXIT.OK;
    return { result, exitCode };
  } finally {
    await ctx.close();
  }
}
