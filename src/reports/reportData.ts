// What report.html is drawn from: the summary plus what only the whole run shows (its timeline, request
// latencies, the failures that matter most). Built by writeReport from the ledger; rendered by html.ts.
import type { Summary } from './summary.js';
import { LATENCY_BUCKETS_MS, type TimelinePoint } from '../ledger/timeline.js';

export { LATENCY_BUCKETS_MS, TIMELINE_BUCKET_SECONDS, type TimelinePoint } from '../ledger/timeline.js';

export interface LatencyStats {
  count: number;
  /** counts per bucket of LATENCY_BUCKETS_MS, plus one for "above the last bound" */
  buckets: number[];
  /** estimated from the histogram (upper bound of the bucket holding the percentile), ms; null without
   *  requests, or when the percentile lies above the last bound (over 12.8 s) */
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
}

export interface FailureExample {
  src: string;
  line: number;
  app_user_id: string;
  /** masked */
  token: string;
  message: string;
}

export interface FailureGroup {
  reason: string;
  count: number;
  /** what the RevenueCat code means, when the reason is one */
  meaning?: string;
  examples: FailureExample[];
}

export interface ReportData {
  summary: Summary;
  timeline: TimelinePoint[];
  latency: LatencyStats;
  /** failed rows grouped by reason, largest first (at most 10 groups, 3 examples each) */
  topFailures: FailureGroup[];
  /** rejected rows grouped by reason, largest first (same limits) */
  topRejections: { reason: string; count: number; examples: { src: string; line: number }[] }[];
  generatedAt: string;
}

/** Percentile from histogram counts: the upper bound of the bucket where the cumulative count reaches p. */
export function percentileOf(buckets: readonly number[], p: number): number | null {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const target = Math.ceil(total * p);
  let seen = 0;
  for (const [i, n] of buckets.entries()) {
    seen += n;
    if (seen >= target) return LATENCY_BUCKETS_MS[i] ?? null;
  }
  return null;
}
