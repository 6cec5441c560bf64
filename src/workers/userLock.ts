// Never two requests in flight for one app_user_id, across every worker process: RevenueCat answers such
// overlaps with 429/7638 or worse. A short Redis lock per user, released only by its holder.
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { userLockKey } from '../ledger/keys.js';

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export class UserLock {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** Expiry, so a killed worker cannot hold a user forever; longer than any request can take. */
    private readonly ttlMs: number,
  ) {}

  private key(appUserId: string): string {
    // Hashed: ids can be 100 characters of anything, and they are personal data that need not sit in key names.
    return userLockKey(this.prefix, createHash('sha1').update(appUserId).digest('base64url'));
  }

  /** A token when the lock was taken, undefined when another request for this user is in flight. */
  async acquire(appUserId: string): Promise<string | undefined> {
    const token = randomUUID();
    const ok = await this.redis.set(this.key(appUserId), token, 'PX', this.ttlMs, 'NX');
    return ok === 'OK' ? token : undefined;
  }

  async release(appUserId: string, token: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.key(appUserId), token);
  }
}
