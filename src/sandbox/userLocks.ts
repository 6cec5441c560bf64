// RevenueCat rejects a request for an app_user_id while another one for the same user is being processed
// (v1 code 7638). The lock is separate from the concurrency count: only the request that got the lock
// blocks others, while the count (for maxInFlightPerUser) also includes the ones being turned away.

export interface UserLockTicket {
  acquired: boolean;
  /** Requests for this user in flight, this one included. */
  concurrent: number;
  /** Idempotent. */
  release(): void;
}

export class UserLocks {
  private readonly holders = new Set<string>();
  private readonly concurrent = new Map<string, number>();
  private total = 0;

  enter(appUserId: string): UserLockTicket {
    const acquired = !this.holders.has(appUserId);
    if (acquired) this.holders.add(appUserId);
    const concurrent = (this.concurrent.get(appUserId) ?? 0) + 1;
    this.concurrent.set(appUserId, concurrent);
    this.total++;
    let released = false;
    return {
      acquired,
      concurrent,
      release: () => {
        if (released) return;
        released = true;
        if (acquired) this.holders.delete(appUserId);
        const left = (this.concurrent.get(appUserId) ?? 1) - 1;
        if (left <= 0) this.concurrent.delete(appUserId);
        else this.concurrent.set(appUserId, left);
        this.total--;
      },
    };
  }

  get inFlight(): number {
    return this.total;
  }
}
