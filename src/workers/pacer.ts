// Even spacing of requests across every process: each request takes the next free slot of a shared schedule
// in Redis (one slot every 1/rate seconds, on Redis's own clock) and waits for it. BullMQ's limiter admits
// jobs in windows, which an API counting over a sliding second can see as bursts; the slots cannot. Within a
// per-minute budget this is what spreads the minute's requests evenly instead of spending them in a burst.
// Each slot taken is also logged (pace-1.lua), which is how the rate controller knows what the API admitted.
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisClient } from '../redis/connection.js';
import { DEFAULT_RATE_SCOPE, RedisKeys } from '../redis/keys.js';
import { callScript } from '../redis/scripts.js';
import { PACE_TTL_MS } from './rate/sharedRate.js';

/** A request that waited this long for its slot checks, before leaving, that no 429 asked everyone to wait. */
const RECHECK_AFTER_MS = 5;

export class Pacer {
  private readonly key: string;
  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    /** requests per second to space for; changed live when the shared rate changes */
    public rate: number,
    private readonly maxWaitMs = 5000,
    scope: string = DEFAULT_RATE_SCOPE,
  ) {
    this.key = new RedisKeys(prefix).paceOf(scope);
  }

  /**
   * Waits for this request's slot; false when the schedule is full that far ahead. A 429 that came while it
   * waited (seen by any process: its hold is in Redis) sends it back for a slot after the pause, instead of
   * into a window the API has just said is full; on a per-minute budget that is the difference between one
   * refused request and every request already waiting for its slot.
   */
  async take(): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      const [wait, , slot] = await callScript<[number, number, string]>(this.redis, 'pace', [this.key], ['take', 1000 / this.rate, this.maxWaitMs, PACE_TTL_MS]);
      const waitMs = Number(wait);
      if (waitMs < 0) return false;
      if (waitMs > 0) await sleep(waitMs);
      if (waitMs < RECHECK_AFTER_MS || attempt > 0) return true;
      const [go] = await callScript<number[]>(this.redis, 'pace', [this.key], ['confirm', slot]);
      if (Number(go) === 1) return true;
    }
  }
}
