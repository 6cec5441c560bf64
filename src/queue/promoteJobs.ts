// Wakes delayed jobs now instead of at their time: rows waiting for their lookup group once it has every result
// (ledger/lookupGroups.ts). A job gone or no longer delayed (running, already back) is left as it is.
import type { ReceiptsQueue } from './receiptsQueue.js';

/** Promotes one delayed job; false when it is gone or no longer delayed (running, already back). */
export async function promoteJob(queue: Pick<ReceiptsQueue, 'getJob'>, jobId: string): Promise<boolean> {
  const job = await queue.getJob(jobId);
  if (!job) return false;
  try {
    await job.promote();
    return true;
  } catch {
    return false;
  }
}

/** Promotes the delayed jobs among `jobIds`; returns how many were promoted. */
export async function promoteJobs(queue: Pick<ReceiptsQueue, 'getJob'>, jobIds: readonly string[]): Promise<number> {
  const moved = await Promise.all(jobIds.map((id) => promoteJob(queue, id)));
  return moved.filter(Boolean).length;
}
