// The Subscriber object of RevenueCat's reference (contract/subscriber.ts), rendered from the store. Every product grants the one sandbox
// entitlement, `premium`, which keeps expectations in test data simple.
import type { EntitlementJson, NonSubscriptionJson, SubscriberEnvelope, SubscriberJson, SubscriptionJson } from './contract/subscriber.js';
import type { StoredSubscriber } from './store.js';

export type { EntitlementJson, NonSubscriptionJson, SubscriberEnvelope, SubscriberJson, SubscriptionJson } from './contract/subscriber.js';

export const SANDBOX_ENTITLEMENT = 'premium';

/** RevenueCat writes dates without milliseconds: 2019-07-26T23:45:40Z. */
export function isoDate(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const MANAGEMENT_URLS: Record<string, string> = {
  app_store: 'https://apps.apple.com/account/subscriptions',
  mac_app_store: 'https://apps.apple.com/account/subscriptions',
  play_store: 'https://play.google.com/store/account/subscriptions',
};

export function renderSubscriber(sub: StoredSubscriber, options: { nowMs: number; includeAttributes: boolean }): SubscriberJson {
  const subscriptions: Record<string, SubscriptionJson> = {};
  for (const s of sub.subscriptions.values()) {
    subscriptions[s.productId] = {
      expires_date: isoDate(s.expiresDateMs),
      purchase_date: isoDate(s.purchaseDateMs),
      original_purchase_date: isoDate(s.originalPurchaseDateMs),
      ownership_type: 'PURCHASED',
      period_type: 'normal',
      store: s.store,
      is_sandbox: s.environment === 'sandbox',
      unsubscribe_detected_at: null,
      billing_issues_detected_at: null,
      grace_period_expires_date: null,
      refunded_at: null,
      auto_resume_date: null,
      store_transaction_id: s.transactionId,
    };
  }

  const nonSubscriptions: Record<string, NonSubscriptionJson[]> = {};
  const otherPurchases: Record<string, { purchase_date: string }> = {};
  for (const [productId, purchases] of sub.nonSubscriptions) {
    const list = [...purchases.values()].sort((a, b) => a.purchaseDateMs - b.purchaseDateMs);
    nonSubscriptions[productId] = list.map((p) => ({
      id: p.id,
      purchase_date: isoDate(p.purchaseDateMs),
      store: p.store,
      is_sandbox: p.environment === 'sandbox',
      store_transaction_id: p.id,
    }));
    const latest = list[list.length - 1];
    if (latest) otherPurchases[productId] = { purchase_date: isoDate(latest.purchaseDateMs) };
  }

  const json: SubscriberJson = {
    original_app_user_id: sub.originalAppUserId,
    original_application_version: sub.originalApplicationVersion,
    original_purchase_date: sub.originalPurchaseDateMs === null ? null : isoDate(sub.originalPurchaseDateMs),
    management_url: managementUrl(sub, options.nowMs),
    first_seen: isoDate(sub.firstSeenMs),
    last_seen: isoDate(sub.lastSeenMs),
    entitlements: entitlements(sub),
    subscriptions,
    non_subscriptions: nonSubscriptions,
    other_purchases: otherPurchases,
  };
  if (options.includeAttributes) json.subscriber_attributes = Object.fromEntries(sub.attributes);
  return json;
}

export function envelope(nowMs: number, subscriber: SubscriberJson): SubscriberEnvelope {
  return { request_date: isoDate(nowMs), request_date_ms: nowMs, subscriber };
}

// A lifetime purchase beats any subscription; otherwise the furthest expiry wins. Expired entitlements stay
// listed with a past expires_date, as RevenueCat does.
function entitlements(sub: StoredSubscriber): Record<string, EntitlementJson> {
  let best: EntitlementJson | undefined;
  let bestExpires = -Infinity;
  for (const s of sub.subscriptions.values()) {
    if (s.expiresDateMs > bestExpires) {
      bestExpires = s.expiresDateMs;
      best = {
        expires_date: isoDate(s.expiresDateMs),
        grace_period_expires_date: null,
        purchase_date: isoDate(s.purchaseDateMs),
        product_identifier: s.productId,
      };
    }
  }
  for (const purchases of sub.nonSubscriptions.values()) {
    for (const p of purchases.values()) {
      if (bestExpires !== Infinity) {
        bestExpires = Infinity;
        best = { expires_date: null, grace_period_expires_date: null, purchase_date: isoDate(p.purchaseDateMs), product_identifier: p.productId };
      }
    }
  }
  return best ? { [SANDBOX_ENTITLEMENT]: best } : {};
}

function managementUrl(sub: StoredSubscriber, nowMs: number): string | null {
  let chosen: { expires: number; store: string } | undefined;
  for (const s of sub.subscriptions.values()) {
    if (s.expiresDateMs > nowMs && (!chosen || s.expiresDateMs > chosen.expires)) chosen = { expires: s.expiresDateMs, store: s.store };
  }
  return chosen ? (MANAGEMENT_URLS[chosen.store] ?? null) : null;
}
