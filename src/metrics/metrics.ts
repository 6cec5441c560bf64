// prom-client metrics of one process (a worker, a `run`): what it sent, what came back, how long it took,
// how long it waited for the rate limit, and the rate it is running at. A registry of its own, not the
// global one, so that several pipelines in one process (tests, the library) never mix their figures.
// Labels carry statuses, codes, outcomes and source names: never keys, tokens or user ids.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ApiResult } from '../revenuecat/client.js';
import type { Classification } from '../revenuecat/classify.js';
import type { WorkerReport } from '../workers/workerReport.js';

export type RowOutcomeLabel = 'succeeded' | 'failed' | 'rejected' | 'duplicate' | 'already_migrated' | 'held';

/** The workers report through WorkerReport (workers/workerReport.ts), which these metrics implement. */
export class PipelineMetrics implements WorkerReport {
  readonly registry: Registry;
  readonly rows: Counter<'outcome'>;
  readonly requests: Counter<'status' | 'code'>;
  readonly latency: Histogram<'status'>;
  readonly rateLimitWaits: Counter;
  readonly rateLimitWaitSeconds: Counter;
  readonly rate: Gauge;
  readonly ingestLine: Gauge<'source'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry();
    const registers = [this.registry];
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'rcm_process_' });
    this.rows = new Counter({ name: 'rcm_rows_total', help: 'Rows by final outcome', labelNames: ['outcome'], registers });
    this.requests = new Counter({
      name: 'rcm_requests_total',
      help: 'POST /v1/receipts requests by HTTP status (or network error) and RevenueCat code',
      labelNames: ['status', 'code'],
      registers,
    });
    this.latency = new Histogram({
      name: 'rcm_request_duration_seconds',
      help: 'POST /v1/receipts latency',
      labelNames: ['status'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8],
      registers,
    });
    this.rateLimitWaits = new Counter({ name: 'rcm_rate_limit_waits_total', help: '429 answers that paused the queue', registers });
    this.rateLimitWaitSeconds = new Counter({ name: 'rcm_rate_limit_wait_seconds_total', help: 'Seconds the queue was paused for 429s', registers });
    this.rate = new Gauge({ name: 'rcm_request_rate_per_second', help: 'The shared request rate this process applies', registers });
    this.ingestLine = new Gauge({ name: 'rcm_ingest_line', help: 'Last line ingested, per source', labelNames: ['source'], registers });
  }

  /** One answer (or network failure) of the API. */
  request(result: ApiResult, verdict: Classification): void {
    const status = result.kind === 'response' ? String(result.status) : result.error;
    const code = verdict.kind !== 'success' && verdict.code !== undefined ? String(verdict.code) : '';
    this.requests.inc({ status, code });
    this.latency.observe({ status }, result.durationMs / 1000);
    if (verdict.kind === 'transient' && verdict.rateLimited) {
      this.rateLimitWaits.inc();
      if (verdict.retryAfterMs !== undefined) this.rateLimitWaitSeconds.inc(verdict.retryAfterMs / 1000);
    }
  }

  row(outcome: RowOutcomeLabel, n = 1): void {
    if (n > 0) this.rows.inc({ outcome }, n);
  }

  rateChanged(perSecond: number): void {
    this.rate.set(perSecond);
  }
}
