// `ingest`: only reads sources and queues rows, for setups where workers run elsewhere (`rc-migrate work`).
import type { Config } from '../config.js';
import { exitCodeFor, type ExitCode } from '../exitCodes.js';
import type { ColumnOptions } from '../ingest/columns.js';
import { ingest, type IngestProgress, type IngestResult } from '../ingest/ingester.js';
import type { Logger } from '../logger.js';
import { checkOptions, ingestOptionsRule } from '../options.js';
import { saveCanary } from '../session/canary.js';
import { ConflictTokens } from '../session/conflictTokens.js';
import { openContext } from '../session/context.js';
import { ingestOptionsFrom, openSources } from '../session/ingestOptions.js';
import { ingestProgressLog, PROGRESS_LOG_MS } from '../session/progressLog.js';
import { withResources } from '../session/resources.js';

export interface IngestCommandOptions {
  config: Config;
  logger: Logger;
  sources: string[];
  runId: string;
  columns?: ColumnOptions;
  /** send rows again even when an earlier run migrated them */
  force?: boolean;
  /** a row whose token another user has (in this run or an earlier one): held back (default) or sent anyway */
  onConflict?: 'hold' | 'send';
  signal?: AbortSignal;
  /** after each chunk (a progress line at a terminal) */
  onProgress?: (p: IngestProgress) => void;
  /** how often to log a progress line (ms); 0 turns it off (a progress line at a terminal takes its place) */
  progressEveryMs?: number;
}

export async function ingestSources(opts: IngestCommandOptions): Promise<{ result: IngestResult; exitCode: ExitCode }> {
  checkOptions(ingestOptionsRule, opts, 'ingestSources');
  const { config, runId } = opts;
  return withResources(async (resources) => {
    const sources = await openSources(config, opts.sources, resources);
    const ctx = await openContext(config, resources);
    const log = opts.logger.child({ run: runId });
    const logLine = ingestProgressLog(log, opts.progressEveryMs ?? PROGRESS_LOG_MS);
    const ledger = ctx.ledger(runId);
    const tokens = new ConflictTokens(ledger);
    const result = await ingest(
      { queue: ctx.queue, ledger, logger: log, sources },
      {
        ...ingestOptionsFrom(config, {
          ...opts,
          onProgress: (p) => {
            opts.onProgress?.(p);
            logLine(p);
          },
        }),
        select: tokens,
      },
    );
    await tokens.flush();
    // Every source read: a canary's rows left for later are now queued too.
    if (!result.aborted && !result.partial) await saveCanary(ledger, undefined);
    // Held conflicts are rows someone must look at before they are sent, like rejected ones.
    return { result, exitCode: exitCodeFor({ incomplete: result.aborted, problems: result.rejected + result.held }) };
  });
}
