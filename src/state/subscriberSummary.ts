// What we keep of the subscriber an import answer returned, per row: who owns the purchase, which entitlements
// were active and whether (and how) the row's product shows. Derived from the API's Subscriber object
// (../revenuecat/subscriber.ts) at the moment of the answer; the ledger stores it with the row's outcome, so
// reconciliation, the reports and a later `verify` all read the same facts.
import { isActive, productKeyMatches, type Subscriber } from '../revenuecat/subscriber.js';

export interface SubscriberSummary {
  original_app_user_id: string;
  active_entitlements: { id: string; expires_date: string | null; product_identifier: string }[];
  product_found: 'subscription' | 'non_subscription' | 'absent' | 'not_checked';
  /** the row's product as the subscriber shows it, when found: its expiry (null: never) and environment */
  product?: { expires_date: string | null; is_sandbox?: boolean };
}

export function summarizeSubscriber(subscriber: Subscriber, productId: string | undefined, now: number = Date.now()): SubscriberSummary {
  const active_entitlements = Object.entries(subscriber.entitlements)
    .filter(([, e]) => isActive(e.expires_date, now))
    .map(([id, e]) => ({ id, expires_date: e.expires_date ?? null, product_identifier: e.product_identifier }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  let product_found: SubscriberSummary['product_found'];
  let product: SubscriberSummary['product'];
  const subscription = productId ? Object.entries(subscriber.subscriptions).find(([k]) => productKeyMatches(k, productId))?.[1] : undefined;
  const purchases = productId ? Object.entries(subscriber.non_subscriptions).find(([k, list]) => productKeyMatches(k, productId) && list.length > 0)?.[1] : undefined;
  if (productId === undefined || productId === '') {
    product_found = 'not_checked';
  } else if (subscription) {
    product_found = 'subscription';
    product = { expires_date: subscription.expires_date ?? null, ...(typeof subscription.is_sandbox === 'boolean' ? { is_sandbox: subscription.is_sandbox } : {}) };
  } else if (purchases) {
    product_found = 'non_subscription';
    const latest = purchases[purchases.length - 1];
    product = { expires_date: null, ...(typeof latest?.is_sandbox === 'boolean' ? { is_sandbox: latest.is_sandbox } : {}) };
  } else {
    product_found = 'absent';
  }
  return { original_app_user_id: subscriber.original_app_user_id, active_entitlements, product_found, ...(product ? { product } : {}) };
}
