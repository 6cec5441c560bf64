// A sliding-window log: exact, and cheap at sandbox rates. It runs on a monotonic clock, not the `now`
// option, because tests freeze `now` for dates and would otherwise freeze the window too.
import { performance } from 'node:perf_hooks';

export interface RateDecision {
  allowed: boolean;
  /** Whole seconds until a slot frees, at least 1 (Retry-After). */
  retryAfterSeconds: number;
  /** Milliseconds until a slot frees (a v2 body's backoff_ms); 0 when allowed. */
  retryAfterMs: number;
}

const WINDOW_MS = 1_000;
const USAGE_WINDOW_MS = 60_000;

export class SlidingWindowRateLimiter {
  // Admitted request times, ascending, kept for 60 s so usage can be reported per minute like RevenueCat's
  // RevenueCat-Rate-Limit-Current-Usage header; `head` avoids shifting the array on every request.
  private hits: number[] = [];
  private head = 0;

  constructor(private readonly clock: () => number = () => performance.now()) {}

  /**
   * Admits the request (and records it) when fewer than `limit` were admitted in the last `windowMs`
   * (default one second: v1's `rateLimitPerSecond`). `windowMs` may not exceed the minute of history kept.
   */
  take(limit: number, windowMs: number = WINDOW_MS): RateDecision {
    const now = this.clock();
    this.prune(now);
    if (limit <= 0) {
      this.hits.push(now);
      return { allowed: true, retryAfterSeconds: 0, retryAfterMs: 0 };
    }
    const window = Math.min(windowMs, USAGE_WINDOW_MS);
    const first = this.firstAfter(now - window);
    const inWindow = this.hits.length - first;
    if (inWindow >= limit) {
      const oldestCounted = this.hits[this.hits.length - limit] ?? now;
      const waitMs = Math.max(1, Math.ceil(oldestCounted + window - now));
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)), retryAfterMs: waitMs };
    }
    this.hits.push(now);
    return { allowed: true, retryAfterSeconds: 0, retryAfterMs: 0 };
  }

  /** Requests admitted during the last minute. */
  usagePerMinute(): number {
    this.prune(this.clock());
    return this.hits.length - this.head;
  }

  clear(): void {
    this.hits = [];
    this.head = 0;
  }

  private prune(now: number): void {
    const cutoff = now - USAGE_WINDOW_MS;
    while (this.head < this.hits.length && (this.hits[this.head] ?? Infinity) <= cutoff) this.head++;
    if (this.head > 1024 && this.head * 2 > this.hits.length) {
      this.hits = this.hits.slice(this.head);
      this.head = 0;
    }
  }

  /** Index of the first hit strictly after `t` (binary search over the live part). */
  private firstAfter(t: number): number {
    let lo = this.head;
    let hi = this.hits.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.hits[mid] ?? Infinity) <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
