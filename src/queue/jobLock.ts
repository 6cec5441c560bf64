// A row held in a worker while Redis is at maxmemory keeps its job's lock. BullMQ renews a job's lock with SET,
// which a full Redis refuses: the lock would lapse, the stalled check would hand the job to another worker once
// memory is freed, and the row would be sent twice while the first worker's answer met "Missing lock". PEXPIRE
// only changes a key's expiry, so Redis allows it at maxmemory: the worker keeps its lock alive with it until
// its write goes through and BullMQ can renew and finish the job as usual.
import type { RedisClient } from '../redis/connection.js';
import type { ReceiptsQueue } from './receiptsQueue.js';

/** Extends the lock of a job this worker holds (by its token) to `ms` from now; nothing if the lock is not ours. */
export async function holdJobLock(redis: RedisClient, queue: ReceiptsQueue, jobId: string | undefined, token: string | undefined, ms: number): Promise<void> {
  if (jobId === undefined || token === undefined) return;
  // BullMQ's lock key of a job (its scripts' `jobKey .. ':lock'`), in the job's hash slot on a cluster.
  const key = `${queue.toKey(jobId)}:lock`;
  // Not atomic: should the lock lapse and pass to another worker between the two calls, its holder's lock is
  // extended by one lock duration, which it renews anyway.
  if ((await redis.get(key)) === token) await redis.pexpire(key, ms);
}
