// The v1 traffic second by second, for a benchmark that plots what the client achieved against the limit in
// force: requests admitted by the rate limit, 429s from the limit, same-user overlaps (kept apart: they do not
// mean the limit), and the limits of that second. Only seconds with traffic are kept, the last hour of them.
import { monotonicEpochMs, type Clock } from './clock.js';
import type { V1Limits } from './rateSchedule.js';

export interface TimelineBucket {
  /** Whole seconds since `startedAtMs`. */
  second: number;
  /** v1 API requests that arrived (POST /v1/receipts, GET /v1/subscribers). */
  requests: number;
  /** Requests the rate limit let through (whatever happened to them next). */
  admitted: number;
  /** 429 / 7429: refused by the rate limit. */
  rateLimited: number;
  /** 429 (or 529) / 7638: another request for the same user was in flight. Not the rate limit. */
  overlaps: number;
  /** 2xx answers to POST /v1/receipts. */
  succeeded: number;
  /** The limits in force at the second's last request (0 = none). */
  perSecond: number;
  perMinute: number;
}

export interface TimelineStats {
  /** Epoch milliseconds of second 0 (start or last reset). */
  startedAtMs: number;
  bucketMs: number;
  /** Ascending by second; seconds without traffic are left out. */
  buckets: TimelineBucket[];
}

export type TimelineEvent = 'request' | 'admitted' | 'rateLimited' | 'overlap' | 'succeeded';

const BUCKET_MS = 1000;
const MAX_BUCKETS = 3600;

export class Timeline {
  private startedAt: number;
  private buckets = new Map<number, TimelineBucket>();

  constructor(private readonly clock: Clock = monotonicEpochMs) {
    this.startedAt = clock();
  }

  note(event: TimelineEvent, limits: V1Limits): void {
    const bucket = this.current();
    bucket.perSecond = limits.perSecond;
    bucket.perMinute = limits.perMinute;
    switch (event) {
      case 'request':
        bucket.requests++;
        break;
      case 'admitted':
        bucket.admitted++;
        break;
      case 'rateLimited':
        bucket.rateLimited++;
        break;
      case 'overlap':
        bucket.overlaps++;
        break;
      case 'succeeded':
        bucket.succeeded++;
        break;
    }
  }

  snapshot(): TimelineStats {
    return {
      startedAtMs: Math.round(this.startedAt),
      bucketMs: BUCKET_MS,
      buckets: [...this.buckets.values()].map((b) => ({ ...b })).sort((a, b) => a.second - b.second),
    };
  }

  reset(): void {
    this.startedAt = this.clock();
    this.buckets = new Map();
  }

  private current(): TimelineBucket {
    const second = Math.max(0, Math.floor((this.clock() - this.startedAt) / BUCKET_MS));
    let bucket = this.buckets.get(second);
    if (!bucket) {
      bucket = { second, requests: 0, admitted: 0, rateLimited: 0, overlaps: 0, succeeded: 0, perSecond: 0, perMinute: 0 };
      this.buckets.set(second, bucket);
      // Seconds only ever grow, so the first key is the oldest.
      if (this.buckets.size > MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value as number);
    }
    return bucket;
  }
}
