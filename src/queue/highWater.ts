// Backpressure from the queue to the ingester: Redis holds at most about `highWaterMark` waiting rows, so a
// 50-million-row file costs no more Redis memory than a 100-row one. Reading resumes below the mark.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';

export async function queuedRows(queue: Queue): Promise<number> {
  const counts = await queue.getJobCounts('wait', 'prioritized', 'delayed');
  return (counts.wait ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0);
}

export interface HighWaterOptions {
  highWaterMark: number;
  /** resume once the queue is back under this share of the mark, so the ingester does not flap */
  resumeAt?: number;
  pollMs?: number;
  signal?: AbortSignal;
  onPause?: (waiting: number) => void;
}

/** Resolves at once below the mark; otherwise waits until the queue drains (or the signal aborts). */
export async function waitBelowHighWater(queue: Queue, opts: HighWaterOptions): Promise<void> {
  if (opts.highWaterMark <= 0) return;
  let waiting = await queuedRows(queue);
  if (waiting < opts.highWaterMark) return;
  opts.onPause?.(waiting);
  const resume = opts.highWaterMark * (opts.resumeAt ?? 0.8);
  while (waiting >= resume && !opts.signal?.aborted) {
    await sleep(opts.pollMs ?? 200, undefined, { signal: opts.signal }).catch(() => undefined);
    waiting = await queuedRows(queue);
  }
}
