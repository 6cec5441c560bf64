// The types that cross module boundaries: a queued row, its outcome, and the run's bookkeeping.
import type { Platform, ReceiptBody } from './revenuecat/fields.js';
import type { Expectations } from './state/expectations.js';
import type { MismatchDetail } from './state/mismatch.js';
import type { SubscriberSummary } from './state/subscriberSummary.js';
import type { TokenExpiry } from './ingest/tokenExpiry.js';
import type { AppleLookup } from './appstore/lookup/transactionLookup.js';

/** What the ingester puts on the queue for one row. `input` keeps the original cells for failed.csv. */
export interface ReceiptJobData {
  run: string;
  fp: string;
  src: string;
  line: number;
  platform: Platform;
  body: ReceiptBody;
  /** the row's cells as read; on the queue the receipt's cell is left empty (see token_column) */
  input: Record<string, string>;
  /** the input column whose cell is body.fetch_token, left empty so a job holds its receipt once (queue/jobData.ts: jobInput) */
  token_column?: string;
  /** what the row's expected_* columns say the user should have afterwards */
  expect?: Expectations;
  /** a Google row's token expiry, from the export's expiry column; `past_cutoff` flags a token Google no longer validates */
  token_expiry?: TokenExpiry;
  /** BullMQ priority (1 = first); absent = none (see ingest/tokenExpiry.ts) */
  priority?: number;
  /** an App Store row given by its transaction id (body.fetch_token holds it): looked up before it is posted (appstore/lookup) */
  lookup?: AppleLookup;
  /**
   * queued again by an ingest that found the row admitted before without an outcome: its first job may have been
   * answered and removed since, so the worker asks the ledger before sending it (workers/processor.ts)
   */
  recheck?: true;
}

export type OutcomeStatus = 'succeeded' | 'failed';

/** One row's final word, as the ledger stores it. */
export interface Outcome {
  status: OutcomeStatus;
  src: string;
  line: number;
  fp: string;
  platform: Platform;
  app_user_id: string;
  product_id?: string;
  /** masked; kept for failed rows only (the ledger's compact record of a success leaves it out) */
  token?: string;
  http_status?: number;
  /** RevenueCat error code when the answer carried one */
  code?: number;
  /** machine-readable reason: rc_7103, http_503, timeout, product_not_in_subscriber, transferred … */
  reason?: string;
  message?: string;
  attempts: number;
  /** when the row was queued; kept for failed rows only */
  queued_at?: string;
  finished_at: string;
  subscriber?: SubscriberSummary;
  /** the input cells, kept for failed rows only so failed.csv can be fed back to `run` */
  input?: Record<string, string>;
  /** the request body, kept for failed rows only so `retry` can send it again */
  body?: ReceiptBody;
  /** the row's expected_* columns, kept so `verify` can check them again later */
  expect?: Expectations;
  /** where the returned subscriber differs from what the row expected */
  mismatches?: MismatchDetail[];
  /** a Google row whose token expired more than ~60 days before it was read (token_expiry.past_cutoff): counted as rows_past_google_cutoff */
  past_google_cutoff?: boolean;
}

export interface Rejection {
  src: string;
  line: number;
  reason: string;
  input?: Record<string, string>;
}

/** An App Store row not sent: the receipt at `by` (same user, newer) carries every purchase it carries. */
export interface Superseded {
  src: string;
  line: number;
  app_user_id: string;
  by: { src: string; line: number };
}

/** A superseded row as the ledger lists it: its place and its carrier's (the user is read again from the source). */
export type SupersededPlace = Omit<Superseded, 'app_user_id'>;

export interface Duplicate {
  src: string;
  line: number;
  first: string; // location of the first row with the same fingerprint
  fp: string;
}

/** Counters of a run as stored in its meta hash. */
export interface RunCounters {
  rows_read: number;
  rows_rejected: number;
  rows_duplicate: number;
  rows_queued: number;
  rows_succeeded: number;
  rows_failed: number;
  /** rows skipped because an earlier run migrated them */
  rows_already_migrated: number;
  /** rows queued because their payload changed since an earlier run migrated their token (counted in rows_queued too) */
  rows_updated: number;
  /** rows whose token another user has, in this run or an earlier one (held or sent) */
  rows_conflict: number;
  /** conflicting rows held back, not sent: an outcome class of their own, like duplicates */
  rows_held: number;
  /** App Store rows not sent because a newer receipt of the same user carries every purchase they carry */
  rows_superseded: number;
  requests_sent: number;
  /** how many times `retry` re-opened failed rows */
  retries: number;
}

/** What a run's survey counted of its App Store rows (ingest/receiptSurvey.ts ReceiptCounts; summary.json's `receipts`). */
export interface ReceiptTally {
  read: number;
  unread: number;
  sandbox: number;
  purchases: number;
  superseded: number;
  bundles: Record<string, number>;
}

export interface RunState extends RunCounters {
  /** the last ingest's survey of its App Store rows, when its sources were surveyed */
  receipts?: ReceiptTally;
  run_id: string;
  started_at?: string;
  finished_at?: string;
  ingest: 'pending' | 'running' | 'done';
  sources: string[];
  /** requests by HTTP status (or network error name) */
  by_http_status: Record<string, number>;
  /** queued rows without an outcome yet (computed here only: RunLedger.state) */
  rows_pending: number;
  complete: boolean;
}
