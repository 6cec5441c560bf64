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

export class Pacer {
  private readonly key: string;
  /** local time until which nothing may be sent: a 429 seen by this process while requests waited for slots */
  private holdUntil = 0;

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

  /** A 429 asked every request to wait `ms`: requests already holding a slot inside that time take a new one. */
  hold(ms: number): void {
    this.holdUntil = Math.max(this.holdUntil, Date.now() + ms);
  }

  /** Waits for this request's slot; false when the schedule is full that far ahead. */
  async take(): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      const [wait] = await callScript<number[]>(this.redis, 'pace', [this.key], ['take', 1000 / this.rate, this.maxWaitMs, PACE_TTL_MS]);
      const waitMs = Number(wait);
      if (waitMs < 0) return false;
      const slot = Date.now() + waitMs;
      if (waitMs > 0) await sleep(waitMs);
      // The hold is also in Redis (later slots start after it); this slot was taken before it was set.
      if (slot < this.holdUntil && attempt === 0) continue;
      return true;
    }
  }
}
