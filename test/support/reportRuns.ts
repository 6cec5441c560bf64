// Report data for the report.html tests: an empty run, and a realistic hour (timeline, latencies, failures whose
// user id is `<script>alert(1)</script>`), shared by the renderer's plain tests and the browser tests.
import { LATENCY_BUCKETS_MS, percentileOf, TIMELINE_BUCKET_SECONDS, type ReportData, type TimelinePoint } from '../../src/reports/reportData.js';
import type { Summary } from '../../src/reports/summary.js';

export const XSS_USER = '<script>alert(1)</script>';
export const XSS_MESSAGE = 'store said <img src=x onerror=alert(2)> & gave up';
export const XSS_SOURCE = 'exports/<b>march</b>.csv';

/** Epoch seconds of 2025-03-14 09:00:00 UTC, on a bucket boundary like the ledger's. */
export const T0 = Date.UTC(2025, 2, 14, 9, 0, 0) / 1000;

export function emptySummary(over: Partial<Summary> = {}): Summary {
  return {
    run_id: 'empty-run',
    status: 'complete',
    started_at: '2025-03-14T09:00:00.000Z',
    finished_at: '2025-03-14T09:00:01.000Z',
    sources: [],
    rows_read: 0,
    rows_rejected: 0,
    rows_duplicate: 0,
    rows_queued: 0,
    rows_succeeded: 0,
    rows_failed: 0,
    rows_pending: 0,
    rows_mismatched: 0,
    rows_past_google_cutoff: 0,
    already_migrated: 0,
    rows_updated: 0,
    rows_conflict: 0,
    rows_held: 0,
    rows_superseded: 0,
    requests_sent: 0,
    retries: 0,
    by_http_status: {},
    requests_rate_limited: 0,
    requests_in_process: 0,
    by_error_code: {},
    reconciliation: { product_confirmed: 0, product_not_checked: 0, product_not_in_subscriber: 0, transferred: 0 },
    ...over,
  };
}

export function emptyRun(): ReportData {
  return {
    summary: emptySummary(),
    timeline: [],
    latency: { count: 0, buckets: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0), p50: null, p90: null, p95: null, p99: null },
    topFailures: [],
    topRejections: [],
    generatedAt: '2025-03-14T09:00:02.000Z',
  };
}

/**
 * A deterministic timeline: ~9 req/s with a rate-limited dip in the middle and a slower tail. With `withRate`,
 * each bucket also carries the rate the workers paced at, as a run with rate discovery records it: ~10 req/s,
 * stepped down to 4.4 at the dip's 429s and climbing back over the ten buckets after it.
 */
export function timeline(n: number, withRate = false): TimelinePoint[] {
  const points: TimelinePoint[] = [];
  for (let i = 0; i < n; i++) {
    const dip = i >= n * 0.4 && i < n * 0.45;
    const wobble = Math.round(6 * Math.sin(i / 7));
    const requests = dip ? 40 + wobble : i > n * 0.9 ? 50 + wobble : 92 + wobble;
    const rateLimited = dip ? 12 + (i % 3) : i % 37 === 0 ? 2 : 0;
    const failed = i % 11 === 0 ? 3 : 1;
    const point: TimelinePoint = { t: T0 + i * TIMELINE_BUCKET_SECONDS, requests, rateLimited, succeeded: requests - rateLimited - failed - 2, failed };
    if (withRate) {
      const sinceDip = i - Math.ceil(n * 0.45);
      point.rate = dip ? 4.4 : sinceDip >= 0 && sinceDip < 10 ? Math.round((4.4 + (sinceDip + 1) * 0.55) * 100) / 100 : 9.9;
    }
    points.push(point);
  }
  return points;
}

export function realisticRun(): ReportData {
  const points = timeline(360, true); // one hour, with its learned rate
  const sum = (f: (p: TimelinePoint) => number): number => points.reduce((a, p) => a + f(p), 0);
  const requests = sum((p) => p.requests);
  const rateLimited = sum((p) => p.rateLimited);
  const succeeded = sum((p) => p.succeeded);
  const failed = sum((p) => p.failed);
  const buckets = [0, 14, 310, 5200, 17800, 6900, 900, 200, 41, 9, 2, 1];
  // The histogram must account for every request, like the ledger's does.
  buckets[4] = (buckets[4] ?? 0) + (requests - buckets.reduce((a, b) => a + b, 0));
  const rejected = 37;
  const duplicates = 12;
  const alreadyMigrated = 250;
  const summary = emptySummary({
    run_id: 'backfill-20250314-0900',
    started_at: new Date(T0 * 1000).toISOString(),
    finished_at: new Date((T0 + 3600) * 1000 + 4200).toISOString(),
    sources: ['s3://acme-exports/receipts/2025-03-13/apple.csv.gz', 's3://acme-exports/receipts/2025-03-13/google.csv', XSS_SOURCE],
    rows_read: succeeded + failed + rejected + duplicates + alreadyMigrated,
    rows_rejected: rejected,
    rows_duplicate: duplicates,
    rows_queued: succeeded + failed,
    rows_succeeded: succeeded,
    rows_failed: failed,
    already_migrated: alreadyMigrated,
    requests_sent: requests,
    retries: 1,
    by_http_status: { '200': succeeded + 5, '400': 180, '429': rateLimited, '500': 95, '503': 40, timeout: 14, reset: 9 },
    by_error_code: { rc_7103: 230, rc_7102: 104, product_not_in_subscriber: 40, timeout: failed - 230 - 104 - 40 - 6, [XSS_USER]: 6 },
    reconciliation: { product_confirmed: succeeded - 310, product_not_checked: 310, product_not_in_subscriber: 40, transferred: 0 },
  });
  return {
    summary,
    timeline: points,
    latency: {
      count: requests,
      buckets,
      p50: percentileOf(buckets, 0.5),
      p90: percentileOf(buckets, 0.9),
      p95: percentileOf(buckets, 0.95),
      p99: percentileOf(buckets, 0.99),
    },
    topFailures: [
      {
        reason: 'rc_7103',
        count: 230,
        meaning: 'invalid receipt / token',
        examples: [
          { src: 'apple.csv.gz', line: 118, app_user_id: XSS_USER, token: 'MIIT…k9Q=', message: XSS_MESSAGE },
          { src: 'apple.csv.gz', line: 2051, app_user_id: 'user_8812', token: 'MIIT…x1A=', message: 'The receipt is not valid.' },
        ],
      },
      {
        reason: 'rc_7102',
        count: 104,
        meaning: 'receipt already in use by another user (cannot transfer)',
        examples: [{ src: 'google.csv', line: 77, app_user_id: '$RCAnonymousID:4f1c2', token: 'gpla…33fe', message: 'The receipt is already in use by another subscriber.' }],
      },
      {
        reason: 'product_not_in_subscriber',
        count: 40,
        examples: [{ src: 'google.csv', line: 901, app_user_id: 'u-901', token: 'gpla…0c1d', message: 'product monthly_9 not in subscriber' }],
      },
    ],
    topRejections: [
      {
        reason: 'app_user_id is blocklisted (null)',
        count: 30,
        examples: [
          { src: XSS_SOURCE, line: 4 },
          { src: 'google.csv', line: 12 },
        ],
      },
      { reason: 'currency without price', count: 7, examples: [{ src: 'apple.csv.gz', line: 99 }] },
    ],
    generatedAt: new Date((T0 + 3600) * 1000 + 5000).toISOString(),
  };
}
