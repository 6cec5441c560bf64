// Wakes delayed jobs now instead of at their time: rows waiting for their lookup group once it has every result
// (ledger/lookupGroups.ts). A job gone or no longer delayed (running, already back) is left as it is.
import type { ReceiptsQueue } from './receiptsQueue.js';

/** Promotes the delayed jobs among `jobIds`; returns how many were promoted. */
export async function promoteJobs(queue: Pick<ReceiptsQueue, 'getJob'>, jobIds: readonly string[]): Promise<number> {
  const moved = await Promise.all(
    jobIds.map(async (id) => {
      const job = await queue.getJob(id);
      if (!job) return false;
      try {
        await job.promote();
        return true;
      } catch {
        return false;
      }
    }),
  );
  return moved.filter(Boolean).length;
}
