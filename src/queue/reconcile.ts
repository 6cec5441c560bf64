// The reconcile pass: the ledger, not the queue, says which rows still need sending. A row the ledger admitted
// and holds no outcome for must have a job; when it has none, the pass queues it again under its fixed job id
// (the row's record key within the run: redis/keys.ts jobIdOf).
//
// Why a row can be left without a job: on a Redis Cluster, the queue and the ledger's shards sit on different
// masters, and a master acknowledges a write before its replica has it. A master that dies in that moment takes
// the write with it when its replica is promoted: the jobs just added (the ledger has the rows as queued), or a
// row's answer (its job completed on the queue's master, but the ledger lost the answer). A process killed
// between admitting a chunk and queueing it leaves the same trace. Instead of making each such write wait for a
// replica (the WAIT barrier this replaces), the pass mends what was lost when it matters: at the end of a run
// (the queue is drained but the ledger shows pending rows) and when a run is resumed. A row whose answer was lost
// is then sent a second time: the same bound a `kill -9` of a worker already has.
//
// The ledger keeps no row bodies, so the rows to queue again are read again from their sources (`rowsAt`).
import type { RowState } from '../ledger/runLedger.js';
import type { RedisClient } from '../redis/connection.js';
import { jobIdOf } from '../redis/keys.js';
import type { ReceiptJobData } from '../types.js';
import { enqueueRows, type ReceiptsQueue } from './receiptsQueue.js';

/** Where a row of the run is: its record key (its job id within the run) and its place in its source. */
export interface RowPlace {
  fp: string;
  src: string;
  line: number;
}

/** A row read again: its job's data (fp set to the place's), or why it could not be read as it was. */
export type RowRead = { ok: true; row: ReceiptJobData } | { ok: false; reason: string };

/** Reads rows again from their sources; one answer per place, in the order given. */
export type RowsAt = (places: readonly RowPlace[]) => Promise<RowRead[]>;

/** What the pass needs of the run's ledger. */
export interface ReconcileLedger {
  readonly runId: string;
  /** every row admitted into the run, with where it stands */
  rows(): AsyncIterable<RowState>;
  /** whether each of these rows (record keys) has a final answer */
  finished(fps: string[]): Promise<boolean[]>;
}

export interface ReconcileDeps {
  ledger: ReconcileLedger;
  queue: ReceiptsQueue;
  /** the connection the queue's keys are reached with */
  redis: RedisClient;
  rowsAt: RowsAt;
  maxAttempts: number;
  /** rows looked up per round trip (default 500) */
  batch?: number;
}

export interface ReconcileResult {
  /** rows the ledger shows queued without an outcome */
  pending: number;
  /** of those, rows that had no job and were queued again */
  requeued: number;
  /** rows without a job that could not be read again from their source (they stay pending) */
  unreadable: (RowPlace & { reason: string })[];
}

const BATCH = 500;

/**
 * Queues again every row the ledger holds as queued, without an outcome and without a job. Safe to run at any
 * time and more than once: a row with a job is left alone, a row answered meanwhile is seen answered (its answer
 * is written before its job goes), and adding a job id that is waiting is a no-op.
 */
export async function reconcileRun(deps: ReconcileDeps): Promise<ReconcileResult> {
  const result: ReconcileResult = { pending: 0, requeued: 0, unreadable: [] };
  const size = deps.batch ?? BATCH;
  let places: RowPlace[] = [];
  for await (const row of deps.ledger.rows()) {
    if (row.status !== 'queued') continue;
    result.pending++;
    places.push({ fp: row.fp, src: row.src, line: row.line });
    if (places.length >= size) {
      await requeueLost(deps, places, result);
      places = [];
    }
  }
  await requeueLost(deps, places, result);
  return result;
}

async function requeueLost(deps: ReconcileDeps, places: RowPlace[], result: ReconcileResult): Promise<void> {
  if (places.length === 0) return;
  const { queue, ledger } = deps;
  // A job's hash lives from its add to its removal, whatever list it is in (waiting, delayed, parked, active).
  // One round trip: on a Redis Cluster a queue's keys share one hash tag (redis/keys.ts bullmqPrefix).
  const pipeline = deps.redis.pipeline();
  for (const p of places) pipeline.exists(queue.toKey(jobIdOf(ledger.runId, p.fp)));
  const replies = (await pipeline.exec()) ?? [];
  const failed = replies.find(([err]) => err)?.[0];
  if (failed) throw failed;
  const jobless = places.filter((_, i) => replies[i]?.[1] === 0);
  if (jobless.length === 0) return;
  // Answered since the scan read it (the answer is written, then the job removed): not lost.
  const done = await ledger.finished(jobless.map((p) => p.fp));
  const lost = jobless.filter((_, i) => done[i] !== true);
  if (lost.length === 0) return;
  const reads = await deps.rowsAt(lost);
  const rows: ReceiptJobData[] = [];
  for (const [i, read] of reads.entries()) {
    const place = lost[i] as RowPlace;
    if (read.ok) rows.push({ ...read.row, run: ledger.runId, fp: place.fp });
    else result.unreadable.push({ ...place, reason: read.reason });
  }
  await enqueueRows(queue, rows, deps.maxAttempts);
  result.requeued += rows.length;
}
