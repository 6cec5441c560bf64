// How a session waits for its rows' outcomes, and when it mends a run the queue lost rows of. The ledger is the
// source of truth: while it shows rows pending that nothing will ever answer (their jobs were lost in a Redis
// Cluster failover, or a process died between admitting rows and queueing them), the reconcile pass
// (queue/reconcile.ts) queues them again. It runs when the queue holds nothing but this run's parked rows, and,
// for a queue shared with other runs that never drains, when no row of this run was answered for a while.
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunLedger } from '../ledger/runLedger.js';
import type { Logger } from '../logger.js';
import type { FatalStop } from '../queue/fatalStop.js';
import type { ReconcileResult } from '../queue/reconcile.js';
import type { ReceiptsQueue } from '../queue/receiptsQueue.js';

/** Without an answer for this long (and rows pending), the run is checked for rows without a job. */
export const STALL_MS = 60_000;
/**
 * Passes are this far apart at least; the gap doubles after each pass that queued nothing again (a pass reads
 * every record of the run), up to MAX_PASS_GAP_MS, and is back to this once rows are answered again.
 */
const PASS_GAP_MS = 2_000;
const MAX_PASS_GAP_MS = 15 * 60_000;

export interface OutcomeWait {
  ledger: RunLedger;
  queue: ReceiptsQueue;
  fatal: FatalStop;
  signal: AbortSignal;
  log: Logger;
  pollMs: number;
  /** a canary's ingest is over though the run's is not: its rows are what the session waits for */
  leftForLater: () => boolean;
  /** this session's ingest read the whole of its sources */
  ingestEnded: () => boolean;
  /** the reconcile pass of the run */
  reconcile: () => Promise<ReconcileResult>;
  stallMs?: number;
}

/** Jobs in the queue that a worker will still take (or that wait for their time: backoff, a parked key). */
async function jobsLeft(queue: ReceiptsQueue): Promise<number> {
  const counts = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'waiting-children');
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/**
 * Polls the run's counters until every queued row has an outcome or is parked behind a stopped key (the rows of
 * the other keys went on; queue/keyStops.ts), or until stopped. Rows that have no job and cannot be read again
 * from their source end the wait: the run is left incomplete, with an error naming them and what to do.
 */
export async function waitForOutcomes(w: OutcomeWait): Promise<void> {
  const stallMs = w.stallMs ?? STALL_MS;
  let answered = -1;
  let answeredAt = Date.now();
  let lastPass = 0;
  let gap = PASS_GAP_MS;
  while (!w.signal.aborted) {
    const state = await w.ledger.state();
    if (state.complete) return;
    // The ingest's end, written to the run's meta on one master, is lost if that master dies before its replica
    // has it: the session that read the sources to the end writes it again (the run would wait for ever).
    if (state.ingest !== 'done' && w.ingestEnded()) await w.ledger.endIngest();
    const ingestOver = state.ingest === 'done' || w.ingestEnded() || w.leftForLater();
    if (ingestOver) {
      const parked = await w.fatal.keys.parkedCount(w.ledger.runId);
      if (parked >= state.rows_pending) return;
      const now = Date.now();
      if (state.rows_succeeded + state.rows_failed !== answered) {
        answered = state.rows_succeeded + state.rows_failed;
        answeredAt = now;
        gap = PASS_GAP_MS;
      }
      const drained = now - lastPass >= gap && (await jobsLeft(w.queue)) <= parked;
      const stalled = now - answeredAt >= stallMs && now - lastPass >= Math.max(gap, stallMs);
      if (drained || stalled) {
        lastPass = Date.now();
        const result = await w.reconcile();
        if (result.requeued === 0) gap = Math.min(gap * 2, MAX_PASS_GAP_MS);
        logReconciled(w.log, result);
        // Nothing else will answer them: the run ends incomplete, and `run` again once the sources are back resumes it.
        if (drained && result.requeued === 0 && result.unreadable.length > 0 && result.unreadable.length + parked >= state.rows_pending) return;
      }
    }
    await sleep(w.pollMs, undefined, { signal: w.signal }).catch(() => undefined);
  }
}

/** What a reconcile pass did, when it did anything: a warning for rows queued again, an error per unreadable source. */
export function logReconciled(log: Logger, result: ReconcileResult): void {
  if (result.requeued > 0) {
    log.warn(
      { rows: result.requeued },
      `${result.requeued} pending rows had no job (lost in a Redis failover, or a process stopped between admitting and queueing them): queued again`,
    );
  }
  const bySource = new Map<string, { rows: number; reason: string }>();
  for (const u of result.unreadable) {
    const seen = bySource.get(u.src);
    bySource.set(u.src, { rows: (seen?.rows ?? 0) + 1, reason: seen?.reason ?? u.reason });
  }
  for (const [source, { rows, reason }] of bySource) {
    log.error(
      { source, rows, reason },
      `${rows} pending rows of ${source} have no job and cannot be read again (${reason}); put the source back as it was ingested and run the same command again`,
    );
  }
}
