// What the subscriber in a 2xx answer to POST /v1/receipts says about the row that was sent: its summary (kept
// with the outcome), whether it reconciles (else the row fails), and where it differs from the row's
// expected_* columns (kept with the outcome; the row still succeeds).
import { normalizeV1 } from '../revenuecat/customerState.js';
import type { Subscriber } from '../revenuecat/subscriber.js';
import { compareState, DEFAULT_TOLERANCE_MS } from './compareState.js';
import type { Expectations } from './expectations.js';
import { detailOf, type MismatchDetail, type RowRef } from './mismatch.js';
import { reconcile, type ReconcileResult } from './reconcile.js';
import { summarizeSubscriber, type SubscriberSummary } from './subscriberSummary.js';

export interface ImportJudgement {
  summary: SubscriberSummary;
  reconciliation: ReconcileResult;
  /** empty when the row carried no expectations */
  mismatches: MismatchDetail[];
}

export function judgeImportAnswer(row: RowRef & { expect?: Expectations }, subscriber: Subscriber, toleranceMs: number = DEFAULT_TOLERANCE_MS): ImportJudgement {
  const summary = summarizeSubscriber(subscriber, row.product_id);
  const reconciliation = reconcile(row, summary);
  let mismatches: MismatchDetail[] = [];
  if (row.expect) {
    // The answer's subscriber is the customer's state at this moment: compared like a later read would be.
    const state = { exists: true, ...normalizeV1(subscriber) };
    mismatches = compareState({ ...row, subscriber: summary }, state, { ...row.expect, toleranceMs }).map(detailOf);
  }
  return { summary, reconciliation, mismatches };
}
