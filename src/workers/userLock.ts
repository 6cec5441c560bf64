// Never two requests in flight for one app_user_id, across every worker process: RevenueCat answers such
// overlaps with 429/7638 or worse. A short Redis lock per user, released only by its holder, or taken over by
// the next attempt of the row that holds it: that row's worker died with it (the stalled check handed the job
// on), and a row that waited out its own dead lock would go behind every row queued (BullMQ's delayed set
// feeds the back of the wait list).
//
// Every request also needs its slot of the pacer's schedule (pacer.ts), and only once its user's lock is held.
// Both are taken in one Redis call (lockPace-2.lua) wherever the two keys are in one slot: always on one node,
// and on a cluster when the prefix gives them one hash tag; otherwise one after the other, as two calls.
import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { isCluster, type RedisClient } from '../redis/connection.js';
import { keySlot, RedisKeys } from '../redis/keys.js';
import { callScript, loadScripts } from '../redis/scripts.js';
import type { Pacer, Write } from './pacer.js';

const run: Write = (op) => op();

export interface AcquireOptions {
  /** How long to wait for another request of the same user to finish; 0 = one try. */
  waitMs?: number;
  /** Takes the request's slot of this pacer too, once the lock is held: undefined is returned when it is full. */
  pacer?: Pacer;
  /** How each Redis call is made (the processor's: tried again on its own at maxmemory). */
  write?: Write;
  /** Called when undefined is returned because the pacer's schedule is full (not because the user is busy). */
  onFull?: () => void;
  /**
   * The row asking (its job id): a lock held by an earlier attempt of the same row, one whose worker died with
   * it, is taken over instead of waited out (redis/scripts/includes/userLock.lua).
   */
  owner?: string;
}

export class UserLock {
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    /** Expiry, so a killed worker cannot hold a user forever; longer than any request can take. */
    private readonly ttlMs: number,
  ) {
    loadScripts(redis);
    this.keys = new RedisKeys(prefix);
  }

  private key(appUserId: string): string {
    // Hashed: ids can be 100 characters of anything, and they are personal data that need not sit in key names.
    return this.keys.userLock(createHash('sha1').update(appUserId).digest('base64url'));
  }

  /**
   * A token when the lock was taken (and, with a pacer, the request's slot has come), undefined when another
   * request for this user stayed in flight for `waitMs`, or the pacer's schedule is full (the lock is given
   * back then). Waiting here, rather than putting the job back, keeps the rate slot the job was admitted with:
   * an export sorted by user would otherwise spend most of the rate on jobs that only bounce.
   */
  async acquire(appUserId: string, opts: AcquireOptions | number = {}): Promise<string | undefined> {
    const { waitMs = 0, pacer, write = run, onFull, owner = '' } = typeof opts === 'number' ? { waitMs: opts } : opts;
    const token = owner === '' ? randomUUID() : `${owner}#${randomUUID()}`;
    const key = this.key(appUserId);
    const deadline = Date.now() + waitMs;
    // On a cluster a script's keys must be in one slot: without a shared hash tag, two calls.
    const together = pacer !== undefined && (!isCluster(this.redis) || keySlot(key) === keySlot(pacer.key));
    try {
      for (;;) {
        if (together) {
          const taken = await pacer.takeHolding({ key, token, ttlMs: this.ttlMs, owner }, write);
          if (taken === true) return token;
          if (taken === false) {
            onFull?.();
            return undefined;
          }
        } else if (Number(await write(() => callScript(this.redis, 'takeUserLock', [key], [token, this.ttlMs, owner]))) === 1) {
          if (!pacer || (await pacer.take(write))) return token;
          // The pacer's schedule is full: the lock goes back.
          await write(() => this.release(appUserId, token));
          onFull?.();
          return undefined;
        }
        if (Date.now() >= deadline) return undefined;
        await sleep(5 + Math.random() * 15);
      }
    } catch (err) {
      // Failed with the lock perhaps held (while waiting for the slot): give it back if it is ours, then fail.
      await this.release(appUserId, token).catch(() => undefined);
      throw err;
    }
  }

  async release(appUserId: string, token: string): Promise<void> {
    // Only the holder may release (scripts/releaseUserLock-1.lua): after expiry the lock may be someone else's.
    await callScript(this.redis, 'releaseUserLock', [this.key(appUserId)], [token]);
  }
}
