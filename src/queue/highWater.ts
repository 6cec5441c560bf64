// Backpressure from the queue to the ingester: Redis holds at most `highWaterMark` waiting rows, so a
// 50-million-row file costs no more Redis memory than a 100-row one. Reading resumes below the mark.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';

export async function queuedRows(queue: Queue): Promise<number> {
  const counts = await queue.getJobCounts('wait', 'prioritized', 'delayed');
  return (counts.wait ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0);
}

export interface HighWaterOptions {
  highWaterMark: number;
  /** once full, resume when the queue is back under this share of the mark, so the ingester does not flap */
  resumeAt?: number;
  pollMs?: number;
  signal?: AbortSignal;
  onPause?: (waiting: number) => void;
  /**
   * Jobs the mark leaves out: rows waiting for rows of their lookup group not read yet (ledger/lookupGroups.ts).
   * Counted, they could hold the reading back for good; they are few unless a user's rows are far apart.
   */
  exclude?: () => Promise<number>;
}

/**
 * How many of `wanted` rows may be queued now without the queue passing the mark (the mark holds exactly, not
 * give or take a chunk): the caller admits and queues that many, then asks again for the rest. With too little
 * room it waits, paused, until the queue is under `resumeAt` of the mark (or the rows fit): a queue just under the
 * mark would otherwise take a few rows per round trip. Without a mark (0), or once the signal aborts, every row
 * may go (an interrupted ingest queues what it has read).
 */
export async function roomBelowHighWater(queue: Queue, wanted: number, opts: HighWaterOptions): Promise<number> {
  const mark = opts.highWaterMark;
  if (mark <= 0 || wanted <= 0) return wanted;
  const resume = Math.min(Math.floor(mark * (opts.resumeAt ?? 0.8)), mark - 1);
  // Enough room to go on: all the rows wanted, or at least what a drain to `resume` would free.
  const enough = Math.min(wanted, Math.max(1, mark - resume));
  const count = async (): Promise<number> => Math.max(0, (await queuedRows(queue)) - ((await opts.exclude?.()) ?? 0));
  let waiting = await count();
  if (mark - waiting >= enough) return Math.min(wanted, mark - waiting);
  opts.onPause?.(waiting);
  while (waiting > resume && mark - waiting < wanted) {
    if (opts.signal?.aborted) return wanted;
    await sleep(opts.pollMs ?? 200, undefined, { signal: opts.signal }).catch(() => undefined);
    waiting = await count();
  }
  return opts.signal?.aborted ? wanted : Math.min(wanted, mark - waiting);
}
