// Reconciliation of one row against the subscriber RevenueCat returned for it. A 2xx is not a success unless
// the subscriber shows what the row was meant to create.
import type { SubscriberSummary } from './subscriberSummary.js';

export type ReconcileResult =
  { ok: true; check: 'product_confirmed' | 'product_not_checked' } | { ok: false; reason: 'product_not_in_subscriber' | 'transferred'; message: string };

export function reconcile(row: { app_user_id: string; product_id?: string }, summary: SubscriberSummary): ReconcileResult {
  if (summary.original_app_user_id !== row.app_user_id) {
    return {
      ok: false,
      reason: 'transferred',
      message: `RevenueCat attached the purchase to original user "${summary.original_app_user_id}", not to "${row.app_user_id}"`,
    };
  }
  if (summary.product_found === 'absent') {
    return {
      ok: false,
      reason: 'product_not_in_subscriber',
      message: `RevenueCat accepted the receipt but the subscriber shows no purchase of ${row.product_id ?? 'the product'}`,
    };
  }
  return { ok: true, check: summary.product_found === 'not_checked' ? 'product_not_checked' : 'product_confirmed' };
}
