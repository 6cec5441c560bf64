// summary.json: the run's counters from the ledger plus breakdowns computed from the outcomes themselves.
import type { FatalReason, StoppedKey } from '../queue/fatalStop.js';
import type { VerifySummary } from '../ledger/runLedger.js';
import type { Outcome, ReceiptTally, RunCounters, RunState } from '../types.js';

/** partial: a canary (`run --limit`) whose rows all have an outcome; the rest of its sources is left for the next run */
export type RunStatus = 'complete' | 'in_progress' | 'stopped' | 'partial';

/** A canary's limit and the rows it queued to be sent (session/canary.ts). */
export interface CanarySummary {
  limit: number;
  sent: number;
}

export interface Reconciliation {
  /** the subscriber shows the row's product */
  product_confirmed: number;
  /** the row named no product, so only the user was checked */
  product_not_checked: number;
  product_not_in_subscriber: number;
  transferred: number;
}

/** The run's counters as the ledger keeps them, less the one the summary renames (already_migrated). */
type SummaryCounters = Omit<RunCounters, 'rows_already_migrated'>;

export interface Summary extends SummaryCounters {
  /** the App Store rows as the ingest's survey read them (as plan.json's `receipts`), when surveyed */
  receipts?: ReceiptTally;
  run_id: string;
  status: RunStatus;
  started_at: string | null;
  finished_at: string | null;
  sources: string[];
  /** rows skipped because an earlier run had migrated them (sent anyway with --force) */
  already_migrated: number;
  /** queued rows without an outcome yet */
  rows_pending: number;
  /** succeeded rows whose subscriber differs from their expected_* columns (see mismatches.csv) */
  rows_mismatched: number;
  /** finished rows whose Google token had expired more than ~60 days before it was read (failed ones as google_token_expired) */
  rows_past_google_cutoff: number;
  /** the last `verify` pass, when one was run */
  verify?: VerifySummary;
  /** every request sent, by HTTP status or network error (timeout, reset, refused) */
  by_http_status: Record<string, number>;
  /** answers 429: the rate limit (or a busy user, code 7638), retried without spending attempts */
  requests_rate_limited: number;
  /** answers 529: the token was being processed; retried after a few seconds, never lowering the learned rate */
  requests_in_process: number;
  /** failed rows by reason: rc_<code>, http_<status>, timeout, product_not_in_subscriber … */
  by_error_code: Record<string, number>;
  reconciliation: Reconciliation;
  /** the run so far is a canary (`run --limit`): the rest of its sources is left for the next run */
  canary?: CanarySummary;
  /** `keys`: the keys stopped (by platform, variable and first characters) when the stop was per key */
  fatal?: { message: string; status: number; code?: number; at: string; keys?: StoppedKey[] };
}

/** Accumulates the breakdowns that need every outcome, in one pass. */
export class OutcomeTally {
  readonly byErrorCode: Record<string, number> = {};
  mismatched = 0;
  pastGoogleCutoff = 0;
  readonly reconciliation: Reconciliation = { product_confirmed: 0, product_not_checked: 0, product_not_in_subscriber: 0, transferred: 0 };

  add(o: Outcome): void {
    if (o.past_google_cutoff === true) this.pastGoogleCutoff++;
    if (o.status === 'failed') {
      const key = o.reason ?? 'unknown';
      this.byErrorCode[key] = (this.byErrorCode[key] ?? 0) + 1;
      if (o.reason === 'product_not_in_subscriber' || o.reason === 'transferred') this.reconciliation[o.reason]++;
      return;
    }
    if (o.mismatches && o.mismatches.length > 0) this.mismatched++;
    if (o.subscriber?.product_found === 'not_checked') this.reconciliation.product_not_checked++;
    else this.reconciliation.product_confirmed++;
  }
}

export function buildSummary(state: RunState, tally: OutcomeTally, fatal: FatalReason | undefined, verify?: VerifySummary, canary?: CanarySummary): Summary {
  // The pause is queue-wide: whichever run tripped it, every unfinished run is stopped until it is cleared.
  const stopped = fatal !== undefined && !state.complete;
  const partial = canary !== undefined && !state.complete && state.rows_pending === 0;
  const status: RunStatus = state.complete ? 'complete' : stopped ? 'stopped' : partial ? 'partial' : 'in_progress';
  return {
    run_id: state.run_id,
    status,
    started_at: state.started_at ?? null,
    finished_at: state.complete ? (state.finished_at ?? null) : null,
    sources: state.sources,
    rows_read: state.rows_read,
    rows_rejected: state.rows_rejected,
    rows_duplicate: state.rows_duplicate,
    rows_queued: state.rows_queued,
    rows_succeeded: state.rows_succeeded,
    rows_failed: state.rows_failed,
    already_migrated: state.rows_already_migrated,
    rows_updated: state.rows_updated,
    rows_conflict: state.rows_conflict,
    rows_held: state.rows_held,
    rows_superseded: state.rows_superseded,
    ...(state.receipts ? { receipts: state.receipts } : {}),
    rows_pending: state.rows_pending,
    rows_mismatched: tally.mismatched,
    rows_past_google_cutoff: tally.pastGoogleCutoff,
    ...(verify ? { verify } : {}),
    ...(canary && !state.complete ? { canary } : {}),
    requests_sent: state.requests_sent,
    retries: state.retries,
    by_http_status: state.by_http_status,
    requests_rate_limited: state.by_http_status['429'] ?? 0,
    requests_in_process: state.by_http_status['529'] ?? 0,
    by_error_code: tally.byErrorCode,
    reconciliation: tally.reconciliation,
    ...(stopped && fatal ? { fatal: { message: fatal.message, status: fatal.status, ...(fatal.code !== undefined ? { code: fatal.code } : {}), at: fatal.at, ...(fatal.keys ? { keys: fatal.keys } : {}) } } : {}),
  };
}
