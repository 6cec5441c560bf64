// Even spacing of requests across every process: each request takes the next free slot of a shared schedule
// in Redis (one slot every 1/rate seconds, on Redis's own clock) and waits for it. BullMQ's limiter admits
// jobs in windows, which an API counting over a sliding second can see as bursts; the slots cannot. Within a
// per-minute budget this is what spreads the minute's requests evenly instead of spending them in a burst.
// Each slot taken is also logged (pace-1.lua), which is how the rate controller knows what the API admitted.
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisClient } from '../redis/connection.js';
import { DEFAULT_RATE_SCOPE, RedisKeys } from '../redis/keys.js';
import { callScript } from '../redis/scripts.js';
import { paceAim, paceLagMs } from './rate/limiter.js';
import { PACE_TTL_MS } from './rate/sharedRate.js';

/** A request that waited this long for its slot checks, before leaving, that no 429 asked everyone to wait. */
const RECHECK_AFTER_MS = 5;

/** lockPace-2.lua's answer when another request holds the user's lock. */
const LOCK_TAKEN = -2;

/** pace-1.lua's answer to 'take': wait ms (-1: the schedule is full), Redis's now, and the slot (absent when full). */
type Booking = [number, number, string?];

/** A user's lock to take with the slot (workers/userLock.ts). */
export interface HeldLock {
  key: string;
  token: string;
  ttlMs: number;
  /** the row taking it, whose own earlier attempt's lock it may take over ('' for none: userLock.ts) */
  owner?: string;
}

/** How each Redis call of the way is made (the processor's: tried again at maxmemory). */
export type Write = <T>(op: () => Promise<T>) => Promise<T>;
const run: Write = (op) => op();

export class Pacer {
  /** the pace hash (a user's lock is taken with it in one call when both are in one slot: userLock.ts) */
  readonly key: string;
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
  async take(write: Write = run): Promise<boolean> {
    return (await this.slot(() => this.book(), write)) === true;
  }

  /**
   * take(), with a user's lock taken in the same Redis call (lockPace-2.lua, whose keys must share a slot on a
   * cluster): 'busy' when another request holds the lock (no slot taken); true once the slot has come, the lock
   * held; false when the schedule is full, the lock given back. Each Redis call of the way goes through `write`
   * (the processor's: at maxmemory each is tried again on its own, so the lock is never taken twice).
   */
  async takeHolding(lock: HeldLock, write: Write = run): Promise<'busy' | boolean> {
    // Full at the first booking, the script gave the lock back; full at a later one (a hold sent the request back
    // for a later slot), the lock is still held, and goes back here (releaseUserLock-1.lua: only by this token).
    let held = false;
    const taken = await this.slot(async () => {
      const interval = this.intervalMs;
      const reply = await callScript<Booking | [-2]>(
        this.redis,
        'lockPace',
        [lock.key, this.key],
        [lock.token, lock.ttlMs, interval, this.maxWaitMs, PACE_TTL_MS, paceLagMs(interval), lock.owner ?? ''],
      );
      if (Number(reply[0]) === LOCK_TAKEN) return 'busy';
      held = Number(reply[0]) >= 0;
      return reply as Booking;
    }, write);
    if (taken === false && held) await write(() => callScript(this.redis, 'releaseUserLock', [lock.key], [lock.token]));
    return taken;
  }

  /**
   * Plan whole requests per second (paceAim) while the rate is a learned one; a --rate given by the user is their
   * word for the limit, and is paced as given (2% under it).
   */
  wholeRequests = true;

  /** Time between slots: evenly spaced over each second. */
  get intervalMs(): number {
    return 1000 / (this.wholeRequests ? paceAim(this.rate) : this.rate);
  }

  private book(): Promise<Booking> {
    const interval = this.intervalMs;
    return callScript<Booking>(this.redis, 'pace', [this.key], ['take', interval, this.maxWaitMs, PACE_TTL_MS, paceLagMs(interval)]);
  }

  /** The slot's way: booked by `first`, waited for, and re-checked against a hold (then booked again, once). */
  private async slot(first: () => Promise<Booking | 'busy'>, write: Write = run): Promise<'busy' | boolean> {
    for (let attempt = 0; ; attempt++) {
      const booked = await write(attempt === 0 ? first : () => this.book());
      if (booked === 'busy') return 'busy';
      const [wait, , slot] = booked;
      const waitMs = Number(wait);
      if (waitMs < 0) return false;
      if (waitMs > 0) await sleep(waitMs);
      if (waitMs < RECHECK_AFTER_MS || attempt > 0) return true;
      const [go] = await write(() => callScript<number[]>(this.redis, 'pace', [this.key], ['confirm', slot as string]));
      if (Number(go) === 1) return true;
    }
  }
}
