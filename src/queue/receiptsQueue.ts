// The BullMQ queue that carries rows from the ingester to the workers, and the options every row job gets.
import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import type { ReceiptJobData } from '../types.js';
import { compactJobData } from './jobData.js';
import { QUEUES, bullmqPrefix, jobIdOf } from '../redis/keys.js';
import { isCluster } from '../redis/connection.js';

export const RECEIPT_JOB = 'receipt';
/** Name of the custom backoff strategy the workers register (see workers/backoff.ts). */
export const BACKOFF_TYPE = 'revenuecat';

export type ReceiptsQueue = Queue<ReceiptJobData, void, string>;

export function openReceiptsQueue(connection: ConnectionOptions, prefix: string): ReceiptsQueue {
  const queue = new Queue<ReceiptJobData, void, string>(QUEUES.receipts, {
    connection,
    prefix: bullmqPrefix(prefix, isCluster(connection)),
    // The events stream is only for dashboards: cap it so a 50-million-row run does not grow it without bound.
    streams: { events: { maxLen: 10_000 } },
  });
  // During a Redis outage the shared connection reports each failed reconnect here; without a listener Node
  // prints them as raw stack traces. The commands' own Redis calls wait for the reconnection and go on.
  queue.on('error', () => undefined);
  return queue;
}

/** Finished jobs are removed: the run ledger holds every outcome, so Redis does not keep a job per row. */
export function receiptJobOptions(maxAttempts: number): JobsOptions {
  return {
    attempts: maxAttempts,
    backoff: { type: BACKOFF_TYPE },
    removeOnComplete: true,
    removeOnFail: true,
    stackTraceLimit: 0,
  };
}

export async function enqueueRows(queue: ReceiptsQueue, rows: ReceiptJobData[], maxAttempts: number): Promise<void> {
  if (rows.length === 0) return;
  const opts = receiptJobOptions(maxAttempts);
  // addBulk pipelines without MULTI: if it fails halfway, re-ingesting re-adds the rest and the job ids make
  // the rows that did get in no-ops. Each job holds its receipt once (jobData.ts).
  const jobs = rows.map((row) => {
    const data = compactJobData(row);
    return { name: RECEIPT_JOB, data, opts: { ...opts, jobId: jobIdOf(data.run, data.fp), ...(data.priority ? { priority: data.priority } : {}) } };
  });
  // On a Redis Cluster a failover of the queue's master may lose jobs just added while the ledger keeps the rows
  // as queued: the reconcile pass (reconcile.ts) queues them again by these same ids.
  await queue.addBulk(jobs);
}
