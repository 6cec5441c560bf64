// `status`: where a run stands, from any machine: counts so far, the rate it is going at, an ETA, and its
// most recent errors.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config.js';
import { exitCodeFor, type ExitCode } from '../exitCodes.js';
import type { RecentError } from '../ledger/runLedger.js';
import { checkOptions, runRefRule } from '../options.js';
import { queuedRows } from '../queue/highWater.js';
import { APPLE_RATE_SCOPE, RedisKeys } from '../redis/keys.js';
import { withContext } from '../session/context.js';
import type { RunState } from '../types.js';
import { readRateState, type RateView } from '../workers/rate/sharedRate.js';

export interface RunStatus {
  state: RunState;
  status: 'complete' | 'in_progress' | 'stopped';
  /** rows finished per second over the sampling window */
  rowsPerSecond: number;
  /** the request rate every worker shares (the learned limit, requests/s) and how it was learned, when workers have set one */
  sharedRate?: RateView;
  /** the App Store Server API lookups' rate (scope 'apple', workers/appleLookup.ts), when the run's rows were looked up and workers have set one */
  appleRate?: RateView;
  /** rows of every run waiting in the queue */
  queueWaiting: number;
  /** seconds until every queued row of this run has an outcome, at the measured pace; null when unknown */
  etaSeconds: number | null;
  recentErrors: RecentError[];
  fatal?: string;
}

export async function runStatus(opts: { config: Config; runId: string; sampleMs?: number }): Promise<RunStatus> {
  checkOptions(runRefRule, opts, 'runStatus');
  return withContext(opts.config, async (ctx) => {
    const ledger = await ctx.existingLedger(opts.runId);
    const before = await ledger.state();
    const sampleMs = opts.sampleMs ?? 2000;
    if (!before.complete && sampleMs > 0) await sleep(sampleMs);
    const state = await ledger.state();
    const finished = (s: RunState): number => s.rows_succeeded + s.rows_failed;
    const rowsPerSecond = before.complete || sampleMs <= 0 ? 0 : ((finished(state) - finished(before)) * 1000) / sampleMs;
    const fatal = await ctx.fatal.haltedBy(opts.runId, state.rows_pending);
    const shared = await readRateState(ctx.redis, new RedisKeys(opts.config.prefix));
    // The lookups' scope is the prefix's, not the run's: shown only for a run that looked rows up.
    const apple = (await ledger.hadLookups()) ? await readRateState(ctx.redis, new RedisKeys(opts.config.prefix), APPLE_RATE_SCOPE) : undefined;
    return {
      state,
      status: state.complete ? 'complete' : fatal ? 'stopped' : 'in_progress',
      rowsPerSecond,
      ...(shared ? { sharedRate: shared } : {}),
      ...(apple ? { appleRate: apple } : {}),
      queueWaiting: await queuedRows(ctx.queue),
      etaSeconds: state.complete ? 0 : rowsPerSecond > 0 ? Math.ceil(state.rows_pending / rowsPerSecond) : null,
      recentErrors: await ledger.recentErrors(),
      ...(fatal ? { fatal: fatal.message } : {}),
    };
  });
}

/** `status`'s exit code: 0 complete, 3 stopped by a fatal answer, 4 still in progress. */
export function statusExitCode(status: RunStatus): ExitCode {
  return exitCodeFor({ stopped: status.status === 'stopped', incomplete: status.status !== 'complete' });
}
