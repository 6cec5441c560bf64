// What a worker tells whoever watches it: each answer of the API, each outcome it wrote, and the request rate it
// applies. The process's metrics implement it (metrics/metrics.ts) and are handed in by the session or `work`;
// the workers know only this interface, so the metrics can change (or be left out) without touching them.
import type { ApiResult } from '../revenuecat/client.js';
import type { Classification } from '../revenuecat/classify.js';
import type { OutcomeStatus } from '../types.js';

export interface WorkerReport {
  /** one answer (or network failure) of the API, with how it was classified */
  request(result: ApiResult, verdict: Classification): void;
  /** a row's final outcome, once the ledger took it (an outcome already there is not reported again) */
  row(outcome: OutcomeStatus): void;
  /** the request rate (per second) this process now applies, summed over its limit scopes */
  rateChanged(perSecond: number): void;
}
