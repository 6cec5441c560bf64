// Room in a full Redis, before the ingester writes again. A Redis at maxmemory hovers at its limit: it refuses
// writes while above it, and takes the next write as soon as something small is freed (a client's buffer, an
// error reply sent), which puts it over again. Retrying on refusals alone would let rows trickle into the queue a
// few at a time while the operator is told that ingest is paused. So once refused, the ingester waits until Redis
// has room for what it is about to write, which is what "memory freed" means to an operator.
import { setTimeout as sleep } from 'node:timers/promises';
import { memoryUse, type InfoReader } from '../redis/memoryPressure.js';

export interface RoomOptions {
  signal?: AbortSignal;
  /** how often INFO memory is read while waiting (default 200 ms) */
  pollMs?: number;
}

/**
 * Resolves once used_memory plus `bytes` fits under maxmemory (at once without a maxmemory, when INFO cannot be
 * read, or when the signal aborts: the write then meets Redis's own answer). `bytes` is capped at a tenth of
 * maxmemory, so a small Redis is never waited on for more room than it can have.
 */
export async function waitForRedisRoom(redis: () => InfoReader | Promise<InfoReader>, bytes: number, opts: RoomOptions = {}): Promise<void> {
  const reader = await redis();
  for (;;) {
    if (opts.signal?.aborted) return;
    const use = await memoryUse(reader);
    if (!use || use.maxBytes === 0) return;
    if (use.usedBytes + Math.min(bytes, use.maxBytes / 10) <= use.maxBytes) return;
    await sleep(opts.pollMs ?? 200, undefined, opts.signal ? { signal: opts.signal } : {}).catch(() => undefined);
  }
}
