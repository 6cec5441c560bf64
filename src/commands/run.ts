// `run`: ingest, send and report in one process, until every row has an outcome, the API says the
// configuration is wrong, or the user interrupts. Running the same command again continues the same run.
import { newRunId } from '../config.js';
import type { ColumnOptions } from '../ingest/columns.js';
import type { IngestResult } from '../ingest/ingester.js';
import { checkOptions, runOptionsRule } from '../options.js';
import { requireAppleCredentialsFor } from '../session/applePreflight.js';
import { RunSession, type SessionCallerOptions, type SessionResult } from '../session/runSession.js';

export { exitCodeOf } from '../session/exitCode.js';

export interface RunOptions extends SessionCallerOptions {
  sources: string[];
  /** default: a new id; an existing one continues that run */
  runId?: string;
  columns?: ColumnOptions;
  /** send rows again even when an earlier run migrated them */
  force?: boolean;
  /** a row whose token another user has (in this run or an earlier one): held back (default) or sent anyway */
  onConflict?: 'hold' | 'send';
  /**
   * A canary: send this many rows (spread over the platforms), then stop and report (status `partial`); the same
   * call without `limit` and with the same run id sends the rest (session/canary.ts).
   */
  limit?: number;
}

export interface RunResult extends SessionResult {
  ingest?: IngestResult;
}

export async function runMigration(opts: RunOptions): Promise<RunResult> {
  checkOptions(runOptionsRule, opts, 'runMigration');
  const runId = opts.runId ?? newRunId();
  // Rows given by an Apple transaction id need the App Store Connect API key: refused here, before anything is sent.
  await requireAppleCredentialsFor(opts.config, opts.sources, opts.columns ?? {});
  let ingested: IngestResult | undefined;
  const result = await new RunSession({ ...opts, runId, sources: opts.sources }).run(async (step) => {
    step.log.info({ sources: opts.sources }, 'run started');
    // A resumed run: rows it admitted whose jobs were lost (a Redis failover, a kill between admitting and
    // queueing) are queued again first; the ingest then reads on from where the last one stopped.
    if (opts.runId !== undefined && (await step.ledger.exists())) await step.reconcile();
    ingested = await step.ingest({
      ...(opts.columns ? { columns: opts.columns } : {}),
      force: opts.force ?? false,
      ...(opts.onConflict ? { onConflict: opts.onConflict } : {}),
      ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
    });
  });
  return { ...result, ...(ingested ? { ingest: ingested } : {}) };
}
