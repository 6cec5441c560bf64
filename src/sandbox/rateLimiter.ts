// Request admission under one or more rules "at most `limit` requests per `windowMs`", each counted in a
// sliding window (the last windowMs before now) or in fixed windows (consecutive windowMs-long periods from
// the limiter's origin, whose count starts again at every boundary: a burst can spend a whole window's budget
// at once, then everything waits for the next window). One log of admitted request times serves both kinds
// and the per-minute usage: it keeps a minute of history, so no window may be longer than that.
import { monotonicEpochMs, type Clock } from './clock.js';

export type WindowKind = 'sliding' | 'fixed';
export const WINDOW_KINDS = ['sliding', 'fixed'] as const satisfies readonly WindowKind[];

export interface RateRule {
  /** Requests admitted per window; 0 or less = the rule is off. */
  limit: number;
  /** 1..60000. */
  windowMs: number;
  kind: WindowKind;
}

export interface RateDecision {
  allowed: boolean;
  /** Whole seconds until a request can be admitted again, at least 1 (Retry-After); 0 when allowed. */
  retryAfterSeconds: number;
  /** Milliseconds until a request can be admitted again (a body's backoff_ms); 0 when allowed. */
  retryAfterMs: number;
  /** The rule that refused (the one with the longest wait), when refused. */
  refusedBy?: RateRule;
}

export const MAX_WINDOW_MS = 60_000;
const USAGE_WINDOW_MS = 60_000;
const ALLOWED: RateDecision = { allowed: true, retryAfterSeconds: 0, retryAfterMs: 0 };

export class RateLimiter {
  // Admitted request times, ascending; `head` skips the expired part without shifting the array each time.
  private hits: number[] = [];
  private head = 0;
  private origin: number;

  constructor(private readonly clock: Clock = monotonicEpochMs) {
    this.origin = clock();
  }

  /** Admits (and records) the request when every rule has room, or says how long until all of them would. */
  take(rules: readonly RateRule[]): RateDecision {
    const now = this.clock();
    this.prune(now);
    let refused: { waitMs: number; rule: RateRule } | undefined;
    for (const rule of rules) {
      if (rule.limit <= 0) continue;
      const waitMs = this.waitFor(rule, now);
      if (waitMs > 0 && (!refused || waitMs > refused.waitMs)) refused = { waitMs, rule };
    }
    if (refused) {
      return { allowed: false, retryAfterMs: refused.waitMs, retryAfterSeconds: Math.max(1, Math.ceil(refused.waitMs / 1000)), refusedBy: refused.rule };
    }
    this.hits.push(now);
    return ALLOWED;
  }

  /** Requests admitted during the last minute (RevenueCat-Rate-Limit-Current-Usage). */
  usagePerMinute(): number {
    this.prune(this.clock());
    return this.hits.length - this.head;
  }

  /** Forgets every admitted request; fixed windows start again from now. */
  clear(): void {
    this.hits = [];
    this.head = 0;
    this.origin = this.clock();
  }

  /** 0 when the rule has room now, else the milliseconds until it will (at least 1). */
  private waitFor(rule: RateRule, now: number): number {
    const window = Math.min(Math.max(1, rule.windowMs), MAX_WINDOW_MS);
    if (rule.kind === 'fixed') {
      const start = this.origin + Math.floor((now - this.origin) / window) * window;
      const inWindow = this.hits.length - this.firstAtOrAfter(start);
      return inWindow >= rule.limit ? Math.max(1, Math.ceil(start + window - now)) : 0;
    }
    const inWindow = this.hits.length - this.firstAtOrAfter(now - window, true);
    if (inWindow < rule.limit) return 0;
    // The window has room again once the limit-th newest admitted request has left it.
    const leaving = this.hits[this.hits.length - rule.limit] ?? now;
    return Math.max(1, Math.ceil(leaving + window - now));
  }

  private prune(now: number): void {
    const cutoff = now - USAGE_WINDOW_MS;
    while (this.head < this.hits.length && (this.hits[this.head] ?? Infinity) <= cutoff) this.head++;
    if (this.head > 1024 && this.head * 2 > this.hits.length) {
      this.hits = this.hits.slice(this.head);
      this.head = 0;
    }
  }

  /** Index of the first live hit at or after `t` (strictly after it when `strict`), by binary search. */
  private firstAtOrAfter(t: number, strict = false): number {
    let lo = this.head;
    let hi = this.hits.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const hit = this.hits[mid] ?? Infinity;
      if (strict ? hit <= t : hit < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
