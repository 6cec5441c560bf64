// Never two requests in flight for one app_user_id, across every worker process: RevenueCat answers such
// overlaps with 429/7638 or worse. A short Redis lock per user, released only by its holder.
import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisClient } from '../redis/connection.js';
import { RedisKeys } from '../redis/keys.js';
import { callScript, loadScripts } from '../redis/scripts.js';

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
   * A token when the lock was taken, undefined when another request for this user stayed in flight for
   * `waitMs`. Waiting here, rather than putting the job back, keeps the rate slot the job was admitted with:
   * an export sorted by user would otherwise spend most of the rate on jobs that only bounce.
   */
  async acquire(appUserId: string, waitMs = 0): Promise<string | undefined> {
    const token = randomUUID();
    const key = this.key(appUserId);
    const deadline = Date.now() + waitMs;
    for (;;) {
      if ((await this.redis.set(key, token, 'PX', this.ttlMs, 'NX')) === 'OK') return token;
      if (Date.now() >= deadline) return undefined;
      await sleep(5 + Math.random() * 15);
    }
  }

  async release(appUserId: string, token: string): Promise<void> {
    // Only the holder may release (scripts/releaseUserLock-1.lua): after expiry the lock may be someone else's.
    await callScript(this.redis, 'releaseUserLock', [this.key(appUserId)], [token]);
  }
}
