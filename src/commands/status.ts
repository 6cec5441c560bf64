// `status`: where a run stands, from any machine: counts so far, the rate it is going at, an ETA, and its
// most recent errors.
import { setTimeout as sleep } from 'node:timers/promises';
import { checkRunId, type Config } from '../config.js';
import type { RecentError } from '../ledger/runLedger.js';
import { queuedRows } from '../queue/highWater.js';
import { rateKey } from '../workers/rateController.js';
import type { RunState } from '../types.js';
import { openContext } from './context.js';

export interface RunStatus {
  state: RunState;
  status: 'complete' | 'in_progress' | 'stopped';
  /** rows finished per second over the sampling window */
  rowsPerSecond: number;
  /** the queue's shared request rate (requests per second) and its ceiling, when workers have set one */
  sharedRate?: { rate: number; ceiling: number };
  /** rows of every run waiting in the queue */
  queueWaiting: number;
  /** seconds until every queued row of this run has an outcome, at the measured pace; null when unknown */
  etaSeconds: number | null;
  recentErrors: RecentError[];
  fatal?: string;
}

export async function runStatus(opts: { config: Config; runId: string; sampleMs?: number }): Promise<RunStatus> {
  const runId = checkRunId(opts.runId);
  const ctx = await openContext(opts.config);
  try {
    const ledger = await ctx.existingLedger(runId);
    const before = await ledger.state();
    const sampleMs = opts.sampleMs ?? 2000;
    if (!before.complete && sampleMs > 0) await sleep(sampleMs);
    const state = await ledger.state();
    const finished = (s: RunState): number => s.rows_succeeded + s.rows_failed;
    const rowsPerSecond = before.complete || sampleMs <= 0 ? 0 : ((finished(state) - finished(before)) * 1000) / sampleMs;
    const pending = Math.max(0, state.rows_queued - finished(state));
    const fatal = await ctx.fatal.reason();
    const shared = await ctx.redis.hmget(rateKey(opts.config.prefix), 'rate', 'ceiling');
    return {
      state,
      status: state.complete ? 'complete' : fatal ? 'stopped' : 'in_progress',
      rowsPerSecond,
      ...(shared[0] ? { sharedRate: { rate: Number(shared[0]), ceiling: Number(shared[1]) } } : {}),
      queueWaiting: await queuedRows(ctx.queue),
      etaSeconds: state.complete ? 0 : rowsPerSecond > 0 ? Math.ceil(pending / rowsPerSecond) : null,
      recentErrors: await ledger.recentErrors(),
      ...(fatal ? { fatal: fatal.message } : {}),
    };
  } finally {
    await ctx.close();
  }
}
