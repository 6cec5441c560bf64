// A write cut off by a lost connection (Redis restarted, a failover). ioredis resends a command that was sent
// whole, but rejects the unanswered rest of a pipeline or a MULTI ("Command aborted due to connection close"):
// BullMQ's addBulk and the ledger's pipelines are such. The connection reconnects by itself (maxRetriesPerRequest
// null), so a write that is safe to repeat is tried again once it has, instead of ending the ingest.
import { setTimeout as sleep } from 'node:timers/promises';
import { redisErrorSays } from './errorText.js';

const ABORTED = 'Command aborted due to connection close';

/** True when `err` is ioredis rejecting a command because its connection closed before the answer came. */
export function isConnectionAbort(err: unknown): boolean {
  return redisErrorSays(err, ABORTED);
}

export interface OutageOptions {
  signal?: AbortSignal;
  /** give up (throw the abort) after this long without a write getting through; default 2 minutes */
  deadlineMs?: number;
  /** called before each wait, e.g. to log once */
  onAbort?: (err: Error) => void;
}

/** Runs `op`, again after each connection abort (200 ms, doubling up to 2 s), until it gets through or the deadline. */
export async function retryThroughOutage<T>(op: () => Promise<T>, opts: OutageOptions = {}): Promise<T> {
  const deadline = Date.now() + (opts.deadlineMs ?? 120_000);
  let delay = 200;
  for (;;) {
    try {
      return await op();
    } catch (err) {
      if (!isConnectionAbort(err) || Date.now() >= deadline || opts.signal?.aborted) throw err;
      opts.onAbort?.(err as Error);
      await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : {}).catch(() => undefined);
      delay = Math.min(2000, delay * 2);
    }
  }
}
