// How the ledger buckets a run's requests and outcomes over time and its request latencies: the ledger
// counts into these buckets and the report draws them, so they live here, below both.

/** One bucket of the run's timeline (TIMELINE_BUCKET_SECONDS wide). */
export interface TimelinePoint {
  /** start of the bucket, epoch seconds */
  t: number;
  /** requests sent */
  requests: number;
  /** 429 answers that were about the rate limit (not a busy user) */
  rateLimited: number;
  /** rows that got a final outcome in this bucket */
  succeeded: number;
  failed: number;
  /** the request rate the workers paced at during the bucket (requests/s; the learned or configured rate), when recorded */
  rate?: number;
  /** the App Store Server API lookups' rate during the bucket (lookups/s, scope 'apple'), when the run looked rows up then */
  lookupRate?: number;
}

export const TIMELINE_BUCKET_SECONDS = 10;

/** Upper bounds (ms) of the request latency histogram; the last bucket is everything above. */
export const LATENCY_BUCKETS_MS = [10, 25, 50, 100, 200, 400, 800, 1600, 3200, 6400, 12800] as const;

/** Start (epoch seconds) of the timeline bucket holding this moment. */
export function timelineBucket(epochMs: number): number {
  return Math.floor(epochMs / 1000 / TIMELINE_BUCKET_SECONDS) * TIMELINE_BUCKET_SECONDS;
}

/** Index of the latency bucket for a request that took `ms`; LATENCY_BUCKETS_MS.length for the overflow. */
export function latencyBucket(ms: number): number {
  const i = LATENCY_BUCKETS_MS.findIndex((bound) => ms <= bound);
  return i === -1 ? LATENCY_BUCKETS_MS.length : i;
}
