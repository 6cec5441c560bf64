// Even spacing of requests across every process: each request takes the next free slot of a shared schedule
// in Redis (one slot every 1/rate seconds, on Redis's own clock) and waits for it. BullMQ's limiter admits
// jobs in windows, which an API counting over a sliding second can see as bursts; the slots cannot.
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisClient } from '../redis/connection.js';

// KEYS[1] next free slot (ms, Redis clock). ARGV: interval ms, max wait ms. Returns the wait before the slot, or
// -1 when the schedule is booked further ahead than max wait (the caller goes back to the queue instead).
const TAKE_SLOT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nextSlot = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, nextSlot)
if slot - now > tonumber(ARGV[2]) then return -1 end
redis.call('SET', KEYS[1], tostring(slot + tonumber(ARGV[1])), 'PX', 60000)
return slot - now
`;

export const pacerKey = (prefix: string): string => `${prefix}:pace`;

export class Pacer {
  private readonly key: string;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    /** requests per second to space for; changed live when the shared rate changes */
    public rate: number,
    private readonly maxWaitMs = 5000,
  ) {
    this.key = pacerKey(prefix);
  }

  /** Waits for this request's slot; false when the schedule is full that far ahead. */
  async take(): Promise<boolean> {
    const wait = Number(await this.redis.eval(TAKE_SLOT, 1, this.key, String(1000 / this.rate), String(this.maxWaitMs)));
    if (wait < 0) return false;
    if (wait > 0) await sleep(wait);
    return true;
  }
}
